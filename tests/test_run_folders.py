"""Run folders: each records what made it, a command refuses another command's or another run's folder (or one
inside it) unless forced, and one process at a time holds a folder's lock, which dies with its process."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from pipeline_helpers import AGENT, DATA, write_config
from sfp.cli.main import main
from sfp.errors import UserError
from sfp.run_folder import LOCK, MARKER, claim, read_owner, run_folder

HOLD = """
import sys, time
from sfp.run_folder import run_folder
with run_folder(sys.argv[1], "pipeline"):
    print("held", flush=True)
    time.sleep(120)
"""


def _owner(root):
    return json.loads((root / MARKER).read_text())


def test_a_new_folder_records_its_maker_and_a_run_id(tmp_path):
    owner = claim(tmp_path, "fit")
    assert _owner(tmp_path)["made_by"] == "fit" and _owner(tmp_path)["run"] == owner.run and len(owner.run) == 12
    assert claim(tmp_path, "fit") == owner  # the same kind goes on in it, the record unchanged
    assert claim(tmp_path, "test") == owner  # an evaluation writes beside the run it evaluates


@pytest.mark.parametrize("maker, user", [("pipeline", "test"), ("pipeline", "fit"), ("fit", "pipeline"),
                                         ("test", "fit"), ("table", "pipeline"), ("pipeline", "table")])
def test_another_kind_of_command_is_refused_unless_forced(tmp_path, maker, user):
    claim(tmp_path, maker, "t1" if maker == "table" else None)
    with pytest.raises(UserError, match=f"belongs to a `sfp {maker}` run.*--force"):
        claim(tmp_path, user, "t1" if user == "table" else None)
    claim(tmp_path, user, "t1" if user == "table" else None, force=True)
    assert _owner(tmp_path)["made_by"] == user


def test_another_table_is_refused(tmp_path):
    claim(tmp_path, "table", "table1")
    with pytest.raises(UserError, match=r"belongs to a `sfp table` run \(table1\), not to blackbox"):
        claim(tmp_path, "table", "blackbox")


def test_folders_older_than_the_record_are_recognised_by_their_files(tmp_path):
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "manifest.json").write_text("{}")
    (tmp_path / "fit" / "checkpoints").mkdir(parents=True)
    (tmp_path / "fit" / "checkpoints" / "best.ckpt").write_bytes(b"")
    assert read_owner(tmp_path / "pipe").made_by == "pipeline" and read_owner(tmp_path / "fit").made_by == "fit"
    assert read_owner(tmp_path) is None
    with pytest.raises(UserError, match="belongs to a `sfp pipeline` run"):
        claim(tmp_path / "pipe", "test")
    claim(tmp_path / "pipe", "table", "table1")  # a table's cell computed before the record existed
    assert _owner(tmp_path / "pipe")["made_by"] == "table"


def test_a_folder_inside_another_run_is_refused_except_a_tables_own_cells(tmp_path):
    (tmp_path / "p").mkdir()
    claim(tmp_path / "p", "pipeline")
    (tmp_path / "p" / "agent").mkdir()
    with pytest.raises(UserError, match="lies inside .*/p, the folder of a `sfp pipeline` run"):
        claim(tmp_path / "p" / "agent", "fit")
    (tmp_path / "t").mkdir()
    claim(tmp_path / "t", "table", "table1")
    (tmp_path / "t" / "storms" / "cell").mkdir(parents=True)
    claim(tmp_path / "t" / "storms" / "cell", "table", "table1")
    for made_by, run in (("pipeline", None), ("table", "other")):
        with pytest.raises(UserError, match="lies inside"):
            claim(tmp_path / "t" / "storms" / "cell", made_by, run)


def test_a_fresh_fit_never_starts_beside_checkpoints_even_when_forced(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    claim(tmp_path, "fit")  # resuming
    for force in (False, True):
        with pytest.raises(UserError, match="holds a run already"):
            claim(tmp_path, "fit", fresh=True, force=force)


def test_an_unreadable_record_is_one_line(tmp_path):
    (tmp_path / MARKER).write_text("{not json")
    with pytest.raises(UserError, match="unreadable run-folder record"):
        claim(tmp_path, "fit")


def test_a_held_lock_refuses_a_second_process_and_dies_with_its_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"in use by pid {holder.pid} \\(sfp pipeline, since"):
            with run_folder(tmp_path, "pipeline"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with run_folder(tmp_path, "pipeline"):  # a killed holder never blocks
        assert (tmp_path / LOCK).read_text().startswith(f"pid {os.getpid()} ")
    with run_folder(tmp_path, "pipeline"):  # released at the end of the body
        pass


def test_processes_a_launcher_started_for_other_ranks_take_no_lock_and_write_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    with run_folder(tmp_path, "pipeline") as owner:
        assert owner.made_by == "pipeline"
    assert list(tmp_path.iterdir()) == []


def test_a_second_pipeline_on_a_folder_in_use_is_refused_before_any_stage(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    config = write_config(tmp_path / "pipe.yaml", run)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["pipeline", "--config", str(config)]) == 2
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"in use by pid {holder.pid}" in err, err
    assert sorted(path.name for path in run.iterdir()) == sorted([LOCK, MARKER])  # no stage started, no manifest


def test_test_and_predict_never_write_into_a_pipelines_folder(tmp_path, capsys):
    """The data loss of issue 34: `sfp test` on a pipeline's folder replaced its metrics.json."""
    run = tmp_path / "run"
    run.mkdir()
    claim(run, "pipeline")
    (run / "metrics.json").write_text('{"models": {"sfp": {}}}')
    fit = tmp_path / "fit.yaml"
    fit.write_text(yaml.safe_dump({"trainer": {"default_root_dir": str(run), "enable_progress_bar": False},
                                   "model": AGENT, "data": {"class_path": "sfp.data.FieldDataModule",
                                                            "init_args": DATA}}))
    for command in ("test", "predict"):
        assert main([command, "--config", str(fit)]) == 2
        assert "belongs to a `sfp pipeline` run" in capsys.readouterr().err
    assert json.loads((run / "metrics.json").read_text()) == {"models": {"sfp": {}}}
    assert _owner(run)["made_by"] == "pipeline"


@pytest.mark.slow
def test_ctrl_c_during_a_fit_ends_with_one_interrupted_line(tmp_path):
    """Lightning turns a KeyboardInterrupt inside fit into exit(1); the CLI still ends with its line and 130."""
    config = write_config(tmp_path / "pipe.yaml", tmp_path / "unused")
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sfp", "pipeline", "--config", str(config), "--run_dir", str(run),
                             "--agent_trainer.max_steps", "100000"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                                                signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (run / "agent").exists() and time.monotonic() < deadline:  # the agent stage has begun
        time.sleep(0.1)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "sfp: interrupted", err


def test_a_folder_with_other_files_is_no_run_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine\n")
    with pytest.raises(UserError, match=r"is not empty \(notes.txt\) and holds no sfp run"):
        claim(tmp_path, "pipeline")
    assert not (tmp_path / MARKER).exists()


def test_a_tables_runs_folder_older_than_the_record_is_recognised(tmp_path):
    (tmp_path / "storms" / "storms-simvp-s0").mkdir(parents=True)
    (tmp_path / "storms" / "storms-simvp-s0" / "manifest.json").write_text("{}")
    assert read_owner(tmp_path).made_by == "table"
    (tmp_path / "stray.txt").write_text("")
    assert read_owner(tmp_path) is None  # a folder with files of its own is not a table's runs folder
