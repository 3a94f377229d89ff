"""Pipeline bookkeeping: config loading and overrides, stage skipping and re-running, the report table."""

import dataclasses
import json
from pathlib import Path

import pytest

from pipeline_helpers import write_config
from sfp.errors import UserError
from sfp.pipeline import Pipeline
from sfp.pipeline_config import load_config
from sfp.report.markdown import comparison_table, relative_change
from sfp.stage_graph import GRAPH, STAGES

OPTIONAL = [stage.name for stage in GRAPH if stage.switch]


def _load(tmp_path, *overrides, **changes):
    return load_config(["--config", str(write_config(tmp_path / "p.yaml", tmp_path / "run", **changes)), *overrides])


def test_overrides_use_the_same_dotted_syntax_as_sfp_fit(tmp_path):
    config = _load(tmp_path, "--sfp.pseudo_labels.weight", "0.5", "--agent_trainer.max_steps=7",
                   "--agent.init_args.target_len", "3", "--world_model.architecture.width", "16")
    assert config["sfp"]["pseudo_labels"]["weight"] == 0.5 and config["agent_trainer"]["max_steps"] == 7
    assert config["world_model"]["architecture"]["width"] == 16
    assert config["sfp"]["planner"]["imagination"] == {"samples": 4, "candidates": 2, "temperature": 10.0}


def test_shipped_configs_are_found_by_name():
    config = load_config(["--config", "storms_sfp", "--run_dir", "elsewhere"])
    assert config["run_dir"] == "elsewhere" and config["sfp"]["pseudo_labels"]["kind"] == "raise"


@pytest.mark.parametrize("overrides, words", [
    (["--sfp.pseudo_labels.wieght", "1"], "wieght"),
    (["--nosuch.key", "1"], "nosuch"),
    (["--sfp_trainer.max_steps", "abc"], "max_steps"),
    (["--sfp.planner.kind", "greedy"], "planner.kind"),
    (["--sfp.pseudo_labels.weight", "-1"], "pseudo_labels.weight"),
    (["--sfp_trainer.max_steps", "-5"], "max_steps must be >= -1"),
    (["--until", "nowhere"], "until"),
    (["--set", "sfp.pseudo_weight=1"], "--set KEY=VALUE is gone"),
    (["--sfp.pseudo_weight", "1"], "sfp.pseudo_weight moved to sfp.pseudo_labels.weight"),
    (["--world_model.width", "8"], "world_model.width moved to world_model.architecture.width"),
    (["--data", "subprocess.Popen"], "data"),
    (["--data.init_args.frames", "4"], "longer than the 4 frames"),
    (["--data.init_args.batch_size", "4"], "data.init_args.batch_size moved to data.init_args.loading.batch_size"),
])
def test_bad_overrides_name_the_problem(tmp_path, overrides, words):
    with pytest.raises(UserError, match=words):
        _load(tmp_path, *overrides)
    assert not (tmp_path / "run").exists()  # nothing on disk is touched before the whole config is valid


@pytest.mark.parametrize("changes, words", [
    ({"sfp": {"pseudo_weight": 1.0}}, "sfp.pseudo_weight moved to sfp.pseudo_labels.weight"),
    ({"sfp": {"planner": "mosaic"}}, "sfp.planner is a section now"),
    ({"world_model": {"in_frames": 3}}, "world_model.in_frames moved to world_model.architecture.in_frames"),
    ({"seed": 0}, "seed moved to seed_everything"),
    ({"data": {"class_path": "sfp.data.FieldDataModule", "init_args": {"context": 3}}},
     "data.init_args.context moved to data.init_args.windows.context"),
    ({"extra": {"a": 1}}, "extra"),
])
def test_old_and_unknown_keys_in_a_config_are_one_line(tmp_path, changes, words):
    with pytest.raises(UserError, match=words):
        _load(tmp_path, **changes)
    with pytest.raises(UserError, match="no such config file"):
        load_config(["--config", str(tmp_path / "absent.yaml")])


def _run(config, fail_at=None):
    """Run a pipeline whose stages only write which settings made them (`fail_at` is interrupted mid-stage)."""
    pipeline = Pipeline(config, log=lambda _: None)
    ran = []

    def stage(name):
        out = pipeline.stage_dir(name)
        out.mkdir(parents=True, exist_ok=True)
        (out / "made_by.json").write_text(json.dumps(config["sfp_trainer"]["max_steps"]))
        if name == fail_at:
            raise KeyboardInterrupt
        ran.append(name)
        if name == "baseline_time":
            return {"budget_seconds": pipeline.manifest.stages["sfp"]["seconds"]}

    for name in STAGES:
        pipeline.work[name] = lambda name=name: stage(name)
    try:
        pipeline.run()
    except KeyboardInterrupt:
        pass
    return ran


def test_rerun_skips_finished_stages_and_redoes_changed_ones(tmp_path):
    config = _load(tmp_path)
    assert _run(config) == [stage for stage in STAGES if stage not in OPTIONAL]  # optional comparisons
    assert _run(config) == []  # everything done
    config["world_model_trainer"]["max_steps"] = 2
    assert _run(config) == ["world_model", "sfp", "evaluate", "report"]  # the change and what uses its output
    config["sfp"]["pseudo_labels"]["weight"] = 0.3  # a planning setting: the baseline does not plan
    assert _run(config) == ["sfp", "evaluate", "report"]
    config["sfp"]["lr"] = 1e-4  # the fine-tuning's own settings shape the baseline too
    assert _run(config) == ["baseline_steps", "sfp", "evaluate", "report"]
    config["agent_trainer"]["max_steps"] = 4
    assert _run(config) == ["agent", "baseline_steps", "sfp", "evaluate", "report"]
    config["equal_time_baseline"] = True  # compared after SFP, with SFP's seconds: evaluation takes it in
    assert _run(config) == ["baseline_time", "evaluate", "report"]
    config["sfp"]["pseudo_labels"]["weight"] = 0.5
    assert _run(config) == ["sfp", "baseline_time", "evaluate", "report"]
    config["world_model_from"] = "elsewhere.ckpt"  # a shared world model: SFP uses it, the baselines do not
    assert _run(config) == ["world_model", "sfp", "baseline_time", "evaluate", "report"]
    config["surrogate_baseline"] = True  # matched to SFP's MSE change: it follows SFP and the baseline
    assert _run(config) == ["surrogate", "evaluate", "report"]
    config["surrogate_weights"] = [1.0]
    assert _run(config) == ["surrogate", "evaluate", "report"]
    config["sfp"]["lr"] = 2e-4
    assert _run(config) == ["baseline_steps", "sfp", "baseline_time", "surrogate", "evaluate", "report"]


def test_equal_time_baseline_runs_again_when_the_sfp_seconds_it_matched_change(tmp_path):
    config = _load(tmp_path, "--equal_time_baseline", "true")
    _run(config)
    assert _run(config) == []
    path = tmp_path / "run" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["stages"]["sfp"]["seconds"] += 60.0  # an SFP stage re-run with unchanged settings, one minute longer
    path.write_text(json.dumps(manifest))
    assert _run(config) == ["baseline_time", "evaluate", "report"]
    assert _run(config) == []


def test_a_budget_of_steps_follows_the_sfp_stage_not_its_seconds(tmp_path):
    config = _load(tmp_path, "--equal_time_baseline", "true", "--equal_time_budget", "step_cost")
    _run(config)
    assert _run(config) == []
    path = tmp_path / "run" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["stages"]["sfp"]["seconds"] += 60.0  # a busier machine: the budget is measured in one process
    path.write_text(json.dumps(manifest))
    assert _run(config) == []
    manifest["stages"]["sfp"]["id"] = "made-again"  # the SFP stage made again: its cost is measured again
    path.write_text(json.dumps(manifest))
    assert _run(config) == ["baseline_time", "evaluate", "report"]


def test_a_stage_whose_version_changes_runs_again_with_what_needs_it(tmp_path, monkeypatch):
    config = _load(tmp_path)
    _run(config)
    changed = tuple(dataclasses.replace(stage, code=stage.code + 1) if stage.name == "evaluate" else stage
                    for stage in GRAPH)
    monkeypatch.setattr("sfp.stage_graph.GRAPH", changed)  # scoring changed, not settings
    assert _run(config) == ["evaluate", "report"]
    assert _run(config) == []


def test_a_new_sfp_version_runs_every_stage_again(tmp_path, monkeypatch):
    config = _load(tmp_path)
    _run(config)
    monkeypatch.setattr("sfp.__version__", "99.0.0")
    assert _run(config) == [stage for stage in STAGES if stage not in OPTIONAL]


def test_interrupted_stage_runs_again(tmp_path):
    config = _load(tmp_path)
    assert _run(config, fail_at="agent") == ["data", "world_model"]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    assert manifest["agent"]["status"] == "running"
    assert _run(config) == ["agent", "baseline_steps", "sfp", "evaluate", "report"]


def test_a_changed_stage_keeps_its_finished_outputs_until_the_replacement_is_done(tmp_path):
    config = _load(tmp_path)
    _run(config)
    root = tmp_path / "run"
    config["sfp_trainer"]["max_steps"] = 5
    assert _run(config, fail_at="baseline_steps") == []  # the replacement fails: the finished outputs are set aside
    assert json.loads((root / "baseline_steps.replaced" / "made_by.json").read_text()) == 2
    assert _run(config, fail_at="baseline_steps") == []  # and stay set aside however often it fails
    assert json.loads((root / "baseline_steps.replaced" / "made_by.json").read_text()) == 2
    assert _run(config) == ["baseline_steps", "sfp", "evaluate", "report"]
    assert json.loads((root / "baseline_steps" / "made_by.json").read_text()) == 5
    assert not (root / "baseline_steps.replaced").exists() and not (root / "sfp.replaced").exists()


def test_relative_change_knows_each_direction():
    assert relative_change("csi_m", 0.20, 0.25) == "+25.0% (better)"
    assert relative_change("mse", 0.010, 0.011) == "+10.0% (worse)"
    assert relative_change("tke_error", 0.5, 0.25) == "-50.0% (better)"
    assert relative_change("mse_t3", 2.0, 1.0) == "-50.0% (better)"
    assert relative_change("ssim", None, 0.5) == "n/a"


def test_comparison_table_compares_sfp_with_every_baseline_present():
    models = {"persistence": {"mse": 0.03}, "baseline_steps": {"mse": 0.02}, "baseline_time": {"mse": 0.01},
              "sfp": {"mse": 0.011}}
    table = comparison_table(models).splitlines()
    assert table[0] == ("| metric | persistence | baseline_steps | baseline_time | sfp | SFP vs equal-step baseline "
                        "| SFP vs equal-time baseline |")
    assert table[2] == "| mse | 0.03 | 0.02 | 0.01 | 0.011 | -45.0% (better) | +10.0% (worse) |"


def test_comparison_table_expands_thresholds():
    models = {"baseline_steps": {"mse": 0.02, "csi": {"16": 0.5, "74": 0.2}},
              "sfp": {"mse": 0.021, "csi": {"16": 0.6, "74": None}}}
    table = comparison_table(models).splitlines()
    assert table[0] == "| metric | baseline_steps | sfp | SFP vs equal-step baseline |"
    assert table[2] == "| mse | 0.02 | 0.021 | +5.0% (worse) |"
    assert table[3] == "| csi_16 | 0.5 | 0.6 | +20.0% (better) |"
    assert table[4] == "| csi_74 | 0.2 | n/a | n/a |"


def _stored(tmp_path):
    path = tmp_path / "run" / "manifest.json"
    return path, json.loads(path.read_text())


def test_an_option_added_later_never_reruns_a_finished_stage(tmp_path):
    """A stage stored before an option existed is reused at the option's declared default, with no list kept."""
    config = _load(tmp_path)
    _run(config)
    path, manifest = _stored(tmp_path)
    stored = manifest["stages"]
    del stored["sfp"]["spec"]["sfp"]["planner"]["centring"], stored["baseline_steps"]["spec"]["sfp_trainer"]["max_time"]
    path.write_text(json.dumps(manifest))
    assert _run(config) == []
    assert _run(dict(config, sfp={**config["sfp"], "planner": {**config["sfp"]["planner"], "centring": "mean"}})) == [
        "sfp", "evaluate", "report"]  # set to another value, it counts


def test_a_changed_default_reruns_the_stages_that_ran_with_the_old_one(tmp_path):
    config = _load(tmp_path)
    _run(config)
    path, manifest = _stored(tmp_path)
    assert manifest["stages"]["sfp"]["spec"]["sfp"]["planner"]["centring"] == "none"  # today's default
    manifest["stages"]["sfp"]["spec"]["sfp"]["planner"]["centring"] = "mean"  # as if "mean" had been the default
    path.write_text(json.dumps(manifest))
    assert Pipeline(config, lambda _: None).explain() == [
        "[data] reused", "[world_model] reused", "[agent] reused", "[baseline_steps] reused",
        '[sfp] runs: settings: sfp.planner.centring: "mean" -> "none"', "[evaluate] runs: its input sfp runs again",
        "[report] runs: its input evaluate runs again"]
    assert _run(config) == ["sfp", "evaluate", "report"]


def test_an_option_that_no_longer_exists_reruns_the_stage_naming_it(tmp_path):
    config = _load(tmp_path)
    _run(config)
    path, manifest = _stored(tmp_path)
    manifest["stages"]["world_model"]["spec"]["world_model"]["retired_option"] = 3
    path.write_text(json.dumps(manifest))
    reasons = dict(line.split("] ", 1) for line in Pipeline(config, lambda _: None).explain())
    assert reasons["[world_model"].startswith("runs: settings: its settings no longer parse") and \
        "retired_option" in reasons["[world_model"]
    assert _run(config) == ["world_model", "sfp", "evaluate", "report"]


def test_a_manifest_an_earlier_sfp_wrote_is_upgraded_and_its_finished_stages_reused(tmp_path):
    """A copy of a real manifest (the ocean table's advection cell, stopped in its SFP stage, written with settings
    hashes): the finished stages are reused, the unfinished one resumes, and a changed setting runs again."""
    from sfp.table.cells import cell_config
    from sfp.table.spec import Cell, load_table

    config = cell_config(load_table("ocean_table"), Cell("ocean", "advection", 0))
    config["world_model_from"] = "runs/ocean/ocean/world_model/world_model/checkpoints/best.ckpt"  # as it ran
    config.update(facl_baseline=False, qmap_baseline=False)  # comparisons the table asked for later
    config["run_dir"] = str(tmp_path / "run")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "manifest.json").write_text((Path(__file__).parent / "legacy_manifest.json").read_text())
    assert Pipeline(config, lambda _: None).explain() == [
        "[data] reused", "[world_model] reused", "[agent] reused", "[baseline_steps] reused",
        "[sfp] runs: it did not finish", "[baseline_time] runs: not run yet", "[surrogate] runs: not run yet",
        "[evaluate] runs: not run yet", "[report] runs: not run yet"]
    config["agent_trainer"]["max_steps"] = 301  # a hash cannot say which setting changed
    assert Pipeline(config, lambda _: None).explain()[1:4] == [
        "[world_model] reused", "[agent] runs: an earlier sfp made it with other settings",
        "[baseline_steps] runs: an earlier sfp made it with other settings"]


def test_a_stage_an_earlier_sfp_named_otherwise_is_moved_once_and_reused(tmp_path):
    config = _load(tmp_path)
    _run(config)
    root, (path, manifest) = tmp_path / "run", _stored(tmp_path)
    stages = manifest["stages"]
    stages["baseline"] = stages.pop("baseline_steps")  # as sfp named the equal-step baseline before
    for entry in stages.values():
        entry["inputs"] = {"baseline" if need == "baseline_steps" else need: ids
                           for need, ids in entry["inputs"].items()}
    path.write_text(json.dumps(manifest))
    (root / "baseline_steps").rename(root / "baseline")
    assert Pipeline(config, lambda _: None).explain()[3] == "[baseline_steps] reused"
    assert not (root / "baseline_steps").exists()  # explaining moves nothing
    assert _run(config) == []
    assert json.loads((root / "baseline_steps" / "made_by.json").read_text()) == config["sfp_trainer"]["max_steps"]
    assert (root / "baseline").is_symlink() and (root / "baseline").resolve() == (root / "baseline_steps").resolve()
    assert _run(config) == []


def test_explain_says_what_would_run_and_touches_nothing(tmp_path, capsys):
    from sfp.cli.main import main

    config = write_config(tmp_path / "p.yaml", tmp_path / "run")
    assert main(["pipeline", "--config", str(config), "--explain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"[{stage}] runs: not run yet" for stage in STAGES if stage not in OPTIONAL]
    assert not (tmp_path / "run").exists()
    _run(_load(tmp_path))
    assert main(["pipeline", "--config", str(config), "--explain", "--sfp.lr", "0.1"]) == 0
    assert capsys.readouterr().out.splitlines()[3:5] == [
        "[baseline_steps] runs: settings: sfp.lr: 0.0003 -> 0.1", "[sfp] runs: settings: sfp.lr: 0.0003 -> 0.1"]


def test_a_key_a_stage_reads_since_counts_at_its_default(tmp_path):
    """A stage that ran before it read ``sfp.gauges`` is reused while gauges is at its default, and runs again when
    it is set: a key read today and not then compares today's value with the declared default."""
    config = _load(tmp_path)
    _run(config)
    path, manifest = _stored(tmp_path)
    del manifest["stages"]["baseline_steps"]["spec"]["sfp.gauges"]  # as before the baselines read it
    path.write_text(json.dumps(manifest))
    assert _run(config) == []
    path.write_text(json.dumps(manifest))
    gauged = dict(config, sfp={**config["sfp"], "gauges": 0.02})
    assert Pipeline(gauged, lambda _: None).explain()[3] == "[baseline_steps] runs: settings: sfp.gauges: 0.0 -> 0.02"


def test_the_agent_can_follow_its_validation_mse_and_that_reruns_it(tmp_path):
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from sfp.task import TASKS
    from sfp.training import run_callbacks

    def monitors(**options):
        callbacks = run_callbacks(tmp_path, SimpleNamespace(task=TASKS["storms"]), progress=False, patience=3,
                                  **options)
        return {(type(c).__name__, c.monitor, c.mode) for c in callbacks
                if isinstance(c, (EarlyStopping, ModelCheckpoint)) and c.monitor}

    assert monitors() == {("ModelCheckpoint", "val/csi_m", "max"), ("EarlyStopping", "val/csi_m", "max")}
    assert monitors(by_mse=True) == {("ModelCheckpoint", "val/mse", "min"), ("EarlyStopping", "val/mse", "min")}
    config = _load(tmp_path)
    assert config["agent_monitor"] == "headline"
    _run(config)
    config["agent_monitor"] = "mse"
    assert _run(config) == ["agent", "baseline_steps", "sfp", "evaluate", "report"]


def test_a_stage_stored_with_the_soft_csi_surrogate_option_reads_it_as_surrogate_loss(tmp_path):
    from sfp.reuse import first_difference

    config = _load(tmp_path, "--surrogate_loss", "{name: soft_csi, thresholds: [5], pool: 8}")
    keys = ("surrogate_baseline", "surrogate_loss", "surrogate_weights")
    stored = {"surrogate_baseline": False, "surrogate_soft_csi": {"thresholds": [5], "pool": 8},
              "surrogate_weights": [0.1, 0.3, 1.0, 3.0]}
    assert first_difference(stored, config, keys) is None
    stored["surrogate_soft_csi"]["pool"] = 4
    assert first_difference(stored, config, keys) == "surrogate_loss.pool: 4 -> 8"
    assert first_difference({**stored, "surrogate_soft_csi": None}, _load(tmp_path), keys) is None


def test_a_stage_needs_the_stages_whose_outputs_it_reads_and_theirs():
    from sfp.stage_graph import with_needs

    assert with_needs("agent") == {"data", "agent"}
    assert with_needs("sfp") == {"data", "world_model", "agent", "sfp"}
    assert with_needs("baseline_time") == {"data", "world_model", "agent", "sfp", "baseline_time"}
