"""kill -9 in the middle of `sfp fit`, then the same command with `--ckpt_path last`: the run completes from its
last checkpoint and the run directory holds only readable checkpoints, logs and the config."""

import json
import os
import signal
import subprocess
import sys
import time

import yaml

from pipeline_helpers import AGENT, DATA
from sfp.training import read_checkpoint

SFP = [sys.executable, "-c", "from sfp.cli import main; raise SystemExit(main())"]
STEPS = 40


def test_a_killed_fit_resumes_to_the_end_with_no_leftovers(tmp_path):
    run = tmp_path / "run"
    config = tmp_path / "fit.yaml"
    config.write_text(yaml.safe_dump({
        "seed_everything": 0, "model": AGENT, "data": {"class_path": "sfp.data.FieldDataModule", "init_args": DATA},
        "trainer": {"max_steps": STEPS, "default_root_dir": str(run), "enable_progress_bar": False,
                    "limit_val_batches": 1}}))
    command = [*SFP, "fit", "--config", str(config), "--checkpoint_every", "4"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None and last.exists(), process.stderr.read().decode()[-2000:]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = read_checkpoint(last)["global_step"]
    assert 0 < killed_at < STEPS

    done = subprocess.run([*command, "--ckpt_path", "last"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert read_checkpoint(last)["global_step"] == STEPS
    files = {path.relative_to(run).parts[0] for path in run.rglob("*") if path.is_file()}
    assert files == {"checkpoints", "logs", "config.yaml"}
    for checkpoint in (run / "checkpoints").iterdir():
        read_checkpoint(checkpoint)  # every checkpoint left is whole


def test_a_killed_pipeline_resumes_its_stage_and_finishes_with_no_leftovers(tmp_path):
    from pipeline_helpers import write_config

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
