"""Per-window metric states: summed over any set of windows they give the metric over that set (what a bootstrap
over test sequences resamples), checked against the metric computed the usual way."""

import pytest
import torch

from sfp.metrics.task_metrics import build_task_metrics
from sfp.task import TASKS


@pytest.mark.parametrize("task, keys, scale", [("storms", ("csi_m", "mse"), 255.0),
                                               ("navier_stokes", ("tke_error", "mse"), 1.0),
                                               ("flame", ("ssim", "mse"), 1.0)])
def test_summed_window_states_give_the_metric_of_those_windows(task, keys, scale):
    generator = torch.Generator().manual_seed(0)
    shape = (6, 3, 1, 16, 16)
    truth = torch.rand(shape, generator=generator) * scale
    forecast = (truth + 0.3 * scale * torch.randn(shape, generator=generator)).clamp(0, scale)
    metrics = build_task_metrics(TASKS[task])
    rows = metrics.window_states(keys, forecast, truth)
    assert rows.shape[0] == 6
    sets = ([0, 1, 2, 3, 4, 5], [1, 4], [2])
    got = metrics.from_states(keys, torch.stack([rows[chosen].sum(0) for chosen in sets]))  # one row per set
    for row, chosen in enumerate(sets):
        reference = build_task_metrics(TASKS[task])
        reference.update(forecast[chosen], truth[chosen])
        expected = reference.compute()
        for key in keys:
            assert got[key].shape == (3,)
            torch.testing.assert_close(got[key][row], expected[key].double(), rtol=1e-6, atol=1e-9)
