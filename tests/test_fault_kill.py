"""kill -9 in the middle of a pipeline's training stage, then the same command: the stage resumes from its last
checkpoint and the run finishes with no leftovers (a killed `sfp fit`: tests/test_cli_train.py)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline_helpers import write_config
from sfp.training import read_checkpoint

SFP = [sys.executable, "-c", "from sfp.cli import main; raise SystemExit(main())"]
STEPS = 40


@pytest.mark.slow
def test_a_killed_pipeline_resumes_its_stage_and_finishes_with_no_leftovers(tmp_path):
    run = tmp_path / "run"
    config = write_config(tmp_path / "pipe.yaml", run)
    command = [*SFP, "pipeline", "--config", str(config), "--checkpoint_every", "4",
               "--agent_trainer.max_steps", str(STEPS), "--agent_trainer.limit_val_batches", "1"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = run / "agent" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None and last.exists(), process.stderr.read().decode()[-2000:]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert 0 < read_checkpoint(last)["global_step"] < STEPS

    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((run / "manifest.json").read_text())["stages"]
    assert all(entry["status"] == "done" for entry in manifest.values())
    assert manifest["agent"]["outputs"]["steps"] == STEPS
    leftovers = [path.name for path in run.rglob("*") if path.suffix == ".tmp" or path.name.endswith(".replaced")]
    assert leftovers == []
