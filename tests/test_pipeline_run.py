"""`sfp pipeline` end to end on a tiny storms config: every stage's output, metrics.json, report and re-run."""

import json
import shutil

import pytest
import torch

from forked import skip_once_the_gpu_was_used
from pipeline_helpers import DATA, write_config
from sfp.cli.main import main
from sfp.data import FieldDataModule
from sfp.training import read_checkpoint


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    path = write_config(root / "tiny_sfp.yaml", root / "run")
    assert main(["pipeline", "--config", str(path)]) == 0
    return root / "run", path


def test_metrics_json_has_every_model_and_key(run):
    results = json.loads((run[0] / "metrics.json").read_text())
    assert results["dataset"] == "storms"
    assert set(results["models"]) == {"persistence", "agent", "baseline_steps", "sfp"}
    for metrics in results["models"].values():
        assert {"mse", "mae", "ssim", "csi_m", "csi_pool4_m", "csi_pool16_m", "fss"} <= set(metrics)
        assert set(metrics["csi"]) == {"16", "74", "133", "160", "181", "219"}
    assert set(results["seconds"]) >= {"data", "agent", "baseline_steps", "world_model", "sfp", "evaluate"}


def test_persistence_row_matches_a_direct_computation(run):
    """Persistence repeats the last context frame; its MSE on VIL/255 over the test split, computed here."""
    datamodule = FieldDataModule(**DATA)
    datamodule.setup("test")
    squared, count = 0.0, 0
    for _, context, _, truth in datamodule.test_dataloader():
        squared += ((context[:, -1:] - truth) / 255).pow(2).sum().item()
        count += truth.numel()
    results = json.loads((run[0] / "metrics.json").read_text())
    assert results["models"]["persistence"]["mse"] == pytest.approx(squared / count, rel=1e-5)


def test_the_evaluate_stage_keeps_csi_per_lead_counted_by_hand(run):
    """The same pass as the metrics fills the per-lead views: persistence's CSI at VIL >= 74, lead by lead."""
    datamodule = FieldDataModule(**DATA)
    datamodule.setup("test")
    hits = misses = false_alarms = 0
    for _, context, _, truth in datamodule.test_dataloader():
        forecast, observed = context[:, -1:] >= 74, truth >= 74
        hits = hits + (forecast & observed).sum(dim=(0, 2, 3, 4))
        misses = misses + (~forecast & observed).sum(dim=(0, 2, 3, 4))
        false_alarms = false_alarms + (forecast & ~observed).sum(dim=(0, 2, 3, 4))
    expected = (hits / (hits + misses + false_alarms)).tolist()
    per_lead = json.loads((run[0] / "evaluate" / "metrics.json").read_text())["per_lead"]
    assert set(per_lead) == {"persistence", "agent", "baseline_steps", "sfp"}
    assert per_lead["persistence"]["csi_per_lead"]["74"] == pytest.approx(expected, rel=1e-6)


def test_baseline_and_sfp_train_the_same_steps_and_report_is_written(run):
    manifest = json.loads((run[0] / "manifest.json").read_text())["stages"]
    assert all(manifest[stage]["status"] == "done" for stage in manifest)
    assert manifest["baseline_steps"]["outputs"]["steps"] == manifest["sfp"]["outputs"]["steps"] == 2
    report = (run[0] / "report.md").read_text()
    assert "| metric | persistence | agent | baseline_steps | sfp | SFP vs equal-step baseline |" in report
    assert (run[0] / "forecasts.gif").stat().st_size > 0
    from PIL import Image

    with Image.open(run[0] / "forecast.gif") as gif:  # storms: a frame per lead time (3) on the VIL scale
        assert gif.n_frames == 3
    with Image.open(run[0] / "forecast.png") as png:  # truth, baseline, SFP: three rows of >= 128 px panels
        assert png.size[1] >= 3 * 128
    assert "![forecast](forecast.png)" in report
    sfp_state = torch.load(run[0] / "sfp" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert sfp_state and all(key.startswith("agent.") for key in sfp_state)


def test_each_stages_checkpoints_carry_the_run_spec_they_trained_with(run):
    """The settings beside the weights, as plain data: the spec of the run's config, field for field."""
    from sfp.pipeline_config import load_config

    config = load_config(["--config", str(run[1])])
    for stage in ("agent", "world_model", "sfp"):
        for name in ("last", "best"):
            kept = torch.load(run[0] / stage / "checkpoints" / f"{name}.ckpt", weights_only=True)["sfp_run_spec"]
            assert kept["sfp"]["pseudo_labels"] == config["sfp"]["pseudo_labels"]
            assert kept["data"] == config["data"] and kept["agent_trainer"] == config["agent_trainer"]
            assert set(kept) == set(config) - {"config"}


def test_rerun_skips_every_finished_stage(run, capsys):
    assert main(["pipeline", "--config", str(run[1])]) == 0
    out = capsys.readouterr().out
    assert out.count("done before, reused") == 7 and "running" not in out


def test_a_moved_run_directory_evaluates_again(run, tmp_path):
    moved, away = tmp_path / "moved", run[0].with_name("away")
    shutil.copytree(run[0], moved)
    manifest_path = moved / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for stage in ("evaluate", "report"):
        del manifest["stages"][stage]
    manifest_path.write_text(json.dumps(manifest))
    config = write_config(tmp_path / "moved.yaml", moved)
    run[0].rename(away)  # the checkpoints' saved paths point here: gone
    try:
        assert main(["pipeline", "--config", str(config)]) == 0
    finally:
        away.rename(run[0])
    moved_models, models = (json.loads((root / "metrics.json").read_text())["models"] for root in (moved, run[0]))
    assert moved_models == models


def test_training_stages_run_under_ddp_with_no_code_change(run, tmp_path):
    """The fine-tuning stages on two processes (DDP over gloo, forked): same steps, metrics near one process's."""
    skip_once_the_gpu_was_used()
    ddp = tmp_path / "ddp"
    shutil.copytree(run[0], ddp)
    config = write_config(tmp_path / "ddp.yaml", ddp)
    spawn = ["--sfp_trainer.devices", "2", "--sfp_trainer.strategy", "ddp_fork", "--sfp_trainer.accelerator", "cpu"]
    assert main(["pipeline", "--config", str(config), *spawn]) == 0
    manifest = json.loads((ddp / "manifest.json").read_text())["stages"]
    assert manifest["baseline_steps"]["outputs"]["steps"] == manifest["sfp"]["outputs"]["steps"] == 2
    assert manifest["sfp"]["outputs"]["processes"] == 2 and manifest["agent"]["outputs"]["processes"] == 1
    ddp_models, models = (json.loads((root / "metrics.json").read_text())["models"] for root in (ddp, run[0]))
    assert ddp_models["persistence"] == models["persistence"]
    for name in ("baseline_steps", "sfp"):
        assert ddp_models[name]["mse"] == pytest.approx(models[name]["mse"], rel=0.05)


def test_equal_time_and_surrogate_baselines_and_a_shared_world_model(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run[0], copy)
    shared = run[0] / "world_model" / "checkpoints" / "best.ckpt"
    config = write_config(tmp_path / "copy.yaml", copy)
    assert main(["pipeline", "--config", str(config), "--equal_time_baseline", "true",
                 "--world_model_from", str(shared), "--surrogate_baseline", "true",
                 "--surrogate_weights", "[0.5, 4.0]"]) == 0
    manifest = json.loads((copy / "manifest.json").read_text())["stages"]
    assert manifest["world_model"]["outputs"]["from"] == str(shared)
    assert manifest["baseline_time"]["outputs"]["budget_seconds"] == manifest["sfp"]["seconds"]
    assert manifest["baseline_time"]["outputs"]["steps"] >= 1
    surrogate = manifest["surrogate"]["outputs"]
    changes = surrogate["val_mse_change"]
    assert changes["baseline_steps"] == 0.0
    gap = {name: abs(change - changes["sfp"]) for name, change in changes.items() if name.startswith("w")}
    nearest = f"w{surrogate['weight']:g}"
    assert gap[nearest] == min(gap.values())
    if min(gap["w0.5"], gap["w4"]) <= 0.01:  # the grid matched SFP's MSE change: no weight added
        assert len(gap) == 2
    else:  # weights added until one matches, three at most
        assert len(gap) > 2 and (gap[nearest] <= 0.01 or len(gap) == 5)
    kept = read_checkpoint(surrogate["checkpoint"])["state_dict"]
    chosen = read_checkpoint(str(copy / "surrogate" / nearest / "checkpoints" / "best.ckpt"))["state_dict"]
    assert all(torch.equal(kept[key], chosen[key]) for key in chosen)
    models = json.loads((copy / "metrics.json").read_text())["models"]
    assert set(models) == {"persistence", "agent", "baseline_steps", "baseline_time", "surrogate", "sfp"}
    report = (copy / "report.md").read_text()
    assert "SFP vs equal-time baseline" in report and "SFP vs surrogate" in report


def test_agent_patience_stops_on_the_headline_metric():
    from sfp.data import FieldDataModule
    from sfp.training import run_callbacks

    stopping = [c for c in run_callbacks("unused", FieldDataModule(**DATA), patience=3)
                if type(c).__name__ == "EarlyStopping"]
    assert len(stopping) == 1 and (stopping[0].monitor, stopping[0].mode, stopping[0].patience) == ("val/csi_m",
                                                                                                  "max", 3)


def _continued(run, tmp_path, *arguments):
    """A copy of the finished run continued with ``arguments``: its folder, config, and manifest stages before and
    after."""
    copy = tmp_path / "copy"
    shutil.copytree(run[0], copy)
    config = write_config(tmp_path / "copy.yaml", copy)
    before = json.loads((copy / "manifest.json").read_text())["stages"]
    assert main(["pipeline", "--config", str(config), *arguments]) == 0
    return copy, config, before, json.loads((copy / "manifest.json").read_text())["stages"]


def test_balanced_mse_and_facl_peers_are_stages_beside_the_finished_ones(run, tmp_path):
    """The published peers at matched MSE: each a stage of its own (the finished stages reused), trained with its
    loss added to the MSE (same seed and batches as the equal-step baseline, so any other weights come from it)."""
    copy, _, before, manifest = _continued(run, tmp_path, "--balanced_mse_baseline", "true", "--facl_baseline",
                                           "true", "--surrogate_weights", "[0.5]")
    assert all(manifest[stage]["id"] == before[stage]["id"] for stage in ("agent", "baseline_steps", "sfp"))
    baseline = read_checkpoint(manifest["baseline_steps"]["outputs"]["checkpoint"])["state_dict"]
    for peer in ("balanced_mse", "facl"):
        outputs = manifest[peer]["outputs"]
        trained = read_checkpoint(outputs["checkpoint"])["state_dict"]
        assert any(not torch.equal(trained[key], baseline[key]) for key in baseline), peer
        assert read_checkpoint(outputs["checkpoint"])["hyper_parameters"]["peer"] == peer
    models = json.loads((copy / "metrics.json").read_text())["models"]
    assert {"balanced_mse", "facl"} <= set(models)
    report = (copy / "report.md").read_text()
    assert "SFP vs balanced MSE" in report and "SFP vs FACL" in report


def test_the_qmap_peer_maps_the_equal_step_baseline_at_sfps_mse_change(run, tmp_path):
    """No training: the baseline's validation forecasts mapped onto the truth's quantiles per lead time, blended so
    that the validation MSE change is SFP's; evaluated on the test split beside the others."""
    from sfp.pipeline import Pipeline
    from sfp.pipeline_config import load_config
    from sfp.stages import validate

    copy, config, before, manifest = _continued(run, tmp_path, "--qmap_baseline", "true")
    assert all(manifest[stage]["id"] == before[stage]["id"] for stage in ("agent", "baseline_steps", "sfp"))
    outputs = manifest["qmap"]["outputs"]
    assert 0.0 <= outputs["blend"] <= 1.0
    pipeline = Pipeline(load_config(["--config", str(config), "--qmap_baseline", "true"]), lambda _: None)
    val = validate(pipeline, {name: pipeline.checkpoint(name) for name in ("baseline_steps", "qmap", "sfp")})
    changes = {name: val[name]["mse"] / val["baseline_steps"]["mse"] - 1.0 for name in ("qmap", "sfp")}
    assert changes["sfp"] == pytest.approx(outputs["val_mse_change"]["sfp"])
    if outputs["blend"] not in (0.0, 1.0):  # reachable: matched
        assert changes["qmap"] == pytest.approx(changes["sfp"], abs=1e-3)
    assert "qmap" in json.loads((copy / "metrics.json").read_text())["models"]
    assert "SFP vs quantile-mapped baseline" in (copy / "report.md").read_text()


def test_sfp_can_search_without_the_world_model(run, tmp_path):
    """planner.kind perturbation: the SFP stage plans over perturbations of the agent's own forecast (the peer that
    isolates the world model); only SFP and what follows it run again."""
    _, _, before, manifest = _continued(run, tmp_path, "--sfp.planner.kind", "perturbation")
    assert manifest["baseline_steps"]["id"] == before["baseline_steps"]["id"]
    assert manifest["sfp"]["id"] != before["sfp"]["id"]
    assert manifest["sfp"]["spec"]["sfp"]["planner"]["kind"] == "perturbation"
    assert read_checkpoint(manifest["sfp"]["outputs"]["checkpoint"])["hyper_parameters"]["planner"]["kind"] == (
        "perturbation")


def test_with_gauges_every_fine_tuning_stage_trains_on_the_gauges(run, tmp_path):
    """sfp.gauges: the baselines and SFP are built with it (their MSE, peer loss and reward see the gauges alone);
    the test split is still scored on the full field."""
    copy, _, before, manifest = _continued(run, tmp_path, "--sfp.gauges", "0.05")
    assert manifest["agent"]["id"] == before["agent"]["id"]  # the agent saw the whole field
    for stage in ("baseline_steps", "sfp"):
        assert read_checkpoint(manifest[stage]["outputs"]["checkpoint"])["hyper_parameters"]["gauges"] == 0.05
    before_metrics = json.loads((run[0] / "metrics.json").read_text())["models"]
    after = json.loads((copy / "metrics.json").read_text())["models"]
    assert after["persistence"] == before_metrics["persistence"]  # scored on the same, full test field


def test_sfp_can_learn_from_advantage_weighted_labels(run, tmp_path):
    """pseudo_labels.beta: the label blends every future the search scored by softmax(beta * advantage); only SFP
    and what follows it run again."""
    _, _, before, manifest = _continued(run, tmp_path, "--sfp.pseudo_labels.beta", "10")
    assert manifest["baseline_steps"]["id"] == before["baseline_steps"]["id"]
    assert manifest["sfp"]["id"] != before["sfp"]["id"]
    assert read_checkpoint(manifest["sfp"]["outputs"]["checkpoint"])["hyper_parameters"]["pseudo_labels"]["beta"] == 10


def test_a_run_judged_on_a_score_with_no_gradient_reevaluates_only(run, tmp_path):
    """``evaluation``: object scores added on the test split and object CSI the metric the run is judged on; only
    the evaluation and the report run again, and the per-window states rebuild the metric the table reads."""
    from sfp.metrics.task_metrics import build_task_metrics
    from sfp.task import TASKS

    copy, _, before, manifest = _continued(run, tmp_path, "--evaluation.metric", "object_csi_m",
                                           "--evaluation.extras", "{objects: {radius: 4}}")
    assert [stage for stage in manifest if manifest[stage]["id"] != before[stage]["id"]] == ["evaluate", "report"]
    results = json.loads((copy / "evaluate" / "metrics.json").read_text())
    assert results["metric"] == "object_csi_m" and results["per_window"]["keys"] == ["object_csi_m", "mse"]
    assert {"object_csi_m", "object_location_error_m", "csi_m"} <= set(results["models"]["sfp"])
    metrics = build_task_metrics(TASKS["storms"], extras={"objects": {"radius": 4}})
    rows = torch.tensor(results["per_window"]["models"]["sfp"], dtype=torch.float64)
    rebuilt = metrics.from_states(("object_csi_m", "mse"), rows.sum(0, keepdim=True))
    assert rebuilt["object_csi_m"].item() == pytest.approx(results["models"]["sfp"]["object_csi_m"], rel=1e-6)
    assert main(["pipeline", "--config", str(write_config(tmp_path / "bad.yaml", copy)),
                 "--evaluation.metric", "object_csi"]) == 2  # not a score the evaluation reports
