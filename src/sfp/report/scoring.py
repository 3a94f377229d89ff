"""Run forecasters over the same batches into accumulators: every evaluation's one loop over a set."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch
from torch import Tensor

from sfp.metrics.task_metrics import TaskMetrics

Forecast = Callable[[tuple[Tensor, ...]], Tensor]


class Accumulator(Protocol):
    """Anything fed (forecast, truth) batch by batch and asked for its result once: a torchmetrics Metric, the
    per-lead views."""

    def update(self, pred: Tensor, target: Tensor) -> None: ...

    def compute(self) -> Any: ...


class WindowStates:
    """Per window, in batch order, the metric states behind ``keys`` (:meth:`TaskMetrics.window_states`): rows
    that sum to the metrics over any set of windows, for intervals over test sequences."""

    def __init__(self, metrics: TaskMetrics, keys: tuple[str, ...]) -> None:
        self.metrics, self.keys, self.rows = metrics, keys, []

    def update(self, pred: Tensor, target: Tensor, batch: tuple[Tensor, ...] | None = None) -> None:
        self.rows.append(self.metrics.window_states(self.keys, pred, target, batch))

    def compute(self) -> list[list[float]]:
        return torch.cat(self.rows).tolist() if self.rows else []


@torch.no_grad()
def accumulate(forecasts: dict[str, Forecast], batches: Iterable[tuple[Tensor, ...]],
               make: Callable[[str], list[Accumulator]]) -> dict[str, list[Any]]:
    """Each forecaster's batches into its own accumulators (``make(name)``), in one pass over ``batches``
    (``batch[3]`` is the truth); per forecaster, its accumulators' results in order."""
    accumulators = {name: make(name) for name in forecasts}
    for batch in batches:
        for name, forecast in forecasts.items():
            pred = forecast(batch)
            for accumulator in accumulators[name]:
                if isinstance(accumulator, (TaskMetrics, WindowStates)):  # heatwave scores need the batch's context
                    accumulator.update(pred, batch[3], batch)
                else:
                    accumulator.update(pred, batch[3])
    return {name: [accumulator.compute() for accumulator in found] for name, found in accumulators.items()}
