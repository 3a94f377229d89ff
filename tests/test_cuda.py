"""On a CUDA device: backbones, task metrics, ensembles and the whole pipeline give what they give on the CPU.

Skipped where torch sees no CUDA device (CI); run them on a GPU machine with ``pytest tests/test_cuda.py``.
"""

import json

import pytest
import torch
import yaml

from forecaster_helpers import tiny_trainer
from pipeline_helpers import write_config
from sfp.cli.main import main
from sfp.forecasting import DLinearForecaster, LSTMForecaster
from sfp.forecasting.performer import SpatioTemporalPerformerForecaster
from sfp.metrics import build_task_metrics
from sfp.models import build
from sfp.planning.ensemble import forecast_ensemble
from sfp.planning.options import Imagination
from sfp.task import TASKS
from test_cli_train import TINY as CLI_TINY
from test_ensemble_forecast import Constant
from test_models_backbones import TINY
from test_performer_forecaster import TINY as PERFORMER_TINY
from test_performer_forecaster import _data as series_data
from world_model_helpers import random_frames, tiny_world_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def full_float32():
    """cuDNN convolutions default to TF32 (10-bit mantissa); compare against the CPU at full float32."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_backbone_forecasts_on_cuda_what_it_forecasts_on_the_cpu(name):
    model = build(name, in_frames=3, out_frames=2, channels=1, seed=0, **TINY[name]).eval()
    frames = torch.randn(2, 3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        on_cpu = model(frames)
        on_cuda = model.to(CUDA)(frames.to(CUDA))
    assert on_cuda.device.type == "cuda"
    torch.testing.assert_close(on_cuda.cpu(), on_cpu, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["storms", "navier_stokes", "flame"])
def test_task_metrics_accumulated_on_cuda_equal_the_cpus(name):
    task = TASKS[name]
    generator = torch.Generator().manual_seed(1)
    pairs = [(torch.rand(2, 2, 1, 16, 16, generator=generator) * task.data_range,
              torch.rand(2, 2, 1, 16, 16, generator=generator) * task.data_range) for _ in range(3)]
    results = {}
    for device in ("cpu", CUDA):
        metrics = build_task_metrics(task, target_len=2).to(device)
        for pred, target in pairs:
            metrics.update(pred.to(device), target.to(device))
        results[str(device)] = {key: float(value) for key, value in metrics.compute().items()}
    assert results["cpu"].keys() == results["cuda"].keys()
    for key, value in results["cpu"].items():
        assert results["cuda"][key] == pytest.approx(value, rel=1e-4, abs=1e-6, nan_ok=True), key


def test_ensemble_members_are_drawn_on_cuda_and_centred_on_the_forecast():
    model = tiny_world_model().to(CUDA).eval()
    context, forecast = random_frames(2, 3).to(CUDA), random_frames(2, 2, seed=1).to(CUDA)
    result = forecast_ensemble(Constant(forecast), model, (None, context, None), Imagination(5, 4, 1.0),
                               torch.Generator(CUDA).manual_seed(0))
    assert result.members.device.type == "cuda" and result.members.shape == (2, 5, 2, 1, 8, 8)
    assert result.members.std(1).mean() > 0
    torch.testing.assert_close(result.members.mean(1), forecast, rtol=1e-4, atol=1e-3)


SERIES_SHAPE = dict(d_y_context=3, d_y_target=3, d_x=1, context_len=6, target_len=3)
SERIES = {
    "performer_decomposed": lambda: SpatioTemporalPerformerForecaster(
        **SERIES_SHAPE, model={**PERFORMER_TINY, "redraw_interval": 2},
        normalization={"seasonal_decomp": True, "decomp_kernel_size": 3, "revin": True}),
    "performer_autoregressive": lambda: SpatioTemporalPerformerForecaster(
        **SERIES_SHAPE, model={**PERFORMER_TINY, "causal_decoder": True},
        rollout={"autoregressive": True, "ar_step": 1, "scheduled_sampling_k": 5.0}),
    "performer_linear_head": lambda: SpatioTemporalPerformerForecaster(
        **SERIES_SHAPE, model=PERFORMER_TINY, variables_per_token=3,
        linear_head={"window": 4, "cross_variable": True, "fit": "least_squares"}),
    "lstm": lambda: LSTMForecaster(d_y_context=3, d_y_target=3, context_len=6, target_len=3, hidden_size=8),
    "dlinear": lambda: DLinearForecaster(d_y_context=3, d_y_target=3, context_len=6, target_len=3, kernel_size=3),
}


@pytest.mark.parametrize("name", sorted(SERIES))
def test_series_forecasters_train_and_validate_on_the_gpu(name):
    model = SERIES[name]()
    trainer = tiny_trainer(accelerator="gpu", max_steps=2, limit_val_batches=1)
    trainer.fit(model, datamodule=series_data())
    assert trainer.global_step == 2 and trainer.strategy.root_device.type == "cuda"  # (fit ends on the CPU)
    scores = trainer.validate(model, datamodule=series_data(), verbose=False)[0]
    assert scores and all(torch.isfinite(torch.tensor(value)) for value in scores.values())


@pytest.fixture(scope="module")
def gpu_pipeline(tmp_path_factory):
    """The tiny pipeline with every stage on the GPU, the equal-time and surrogate baselines included."""
    root = tmp_path_factory.mktemp("gpu_pipeline")
    run = root / "run"
    gpu = {"accelerator": "gpu", "devices": 1}
    config = write_config(root / "gpu.yaml", run)
    sections = ("agent_trainer", "world_model_trainer", "sfp_trainer")
    overrides = [arg for section in sections for key, value in gpu.items()
                 for arg in (f"--{section}.{key}", str(value))]
    assert main(["pipeline", "--config", str(config), *overrides, "--equal_time_baseline", "true",
                 "--surrogate_baseline", "true", "--surrogate_weights", "[0.5]"]) == 0
    return run


def test_the_pipeline_trains_every_stage_on_the_gpu(gpu_pipeline):
    """Agent, world model, SFP and the three baselines on the GPU: every stage ends, the fine-tuned agents train
    the same steps, and the scores are finite."""
    run = gpu_pipeline
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    assert all(entry["status"] == "done" for entry in stages.values())
    assert stages["baseline_steps"]["outputs"]["steps"] == stages["sfp"]["outputs"]["steps"] == 2
    models = json.loads((run / "metrics.json").read_text())["models"]
    assert set(models) == {"persistence", "agent", "baseline_steps", "baseline_time", "surrogate", "sfp"}
    assert all(torch.isfinite(torch.tensor(metrics["mse"])) for metrics in models.values())


def test_fit_test_and_an_ensemble_prediction_on_the_gpu(gpu_pipeline, tmp_path):
    """``sfp fit``, ``sfp test`` and ``sfp predict --ensemble`` with ``--trainer.accelerator gpu``; the members come
    from the pipeline's world model (the same 3 -> 3 frames of 16x16)."""
    import xarray as xr

    config = json.loads(json.dumps(CLI_TINY))
    config["trainer"].update(accelerator="gpu", default_root_dir=str(tmp_path / "run"))
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["fit", "--config", str(path)]) == 0
    assert main(["test", "--config", str(path), "--ckpt_path", "last"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]
    assert all(torch.isfinite(torch.tensor(value)) for value in metrics.values())
    world_model = gpu_pipeline / "world_model" / "checkpoints" / "best.ckpt"
    out = tmp_path / "ensemble.nc"
    assert main(["predict", "--config", str(path), "--ckpt_path", "last", "--output", str(out), "--ensemble", "4",
                 "--world_model_checkpoint", str(world_model)]) == 0
    data = xr.open_dataset(out, engine="h5netcdf")
    assert data["members"].shape == (3, 4, 3, 1, 16, 16)
    probability = data["exceedance"].values
    assert ((probability >= 0) & (probability <= 1)).all()
