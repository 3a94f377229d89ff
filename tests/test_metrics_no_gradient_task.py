"""Object CSI, SAL and the vortex census as evaluation metrics: the task metrics' optional extras, summed over a
set, with the default keys unchanged."""

import math

import pytest
import torch

from sfp.errors import UserError
from sfp.metrics import build_task_metrics, metric_units
from sfp.task import NAVIER_STOKES, STORMS


def _storm_cells() -> tuple[torch.Tensor, torch.Tensor]:
    """Truth cells of 200 and 150 VIL, forecast cells of 140 and 170, each pair 3 pixels apart (see
    test_metrics_objects)."""
    truth, forecast = torch.zeros(1, 1, 1, 12, 12), torch.zeros(1, 1, 1, 12, 12)
    truth[..., 2, 1], truth[..., 2, 6] = 200.0, 150.0
    forecast[..., 2, 4], forecast[..., 2, 9] = 140.0, 170.0
    return forecast, truth


def test_default_keys_are_unchanged():
    assert metric_units(STORMS, 2) == metric_units(STORMS, 2, extras={})
    assert build_task_metrics(STORMS, 2).extra_keys == []
    assert build_task_metrics(STORMS, 2, extras={"sal": {}}).extra_keys == [
        "sal_structure", "sal_amplitude", "sal_location", "sal_penalty"]


def test_object_metrics_summed_over_batches():
    metrics = build_task_metrics(STORMS, extras={"objects": {"radius": 3.5, "thresholds": [133, 181]}})
    forecast, truth = _storm_cells()
    metrics.update(forecast, truth)
    metrics.update(truth, truth)  # a perfect second batch: two more hits at 133, one at 181
    result = metrics.compute()
    assert result["object_csi_133"].item() == 1.0
    assert result["object_csi_181"].item() == pytest.approx(1 / 2)  # one hit, one miss
    assert result["object_csi_m"].item() == pytest.approx(3 / 4)
    # location: 3 + 3 + 0 + 0 over 4 pairs at 133, 0 over 1 pair at 181; peaks: 60 + 20 over 4 at 133, 0 at 181
    assert result["object_location_error_m"].item() == pytest.approx((6 / 4 + 0) / 2)
    assert result["object_peak_error_m"].item() == pytest.approx((80 / 4 + 0) / 2)
    assert metrics.units["object_location_error_m"] == "pixels"


def test_sal_and_vortex_metrics():
    field = torch.zeros(1, 2, 1, 8, 8)
    field[..., 2:5, 2:5] = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    dry = torch.zeros(1, 1, 1, 8, 8)
    metrics = build_task_metrics(STORMS, extras={"sal": {}})
    metrics.update(2 * field, field)
    metrics.update(dry, dry)  # undefined everywhere: left out of the means
    result = metrics.compute()
    assert result["sal_amplitude"].item() == pytest.approx(2 / 3)
    assert result["sal_structure"].item() == pytest.approx(0.0) and result["sal_location"].item() == pytest.approx(0.0)
    assert result["sal_penalty"].item() == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)  # the dry frame scores 0

    vortices = build_task_metrics(NAVIER_STOKES, extras={"vortices": {"radius": 4}})
    calm = torch.zeros(1, 1, 1, 16, 16)
    vortices.update(calm, calm)
    assert math.isnan(vortices.compute()["vortex_csi"].item())  # no core anywhere


def test_bad_extras_are_user_errors():
    with pytest.raises(UserError, match="unknown extra"):
        build_task_metrics(STORMS, extras={"blobs": {}})
    with pytest.raises(UserError, match="does not accept"):
        build_task_metrics(STORMS, extras={"objects": {"radius": 2, "size": 3}})
    with pytest.raises(UserError, match="does not accept"):
        build_task_metrics(NAVIER_STOKES, extras={"vortices": {}})  # no radius
    with pytest.raises(UserError):
        build_task_metrics(NAVIER_STOKES, extras={"objects": {"radius": 2}})  # no thresholds to find cells at
