"""The metric set of each task: keys, units, values in original units, NaN for undefined, module behaviour."""

import math
import warnings

import pytest
import torch

from sfp.errors import UserError
from sfp.metrics import TaskMetrics, build_task_metrics, metric_units, threshold_key
from sfp.metrics.heatwave_scores import Window
from sfp.task import FLAME, NAVIER_STOKES, OCEAN, SENSORS, STORMS, TASKS, TaskSpec

STORM_KEYS = {
    "mse", "mae", "mse_t1", "mse_t2", "csi_m", "pod_m", "far_m", "hss_m", "ets_m", "bias_m",
    "csi_16", "csi_74", "csi_133", "csi_160", "csi_181", "csi_219", "csi_pool4_m", "csi_pool16_m", "fss",
    "ssim", "psnr",
}


def test_threshold_keys():
    assert [threshold_key(t) for t in (16.0, 74, 0.5, 2.25)] == ["16", "74", "0.5", "2.25"]


def _calm_windows(batch):
    """Context of zeros and a climatology of 0 °C with a threshold of 1 °C on every day of the window."""
    context, days = batch[1], batch[1].shape[1] + batch[3].shape[1]
    flat = torch.zeros(context.shape[0], days, *context.shape[2:])
    return Window(context, flat, flat + 1.0, batch[3])


@pytest.mark.parametrize("name", sorted(TASKS))
def test_keys_units_and_headline(name):
    task = TASKS[name]
    metrics = build_task_metrics(task, target_len=2, windows=_calm_windows)
    shape = (2, 2, 3) if task is SENSORS else (2, 2, 1, 16, 16)
    truth = torch.rand(shape) * task.data_range
    batch = (None, torch.zeros(shape), None, truth)
    metrics.update(torch.rand(shape) * task.data_range, truth, batch)
    values = metrics.compute()
    assert task.headline in values
    assert set(values) == set(metric_units(task, target_len=2, windows=_calm_windows))
    assert all(v.dim() == 0 for v in values.values())


def test_keys_per_task():
    assert set(metric_units(STORMS, target_len=2)) == STORM_KEYS
    assert set(metric_units(NAVIER_STOKES)) == {"mse", "mae", "tke_error"}
    assert set(metric_units(FLAME)) == {"mse", "mae", "ssim", "psnr"}
    assert set(metric_units(SENSORS, target_len=3)) == {"mse", "mae", "mse_t1", "mse_t2", "mse_t3"}
    heatwaves = {"mhw_csi", "strong_core_csi", "onset_error", "peak_error"}
    assert set(metric_units(OCEAN, windows=_calm_windows)) == {"mse", "mae"} | heatwaves
    assert set(metric_units(OCEAN)) == {"mse", "mae"}  # no windows, no heatwave scores
    assert metric_units(OCEAN, windows=_calm_windows)["onset_error"] == "days"


def test_units():
    units = metric_units(STORMS, target_len=1)
    assert units["mse"] == units["mse_t1"] == "value/255 squared"
    assert units["mae"] == "value/255"
    assert units["csi_m"] == units["fss"] == units["ssim"] == "dimensionless"
    assert units["psnr"] == "dB"
    assert metric_units(SENSORS)["mse"] == "value squared"


def test_storm_values_in_original_units():
    target = torch.zeros(2, 2, 1, 32, 32)
    target[:, :, :, 8:16, 8:16] = 100.0  # events at 16 and 74 only
    pred = target + 25.5  # 0.1 on the VIL/255 scale everywhere
    metrics = build_task_metrics(STORMS, target_len=2)
    metrics.update(pred[:1], target[:1])
    metrics.update(pred[1:], target[1:])
    values = metrics.compute()
    assert values["mse"].item() == pytest.approx(0.01) and values["mae"].item() == pytest.approx(0.1)
    assert values["mse_t2"].item() == pytest.approx(0.01)
    # thr 16: 25.5 everywhere is forecast as an event -> H = 64·4, F = (1024 − 64)·4; thr 74: perfect
    assert values["csi_16"].item() == pytest.approx(64 / 1024)
    assert values["csi_74"].item() == 1.0
    assert math.isnan(values["csi_133"].item()) and math.isnan(values["csi_219"].item())
    assert values["csi_m"].item() == pytest.approx((64 / 1024 + 1.0) / 2)  # defined thresholds only
    assert values["pod_m"].item() == 1.0
    # pooled over 16x16 blocks: thr 16 is forecast in all 4 blocks, observed in block (0, 0) only; thr 74 perfect
    assert values["csi_pool16_m"].item() == pytest.approx((1 / 4 + 1.0) / 2)


def test_undefined_is_nan_never_zero():
    metrics = build_task_metrics(STORMS)
    zeros = torch.zeros(1, 2, 1, 16, 16)
    metrics.update(zeros, zeros)
    values = metrics.compute()
    for key in ("csi_m", "pod_m", "far_m", "hss_m", "ets_m", "bias_m", "csi_16", "csi_pool4_m", "fss"):
        assert math.isnan(values[key].item()), key
    assert values["mse"].item() == 0.0 and values["psnr"].item() == math.inf


def test_reset_and_module_behaviour():
    metrics = build_task_metrics(NAVIER_STOKES, target_len=2)
    assert isinstance(metrics, torch.nn.Module)
    parent = torch.nn.Module()
    parent.metrics = metrics
    parent.to("cpu")  # moves with its owner, as inside a LightningModule
    field = torch.randn(2, 2, 1, 16, 16)
    metrics.update(field, field)
    assert metrics.compute()["tke_error"].item() == 0.0
    metrics.reset()
    metrics.update(field, 2 * field)
    # energy of 2ω is 4x in every shell: log10 4
    assert metrics.compute()["tke_error"].item() == pytest.approx(math.log10(4), rel=1e-5)
    assert metrics.compute()["mse"].item() == pytest.approx((field**2).mean().item(), rel=1e-6)


def test_sensor_series_and_errors():
    task = TaskSpec("probe", value_scale=2.0)
    metrics = TaskMetrics(task, target_len=2)
    pred = torch.zeros(3, 2, 4)
    target = torch.full((3, 2, 4), 4.0)
    target[:, 1] = 2.0
    metrics.update(pred, target)
    values = metrics.compute()
    assert values["mse_t1"].item() == 4.0 and values["mse_t2"].item() == 1.0 and values["mae"].item() == 1.5
    with pytest.raises(UserError, match="shape"):
        metrics.update(pred, target[:, :1])
    with pytest.raises(UserError, match="target_len"):
        build_task_metrics(task, target_len=0)


def test_one_lead_time_and_one_threshold_give_their_keys():
    metrics = TaskMetrics(TaskSpec("one", thresholds=(1.0,)), target_len=1)
    pred = torch.tensor([[[2.0, 0.0, 2.0]]])  # one hit, one false alarm; squared errors 1, 0, 4
    metrics.update(pred, torch.tensor([[[3.0, 0.0, 0.0]]]))
    values = metrics.compute()
    assert values["mse_t1"].item() == pytest.approx(5 / 3) and values["csi_1"].item() == pytest.approx(0.5)


def test_compute_before_update_is_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics warns about compute before update
        values = build_task_metrics(FLAME).compute()
    assert all(math.isnan(v.item()) for v in values.values())
