"""`sfp fit | test | predict` on a tiny storms config: run layout, metrics.json, forecasts, errors, resume, DDP."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

import forked
from sfp.cli.main import main

TINY = {
    "seed_everything": 0,
    "trainer": {"accelerator": "cpu", "devices": 1, "max_steps": 4, "log_every_n_steps": 1,
                "enable_model_summary": False},
    "model": {"class_path": "sfp.forecasting.GridForecaster", "init_args": {
        "backbone": "simvp", "context_len": 3, "target_len": 3, "channels": 1, "normalization": {"global_norm": True},
        "backbone_kwargs": {"hidden_spatial": 4, "hidden_temporal": 8, "spatial_layers": 2, "temporal_blocks": 1}}},
    "data": {"class_path": "sfp.data.FieldDataModule", "init_args": {
        "dataset": "storms", "n_sequences": 12, "frames": 6, "size": 16, "windows": {"context": 3, "target": 3},
        "loading": {"batch_size": 4}, "splits": {"val_fraction": 0.25, "test_fraction": 0.25}}},
}


def _config(tmp_path, **trainer):
    config = json.loads(json.dumps(TINY))
    config["trainer"].update(default_root_dir=str(tmp_path / "run"), **trainer)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _sfp(*args, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "sfp", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("cli")
    config = _config(tmp_path)
    assert main(["fit", "--config", str(config)]) == 0
    return tmp_path, config


def test_fit_leaves_the_run_layout(trained):
    tmp_path, _ = trained
    run = tmp_path / "run"
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "checkpoints" / "best.ckpt").is_file()
    assert (run / "config.yaml").is_file() and list((run / "logs").rglob("metrics.csv"))
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 4


def test_test_writes_metrics_with_units(trained, capsys):
    tmp_path, config = trained
    assert main(["test", "--config", str(config), "--ckpt_path", "best"]) == 0
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["dataset"] == "storms"
    for key in ("mse", "mae", "csi_m", "csi_16", "csi_pool4_m", "mse_t1", "mse_t3"):
        assert key in report["metrics"] and report["units"][key]
    assert 0.0 <= report["metrics"]["mse"] < 1.0  # on VIL/255
    assert "test metrics" in capsys.readouterr().out


def test_predict_writes_forecasts_and_gif(trained):
    tmp_path, config = trained
    out = tmp_path / "forecast.npz"
    assert main(["predict", "--config", str(config), "--ckpt_path", "last", "--output", str(out)]) == 0
    arrays = np.load(out)
    assert arrays["forecast"].shape == arrays["truth"].shape == (3, 3, 1, 16, 16)
    assert arrays["context"].shape == (3, 3, 1, 16, 16) and np.isfinite(arrays["forecast"]).all()
    assert out.with_suffix(".gif").stat().st_size > 0


def test_override_on_the_command_line(tmp_path):
    config = _config(tmp_path)
    assert main(["fit", "--config", str(config), "--trainer.max_steps", "2",
                 "--trainer.default_root_dir", str(tmp_path / "other")]) == 0
    assert torch.load(tmp_path / "other" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2


def test_progress_bar_can_be_turned_off(tmp_path, capsys):
    config = _config(tmp_path)
    assert main(["fit", "--config", str(config), "--trainer.max_steps", "1",
                 "--trainer.enable_progress_bar", "false"]) == 0
    assert "Epoch 0" not in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["--model.init_args.backbon", "simvp"], "backbon"),
    (["--trainer.max_stepz", "3"], "max_stepz"),
    (["--data.init_args.dataset", "hurricanes"], "hurricanes"),
])
def test_mistyped_keys_are_one_line(tmp_path, capsys, argv, words):
    assert main(["fit", "--config", str(_config(tmp_path)), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sfp: error: ") and err.count("\n") == 1 and words in err and "Traceback" not in err


def test_test_without_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["test", "--config", str(_config(tmp_path)), "--ckpt_path", "best"]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_kill_and_resume(tmp_path):
    """SIGKILL a run after its first checkpoint; `--ckpt_path last` finishes it with the same final weights.

    The killed run is a forked child; the resumed run and the uninterrupted reference run in this process."""
    config = _config(tmp_path, max_steps=30)
    (tmp_path / "ref").mkdir()
    reference = _config(tmp_path / "ref", max_steps=30)
    fit = ["fit", "--config", str(config), "--checkpoint_every", "3", "--trainer.enable_progress_bar", "false"]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert forked.kill_when(forked.start(fit), last.exists), "the run should be killed part-way"
    step = torch.load(last, weights_only=True)["global_step"]
    assert 0 < step < 30, "the run should be killed part-way"
    assert main([*fit, "--ckpt_path", "last"]) == 0
    assert main(["fit", "--config", str(reference), "--checkpoint_every", "3", "--trainer.enable_progress_bar",
                 "false"]) == 0
    final = torch.load(last, weights_only=True)
    expected = torch.load(tmp_path / "ref" / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == expected["global_step"] == 30
    for key, value in expected["state_dict"].items():
        torch.testing.assert_close(final["state_dict"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    run = tmp_path / "run"  # nothing left over: whole checkpoints, logs, the config and the run-folder files only
    assert {path.relative_to(run).parts[0] for path in run.rglob("*") if path.is_file()} == {
        "checkpoints", "logs", "config.yaml", "sfp-run.json", "sfp-run.lock"}
    for checkpoint in (run / "checkpoints").iterdir():
        torch.load(checkpoint, weights_only=True)


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    config = _config(tmp_path)
    proc = _sfp("fit", "--config", str(config), "--trainer.devices", "2", "--trainer.strategy", "ddp")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4


@pytest.fixture(scope="module")
def world_model_checkpoint(trained):
    """A one-step world model of the tiny config's frames (3 -> 3, 16x16), saved by a Trainer."""
    import lightning as L

    from sfp.data import FieldDataModule
    from sfp.planning.world_model_module import WorldModelModule

    tmp_path, _ = trained
    world = WorldModelModule({"in_frames": 3, "out_frames": 3, "width": 8, "encoder_blocks": 1,
                              "decoder_blocks": 1, "code_dim": 4, "codebook_size": 16}, warmup_steps=0)
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=str(tmp_path / "world"))
    trainer.fit(world, datamodule=FieldDataModule(**TINY["data"]["init_args"]))
    trainer.save_checkpoint(tmp_path / "world.ckpt")
    return str(tmp_path / "world.ckpt")


def test_predict_ensemble_writes_members_and_exceedance(trained, world_model_checkpoint):
    import xarray as xr

    tmp_path, config = trained
    out = tmp_path / "ensemble.nc"
    assert main(["predict", "--config", str(config), "--ckpt_path", "last", "--output", str(out),
                 "--ensemble", "4", "--world_model_checkpoint", world_model_checkpoint]) == 0
    data = xr.open_dataset(out, engine="h5netcdf")
    assert data["members"].dims[:3] == ("sample", "member", "time_target")
    assert data["members"].shape == (3, 4, 3, 1, 16, 16)
    assert data["exceedance"].shape == (3, 6, 3, 1, 16, 16)  # storms' six thresholds
    probability = data["exceedance"].values
    assert ((probability >= 0) & (probability <= 1)).all()
    members = data["members"].values
    assert np.array_equal(probability[:, 0], (members >= 16.0).mean(1))  # the first threshold, by hand


def test_predict_ensemble_without_world_model_is_one_line(trained, capsys):
    _, config = trained
    assert main(["predict", "--config", str(config), "--ckpt_path", "last", "--ensemble", "2"]) == 2
    assert "--world_model_checkpoint" in capsys.readouterr().err
