"""Evaluate forecasters on a test set with one set of task metrics, and shape the results for metrics.json."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from sfp.metrics.task_metrics import build_task_metrics
from sfp.task import TaskSpec

REPORTED = ("mse", "mae", "ssim", "csi_m", "csi_pool4_m", "csi_pool16_m", "fss", "tke_error")
Forecast = Callable[[tuple[Tensor, ...]], Tensor]


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def shape_metrics(flat: dict[str, float], task: TaskSpec) -> dict[str, Any]:
    """Flat task metrics -> the report's keys, with per-threshold CSI as ``{"16": ..., "74": ...}``."""
    shaped: dict[str, Any] = {key: _number(flat[key]) for key in REPORTED if key in flat}
    if task.thresholds:
        shaped["csi"] = {f"{t:g}": _number(flat[f"csi_{t:g}"]) for t in task.thresholds if f"csi_{t:g}" in flat}
    return shaped


@torch.no_grad()
def evaluate_forecasts(forecasts: dict[str, Forecast], batches: Iterable[tuple[Tensor, ...]], task: TaskSpec,
                       target_len: int | None = None) -> dict[str, dict[str, float]]:
    """Run every forecaster over the same batches; flat metrics per forecaster (original units)."""
    metrics = {name: build_task_metrics(task, target_len) for name in forecasts}
    for batch in batches:
        truth = batch[3]
        for name, forecast in forecasts.items():
            metrics[name].update(forecast(batch), truth)
    return {name: {k: float(v) for k, v in m.compute().items()} for name, m in metrics.items()}


def checkpoint_forecast(path: str) -> Forecast:
    """The trained forecaster of a checkpoint (any Forecaster or self-training one) as a function of a batch."""
    from sfp.forecasting.checkpoints import load_forecaster

    agent = load_forecaster(path)
    return lambda batch: agent.forecast(batch[0], batch[1], batch[2])


def checkpoint_forecasters(checkpoints: dict[str, str]) -> dict[str, Forecast]:
    """Persistence and the trained forecaster of each named checkpoint."""
    from sfp.models.baselines import persistence

    return {"persistence": lambda batch: persistence(batch[1], batch[3].shape[1]),
            **{name: checkpoint_forecast(path) for name, path in checkpoints.items()}}


def evaluate_checkpoints(datamodule: Any, checkpoints: dict[str, str]) -> dict[str, Any]:
    """metrics.json content on the test split of ``datamodule`` for persistence and each checkpoint:
    ``{"dataset", "models": {name: metrics}, "flat": {...}}``."""
    flat = evaluate_forecasts(checkpoint_forecasters(checkpoints), datamodule.test_dataloader(), datamodule.task,
                              datamodule.target)
    return {"dataset": datamodule.task.name,
            "models": {name: shape_metrics(values, datamodule.task) for name, values in flat.items()},
            "flat": flat}
