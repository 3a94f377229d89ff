"""Trained forecasters from checkpoint files: a checkpoint is data, never code.

A checkpoint is read with ``weights_only=True`` (no pickled objects). The class to build is named in it, but only
looked up among the :class:`~sfp.forecasting.Forecaster` subclasses already imported (sfp's own, and whatever
the running code imported itself): nothing stored in a file triggers an import. Two layouts are read:

- a Forecaster's own checkpoint (``sfp fit``, the pipeline's agent stage): its hyperparameters are the
  constructor's arguments;
- a self-training checkpoint (:class:`~sfp.planning.SFPModule`: the SFP and baseline stages): it keeps the
  agent's class and constructor arguments beside the weights, under ``agent.``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sfp.errors import UserError
from sfp.forecasting.checkpoint_layout import AGENT_CLASS_KEY, AGENT_PREFIX, AGENT_SETTINGS_KEY, CLASS_KEY, read_bounds
from sfp.forecasting.forecaster import Forecaster
from sfp.forecasting.moved import group_flat
from sfp.training import read_checkpoint


def forecaster_classes() -> dict[str, type[Forecaster]]:
    """Every imported concrete Forecaster subclass by class name (the allow-list of :func:`load_forecaster`)."""
    import sfp.forecasting.performer  # noqa: F401  (sfp's own forecasters, so their checkpoints always load)

    found: dict[str, type[Forecaster]] = {}
    pending = [Forecaster]
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if not getattr(cls, "__abstractmethods__", None):
            found.setdefault(cls.__name__, cls)
    return found


def forecaster_class(name: str, path: str | Path) -> type[Forecaster]:
    """The allowed Forecaster class called ``name`` (the last part of an import path also matches)."""
    classes = forecaster_classes()
    short = str(name).replace(":", ".").rpartition(".")[2]
    if short not in classes:
        raise UserError(f"{path}: forecaster class {name!r} is not an imported Forecaster; known: "
                        f"{', '.join(sorted(classes))} (import your own subclass before loading)")
    return classes[short]


def _build(cls: type[Forecaster], settings: dict[str, Any], state: dict[str, Any], path: str | Path) -> Forecaster:
    try:
        forecaster = cls(**group_flat(cls, settings))
        forecaster.load_state_dict(state)
    except (TypeError, RuntimeError) as err:
        raise UserError(f"{path}: its {cls.__name__} settings or weights do not fit this sfp "
                        f"({str(err).splitlines()[0][:200]})") from err
    return forecaster


def load_forecaster(path: str | Path) -> Forecaster:
    """The trained forecaster in a Forecaster or self-training checkpoint, from that file alone, in eval mode."""
    checkpoint = read_checkpoint(path)
    settings = dict(checkpoint.get("hyper_parameters") or {})
    if AGENT_SETTINGS_KEY in checkpoint:
        cls = forecaster_class(checkpoint.get(AGENT_CLASS_KEY) or settings.get("agent_class", ""), path)
        state = {key[len(AGENT_PREFIX):]: value for key, value in checkpoint["state_dict"].items()
                 if key.startswith(AGENT_PREFIX)}
        agent = _build(cls, dict(checkpoint[AGENT_SETTINGS_KEY]), state, path)
        agent.bounds = read_bounds(checkpoint)
        return agent.eval()
    name = checkpoint.get(CLASS_KEY) or settings.get("_class_path")
    if not name:
        raise UserError(f"{path}: the checkpoint does not name its forecaster class")
    settings = {key: value for key, value in settings.items() if not key.startswith("_")}
    forecaster = _build(forecaster_class(name, path), settings, checkpoint["state_dict"], path)
    forecaster.on_load_checkpoint(checkpoint)
    return forecaster.eval()
