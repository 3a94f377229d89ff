"""Pipeline bookkeeping: config loading and overrides, stage skipping and re-running, the report table."""

import json

import pytest
import yaml

from sfp.errors import UserError
from sfp.pipeline import STAGES, Pipeline, load_config
from sfp.report.markdown import comparison_table, relative_change

BASE = {"run_dir": None, "seed": 0, "data": {"class_path": "x"}, "agent": {"class_path": "y"},
        "agent_trainer": {"max_steps": 1}, "world_model": {}, "world_model_trainer": {"max_steps": 1},
        "sfp": {"pseudo_weight": 1.0}, "sfp_trainer": {"max_steps": 1}}


def _write(tmp_path, **changes):
    config = {**json.loads(json.dumps(BASE)), "run_dir": str(tmp_path / "run"), **changes}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_overrides_follow_dotted_paths(tmp_path):
    config = load_config(_write(tmp_path), ["sfp.pseudo_weight=0.5", "agent_trainer.max_steps=7"])
    assert config["sfp"]["pseudo_weight"] == 0.5 and config["agent_trainer"]["max_steps"] == 7


@pytest.mark.parametrize("override, words", [("sfp.pseudo_wieght=1", "unknown key 'pseudo_wieght'"),
                                             ("nosuch.key=1", "no section 'nosuch'"), ("sfp", "KEY=VALUE")])
def test_bad_overrides_name_the_problem(tmp_path, override, words):
    with pytest.raises(UserError, match=words):
        load_config(_write(tmp_path), [override])


def test_missing_and_unknown_sections(tmp_path):
    path = _write(tmp_path, extra={})
    with pytest.raises(UserError, match="unknown sections"):
        load_config(path)
    with pytest.raises(UserError, match="no such config"):
        load_config(tmp_path / "absent.yaml")


def _run(config, fail_at=None):
    """Run a pipeline whose stages only record that they ran (`fail_at` is interrupted)."""
    pipeline = Pipeline(config, log=lambda _: None)
    ran = []

    def stage(name):
        if name == fail_at:
            raise KeyboardInterrupt
        ran.append(name)

    for name in STAGES:
        setattr(pipeline, f"stage_{name}", lambda name=name: stage(name))
    try:
        pipeline.run()
    except KeyboardInterrupt:
        pass
    return ran


def test_rerun_skips_finished_stages_and_redoes_changed_ones(tmp_path):
    config = load_config(_write(tmp_path))
    assert _run(config) == list(STAGES)
    assert _run(config) == []  # everything done
    config["world_model_trainer"]["max_steps"] = 2
    assert _run(config) == ["world_model", "sfp", "evaluate", "report"]  # the change and what uses its output
    config["sfp"]["pseudo_weight"] = 0.3  # a planning setting: the baseline does not plan
    assert _run(config) == ["sfp", "evaluate", "report"]
    config["sfp"]["lr"] = 1e-4  # the fine-tuning's own settings shape the baseline too
    assert _run(config) == ["baseline", "sfp", "evaluate", "report"]
    config["agent_trainer"]["max_steps"] = 3
    assert _run(config) == ["agent", "baseline", "sfp", "evaluate", "report"]


def test_interrupted_stage_runs_again(tmp_path):
    config = load_config(_write(tmp_path))
    assert _run(config, fail_at="world_model") == ["data", "agent", "baseline"]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    assert manifest["world_model"]["status"] == "running"
    assert _run(config) == ["world_model", "sfp", "evaluate", "report"]


def test_relative_change_knows_each_direction():
    assert relative_change("csi_m", 0.20, 0.25) == "+25.0% (better)"
    assert relative_change("mse", 0.010, 0.011) == "+10.0% (worse)"
    assert relative_change("tke_error", 0.5, 0.25) == "-50.0% (better)"
    assert relative_change("mse_t3", 2.0, 1.0) == "-50.0% (better)"
    assert relative_change("ssim", None, 0.5) == "n/a"


def test_comparison_table_expands_thresholds():
    models = {"baseline": {"mse": 0.02, "csi": {"16": 0.5, "74": 0.2}},
              "sfp": {"mse": 0.021, "csi": {"16": 0.6, "74": None}}}
    table = comparison_table(models).splitlines()
    assert table[0] == "| metric | baseline | sfp | SFP vs baseline |"
    assert table[2] == "| mse | 0.02 | 0.021 | +5.0% (worse) |"
    assert table[3] == "| csi_16 | 0.5 | 0.6 | +20.0% (better) |"
    assert table[4] == "| csi_74 | 0.2 | n/a | n/a |"
