"""Evaluate forecasters on a test set with one set of task metrics (and the per-lead views), and shape the results
for metrics.json."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from torch import Tensor

from sfp.metrics.task_metrics import Extras, Windows, build_task_metrics
from sfp.report.leads import TRUTH, lead_accumulators, with_truth
from sfp.report.scoring import Forecast, WindowStates, accumulate
from sfp.task import Bounds, TaskSpec

REPORTED = ("mse", "mae", "ssim", "csi_m", "csi_pool4_m", "csi_pool16_m", "fss", "tke_error", "mhw_csi",
            "strong_core_csi", "onset_error", "peak_error")


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def shape_metrics(flat: dict[str, float], task: TaskSpec, kept: Iterable[str] = ()) -> dict[str, Any]:
    """Flat task metrics -> the report's keys (and those ``kept``), with per-threshold CSI as
    ``{"16": ..., "74": ...}``."""
    shaped: dict[str, Any] = {key: _number(flat[key]) for key in (*REPORTED, *kept) if key in flat}
    if task.thresholds:
        shaped["csi"] = {f"{t:g}": _number(flat[f"csi_{t:g}"]) for t in task.thresholds if f"csi_{t:g}" in flat}
    return shaped


def as_floats(computed: dict[str, Tensor]) -> dict[str, float]:
    """A metric collection's results as plain floats."""
    return {key: float(value) for key, value in computed.items()}


def evaluate_forecasts(forecasts: dict[str, Forecast], batches: Iterable[tuple[Tensor, ...]], task: TaskSpec,
                       target_len: int | None = None, windows: Windows | None = None) -> dict[str, dict[str, float]]:
    """Run every forecaster over the same batches; flat metrics per forecaster (original units); ``windows``: the
    data module's ``heatwave_windows`` (a task with heatwaves)."""
    computed = accumulate(forecasts, batches, lambda name: [build_task_metrics(task, target_len, windows)])
    return {name: as_floats(results[0]) for name, results in computed.items()}


def checkpoint_forecast(path: str, bounds: Bounds) -> Forecast:
    """The trained forecaster of a checkpoint (any Forecaster or self-training one, or the qmap peer's map file) as
    a function of a batch, its forecasts kept inside the task's ``bounds``."""
    from sfp.forecasting.checkpoints import load_forecaster
    from sfp.quantile_map import MAP_FILE, load_quantile_mapped

    if str(path).endswith(MAP_FILE):
        return load_quantile_mapped(path, bounds)

    agent = load_forecaster(path)
    agent.bounds = bounds
    return lambda batch: agent.forecast(batch[0], batch[1], batch[2])


def checkpoint_forecasters(checkpoints: dict[str, str], bounds: Bounds) -> dict[str, Forecast]:
    """Persistence and the trained forecaster of each named checkpoint (inside ``bounds``)."""
    from sfp.models.baselines import persistence

    return {"persistence": lambda batch: persistence(batch[1], batch[3].shape[1]),
            **{name: checkpoint_forecast(path, bounds) for name, path in checkpoints.items()}}


def evaluate_checkpoints(datamodule: Any, checkpoints: dict[str, str], extras: Extras | None = None,
                         metric: str | None = None) -> dict[str, Any]:
    """metrics.json content on the test split of ``datamodule`` for persistence and each checkpoint, task metrics
    (with the scores of ``extras``, :func:`~sfp.metrics.task_metrics.build_task_metrics`) and per-lead views
    (:mod:`sfp.report.leads`) in one pass: ``{"dataset", "metric", "models": {name: metrics}, "flat": {...},
    "per_lead": {name: views}, "per_window": {"keys", "sequence", "models": {name: rows}}}`` (``metric``: what the
    run is judged on, the task's headline unless given; ``per_lead`` also holds the truth's spectrum for spectral
    tasks; ``per_window`` the states of ``metric`` and MSE per test window and the sequence of each:
    :class:`~sfp.report.scoring.WindowStates`)."""
    task, target_len = datamodule.task, datamodule.target
    windows = getattr(datamodule, "heatwave_windows", None)
    leads = lead_accumulators(task, target_len)
    forecasts = with_truth(checkpoint_forecasters(checkpoints, task.bounds), task)
    metric = metric or task.headline
    keys = tuple(dict.fromkeys((metric, "mse")))
    computed = accumulate(forecasts, datamodule.test_dataloader(), lambda name: [leads(name)] if name == TRUTH else
                          [build_task_metrics(task, target_len, windows, extras), leads(name),
                           WindowStates(build_task_metrics(task, target_len, windows, extras), keys)])
    flat = {name: as_floats(results[0]) for name, results in computed.items() if name != TRUTH}
    kept = sorted({*build_task_metrics(task, target_len, windows, extras).extra_keys, metric})
    return {"dataset": task.name, "metric": metric,
            "models": {name: shape_metrics(values, task, kept) for name, values in flat.items()},
            "flat": flat, "per_lead": {name: results[0 if name == TRUTH else 1] for name, results in computed.items()},
            "per_window": {"keys": list(keys), "sequence": test_sequences(datamodule),
                           "models": {name: results[2] for name, results in computed.items() if name != TRUTH}}}


def test_sequences(datamodule: Any) -> list[int]:
    """The sequence each test window was cut from, in the test loader's order (its windows are not shuffled);
    each window its own where the data module does not say."""
    index = getattr(datamodule.datasets["test"], "index", None) if hasattr(datamodule, "datasets") else None
    count = len(datamodule.datasets["test"]) if hasattr(datamodule, "datasets") else 0
    return [int(sequence) for sequence in index[:, 0]] if index is not None else list(range(count))
