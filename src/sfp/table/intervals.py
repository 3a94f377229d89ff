"""Paired bootstrap intervals of a table's changes, over test sequences (issue 32).

A cell's JSON keeps, per model, the states of the metric it is judged on and MSE for each test window, and the
sequence each window was cut from (``per_window``, :meth:`TaskMetrics.window_states`). Windows of one sequence overlap
and share their weather, so they are summed per sequence and sequences are what is resampled: every resample draws the
test sequences with replacement, one draw for every model of every cell of a dataset (they share the test sequences),
each model's metric is rebuilt from its summed states and each change is ``(sfp - other) / |other|``. A dataset's
change is averaged over seeds, then backbones, resample by resample, as the summary averages it; its interval holds
the central 95 % of those means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from sfp.metrics.bootstrap import interval, resample_weights
from sfp.metrics.task_metrics import build_task_metrics
from sfp.table.cellfile import cell_task

Draws = dict[str, np.ndarray]  # change name -> its resampled values (R,)


def _per_sequence(rows: list[list[float]], sequences: list[int]) -> np.ndarray:
    """Window rows ``(W, n)`` summed per sequence ``(S, n)``, sequences in sorted order."""
    rows_array = np.asarray(rows, dtype=np.float64)
    labels = np.asarray(sequences)
    return np.stack([rows_array[labels == sequence].sum(0) for sequence in np.unique(labels)])


def _metric_draws(cell: dict[str, Any], key: str, totals: np.ndarray) -> np.ndarray:
    """The metric ``key`` of each row of summed states ``(R, n)`` of ``cell`` (laid out as its ``per_window``
    keys; its run's extra scores rebuilt with their options)."""
    task = cell_task(cell)
    extras = cell.get("spec", {}).get("evaluation", {}).get("extras")
    metrics = build_task_metrics(task, windows=(lambda batch: None) if task.heatwaves else None, extras=extras)
    keys = tuple(cell["per_window"].get("keys", (task.headline, "mse")))
    return metrics.from_states(keys, torch.as_tensor(totals))[key].numpy()


def cell_draws(cell: dict[str, Any], compared: dict[str, tuple[str, str, str]], weights: Callable[[int], np.ndarray]
               ) -> Draws | None:
    """Each change of ``compared`` (name -> metric, SFP's model, the other model) resampled, for one cell; None where
    the cell keeps no per-window states. ``weights(S)``: the shared draws ``(R, S)`` for ``S`` sequences."""
    found = cell.get("per_window")
    if not found:
        return None
    draws: Draws = {}
    values: dict[tuple[str, str], np.ndarray] = {}
    for change, (metric, new, old) in compared.items():
        if new not in found["models"] or old not in found["models"]:
            continue
        for model in (new, old):
            if (model, metric) not in values:
                states = _per_sequence(found["models"][model], found["sequence"])
                values[model, metric] = _metric_draws(cell, metric, weights(len(states)) @ states)
        with np.errstate(invalid="ignore", divide="ignore"):
            draws[change] = (values[new, metric] - values[old, metric]) / np.abs(values[old, metric])
    return draws


def shared_weights(seed: int = 0) -> Callable[[int], np.ndarray]:
    """``weights(S)``: one resampling of ``S`` sequences, the same for every cell asking with the same ``S``."""
    made: dict[int, np.ndarray] = {}

    def weights(count: int) -> np.ndarray:
        if count not in made:
            made[count] = resample_weights(count, seed=seed).astype(np.float64)
        return made[count]

    return weights


def dataset_intervals(cells: dict[str, dict[int, Draws | None]]) -> dict[str, list[float]] | None:
    """``backbone -> seed -> draws`` of a dataset's cells -> each change's 95 % interval of its mean over seeds, then
    backbones; None unless every cell keeps per-window states."""
    if not cells or any(draws is None for seeds in cells.values() for draws in seeds.values()):
        return None
    names = set.intersection(*(set(draws) for seeds in cells.values() for draws in seeds.values()))
    result = {}
    for name in sorted(names):
        per_backbone = [np.mean([draws[name] for draws in seeds.values()], axis=0) for seeds in cells.values()]
        result[name] = list(interval(np.mean(per_backbone, axis=0)))
    return result
