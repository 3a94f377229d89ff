"""Probabilistic nowcasts: K futures imagined by the world model around the agent's forecast.

The imagination needs no truth, only the context and the agent's forecast (the action). How members are made from
the imagined futures (``centring``): ``none``, the imagined futures themselves; ``reconstruction``,
``forecast + (imagined − reconstruction of the forecast)``, so that the decoder's blur cancels; ``mean``,
``forecast + (imagined − their mean)``, so that the members' mean is the forecast and only the imagined departures
remain. Members are then kept inside the task's physical value range (``bounds``: VIL 0–255, rain rate ≥ 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.forecasting.forecaster import Forecaster
from sfp.planning.options import Imagination
from sfp.planning.world_model import WorldModel

CENTRINGS = ("none", "reconstruction", "mean")
# Chosen on storms' validation split by ``python -m benchmarks ensemble`` (docs/experiments.md, 2026-11-29)
CALIBRATED = {"temperature": 30.0, "candidates": 128, "centring": "mean"}
Bounds = tuple[float | None, float | None]


class EnsembleForecast(NamedTuple):
    """The deterministic forecast ``(B, T, C, H, W)`` and the members ``(B, K, T, C, H, W)``, original units."""

    forecast: Tensor
    members: Tensor


def centre_members(imagined: Tensor, forecast: Tensor, centring: str, reconstruction: Tensor | None = None,
                   bounds: Bounds = (None, None)) -> Tensor:
    """Members ``(B, K, T, C, H, W)`` from imagined futures, by ``centring`` (see the module doc), inside
    ``bounds``; ``reconstruction`` (the world model's decode of the forecast) is needed by ``reconstruction``."""
    if centring not in CENTRINGS:
        raise UserError(f"unknown centring {centring!r}; choose from {', '.join(CENTRINGS)}")
    if centring == "reconstruction":
        if reconstruction is None:
            raise ValueError("centring 'reconstruction' needs the reconstruction of the forecast")
        imagined = forecast.unsqueeze(1) + imagined - reconstruction.unsqueeze(1)
    elif centring == "mean":
        imagined = forecast.unsqueeze(1) + imagined - imagined.mean(1, keepdim=True)
    return imagined.clamp(*bounds) if bounds != (None, None) else imagined


def imagine_members(world_model: WorldModel, context: Tensor, forecast: Tensor, imagination: Imagination,
                    generator: torch.Generator | None = None, centring: str = "mean",
                    bounds: Bounds = (None, None)) -> Tensor:
    """``imagination.samples`` members ``(B, K, T, C, H, W)`` imagined around ``forecast`` (see the module doc);
    candidates are capped at the codebook size."""
    imagination = replace(imagination, candidates=min(imagination.candidates, world_model.codebook_size))
    imagined = world_model.imagine(context, forecast, imagination, generator)
    reconstruction = world_model.reconstruct(forecast, context) if centring == "reconstruction" else None
    return centre_members(imagined, forecast, centring, reconstruction, bounds)


@torch.no_grad()
def forecast_ensemble(agent: Forecaster, world_model: WorldModel, batch: Sequence[Tensor],
                      imagination: Imagination, generator: torch.Generator | None = None,
                      centring: str = "mean", bounds: Bounds = (None, None)) -> EnsembleForecast:
    """The agent's forecast of a ``(context_x, context_y, target_x, ...)`` batch and ``imagination.samples``
    members imagined around it."""
    context_x, context, target_x = batch[:3]
    forecast = agent.forecast(context_x, context, target_x)
    return EnsembleForecast(forecast, imagine_members(world_model, context, forecast, imagination, generator,
                                                      centring, bounds))
