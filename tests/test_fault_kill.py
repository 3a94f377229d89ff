"""kill -9 in the middle of a pipeline's training stage, then the same command: the stage resumes from its last
checkpoint and the run finishes with no leftovers (a killed `sfp fit`: tests/test_cli_train.py)."""

import json

import pytest

import forked
from pipeline_helpers import write_config
from sfp.cli.main import main
from sfp.training import read_checkpoint

STEPS = 40


@pytest.mark.slow
def test_a_killed_pipeline_resumes_its_stage_and_finishes_with_no_leftovers(tmp_path):
    run = tmp_path / "run"
    config = write_config(tmp_path / "pipe.yaml", run)
    command = ["pipeline", "--config", str(config), "--checkpoint_every", "4",
               "--agent_trainer.max_steps", str(STEPS), "--agent_trainer.limit_val_batches", "1"]
    last = run / "agent" / "checkpoints" / "last.ckpt"
    assert forked.kill_when(forked.start(command, cwd=tmp_path), last.exists), "killed too late"
    assert 0 < read_checkpoint(last)["global_step"] < STEPS

    assert main(command) == 0
    manifest = json.loads((run / "manifest.json").read_text())["stages"]
    assert all(entry["status"] == "done" for entry in manifest.values())
    assert manifest["agent"]["outputs"]["steps"] == STEPS
    leftovers = [path.name for path in run.rglob("*") if path.suffix == ".tmp" or path.name.endswith(".replaced")]
    assert leftovers == []
