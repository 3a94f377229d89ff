"""Flat constructor arguments of earlier forecasters (0.1.0 checkpoints, the seed's constructor) and the option groups
they moved to, so that their checkpoints still load; config checks name the new key from the same table."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from sfp.forecasting.options import MOVED
from sfp.options import grouped

GONE = "removed"
SEED_NAMES = {"performer_attention_kernel": "kernel", "feature_seed": "seed"}
"""The seed's Performer arguments and the ``model`` fields they are."""


def forecaster_moves(name: str) -> Mapping[str, str]:
    """The moved arguments of the forecaster class called ``name`` (the Performer's own groups included)."""
    if name != "SpatioTemporalPerformerForecaster":
        return MOVED
    from sfp.models.performer import PerformerConfig

    model = {field.name: f"model.{field.name}" for field in fields(PerformerConfig)}
    return {**MOVED, **model, **{old: f"model.{new}" for old, new in SEED_NAMES.items()}}


def group_flat(cls: type, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Flat constructor arguments of earlier versions sorted into the option groups of the forecaster class ``cls``
    that they moved to; arguments ``cls`` still takes stay as they are."""
    moves = {key: target for key, target in forecaster_moves(cls.__name__).items() if target != GONE}
    return grouped(settings, moves, inspect.signature(cls).parameters)
