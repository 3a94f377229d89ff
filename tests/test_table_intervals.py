"""Intervals of a table's changes: paired bootstrap over test sequences from per-window states."""

import numpy as np
import pytest
import torch

from sfp.metrics.task_metrics import build_task_metrics
from sfp.table.intervals import cell_draws, dataset_intervals, shared_weights
from sfp.table.render import summarize
from sfp.task import TASKS
from table_helpers import make_cell

COMPARED = {"mse_vs_baseline_steps": ("mse", "sfp", "baseline_steps"),
            "sfp_vs_baseline_steps": ("csi_m", "sfp", "baseline_steps")}


def _cell_with_windows(backbone, factor, seed=0):
    """A storms cell whose SFP errors are ``factor`` times the baseline's at every pixel of 8 windows from 4
    sequences: its MSE ratio is ``factor ** 2`` on every resample."""
    generator = torch.Generator().manual_seed(seed)
    truth = torch.rand(8, 2, 1, 8, 8, generator=generator) * 255
    error = 40 * torch.randn(8, 2, 1, 8, 8, generator=generator)
    metrics = build_task_metrics(TASKS["storms"])
    rows = {name: metrics.window_states(("csi_m", "mse"), truth + scale * error, truth).tolist()
            for name, scale in (("baseline_steps", 1.0), ("sfp", factor))}
    cell = make_cell("storms", backbone, 0, 0.3, 0.2, 0.25)
    cell["per_window"] = {"keys": ["csi_m", "mse"], "sequence": [0, 0, 1, 1, 2, 2, 3, 3], "models": rows}
    return cell


def test_a_change_the_same_on_every_sequence_has_no_spread():
    draws = cell_draws(_cell_with_windows("simvp", 0.9), COMPARED, shared_weights())
    assert draws["mse_vs_baseline_steps"] == pytest.approx(np.full(2000, 0.81 - 1.0))
    intervals = dataset_intervals({"simvp": {0: draws}})
    assert intervals["mse_vs_baseline_steps"] == pytest.approx([-0.19, -0.19])


def test_the_dataset_interval_is_of_the_mean_over_backbones_resample_by_resample():
    weights = shared_weights()
    first, second = (cell_draws(_cell_with_windows(b, f, s), COMPARED, weights)
                     for b, f, s in (("simvp", 0.9, 0), ("unet", 1.0, 1)))
    intervals = dataset_intervals({"simvp": {0: first}, "unet": {0: second}})
    assert intervals["mse_vs_baseline_steps"] == pytest.approx([(0.81 - 1.0) / 2] * 2)  # -19 % and 0
    low, high = intervals["sfp_vs_baseline_steps"]
    assert low <= high
    assert dataset_intervals({"simvp": {0: first}, "unet": {0: None}}) is None  # a cell without states: none


def test_the_summary_gives_intervals_and_says_which_changes_are_significant():
    summary = summarize([_cell_with_windows("simvp", 0.9), _cell_with_windows("unet", 0.9, 1)])["storms"]
    assert summary["ci95"]["mse_vs_baseline_steps"] == pytest.approx([-0.19, -0.19])
    assert summary["significant"]["mse_vs_baseline_steps"] is True
    plain = summarize([make_cell("storms", "simvp", 0, 0.3, 0.2, 0.25)])["storms"]
    assert plain["ci95"] is None and plain["significant"] is None


def test_the_markdown_gives_each_change_with_its_interval():
    from sfp.table.render import markdown

    cells = [_cell_with_windows("simvp", 0.9), _cell_with_windows("unet", 0.9, 1)]
    assert " [-19.0%, -19.0%] |" in markdown(cells, summarize(cells))  # MSE vs equal steps, with its interval


def test_the_interval_spreads_when_the_change_differs_between_sequences():
    """SFP better on two sequences, worse on two: the resamples disagree, so the interval has width and holds the
    change on all sequences."""
    cell = _cell_with_windows("simvp", 1.0)
    generator = torch.Generator().manual_seed(3)
    truth = torch.rand(8, 2, 1, 8, 8, generator=generator) * 255
    error = 40 * torch.randn(8, 2, 1, 8, 8, generator=generator)
    scale = torch.tensor([0.5, 0.5, 0.5, 0.5, 1.5, 1.5, 1.5, 1.5])[:, None, None, None, None]
    metrics = build_task_metrics(TASKS["storms"])
    cell["per_window"]["models"] = {"baseline_steps": metrics.window_states(("csi_m", "mse"), truth + error,
                                                                            truth).tolist(),
                                    "sfp": metrics.window_states(("csi_m", "mse"), truth + scale * error,
                                                                 truth).tolist()}
    draws = cell_draws(cell, COMPARED, shared_weights())["mse_vs_baseline_steps"]
    low, high = dataset_intervals({"simvp": {0: {"mse_vs_baseline_steps": draws}}})["mse_vs_baseline_steps"]
    assert high - low > 0.5 and low < draws.mean() < high
