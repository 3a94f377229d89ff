"""Bad inputs to `sfp data generate`, `sfp data info` and the data modules' file paths: one line, exit 2, no damage.

Every CLI case runs in a folder of prepared files; it must exit with code 2, print exactly one line on stderr (the
file descriptor, so C-level HDF5 chatter and Python warnings count too) that names what is wrong, and leave every
file of the folder as it was.
"""

from __future__ import annotations

import errno
import hashlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from sfp.cli.main import main
from sfp.data.cache import cache_path, cached_array
from sfp.data.datamodules import FieldDataModule, SeriesDataModule
from sfp.data.files import save_array
from sfp.data.readers import FNOReader
from sfp.errors import UserError

TINY = ["--n", "1", "--frames", "2", "--size", "8"]
PREPARE = ["data", "prepare", "radar", "--from", ".", "--out"]  # "." holds no radar data: the output check is first
LONG_NAME = "a" * 300 + ".npz"


def _prepare(folder: Path) -> None:
    """The files the cases point at: good ones, broken ones, and ones of the wrong kind."""
    rng = np.random.default_rng(0)
    np.save(folder / "good.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    np.save(folder / "nan.npy", np.array([1.0, np.nan]))
    np.save(folder / "strings.npy", np.array(["a", "bc"]))
    np.save(folder / "complex.npy", np.array([1 + 2j, 3 - 1j]))
    np.save(folder / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(folder / "complex.npz", data=np.array([1j]))
    np.savez(folder / "two.npz", a=np.zeros(2), b=np.ones(2))
    (folder / "random.npy").write_bytes(rng.bytes(256))
    (folder / "random.npz").write_bytes(rng.bytes(256))
    (folder / "random.h5").write_bytes(rng.bytes(256))
    (folder / "empty.npy").write_bytes(b"")
    (folder / "truncated.npy").write_bytes((folder / "good.npy").read_bytes()[:70])
    (folder / "notes.txt").write_text("not an array\n")
    (folder / "folder.npy").mkdir()
    (folder / "outdir").mkdir()
    with h5py.File(folder / "empty.h5", "w"):
        pass
    with h5py.File(folder / "groups.h5", "w") as handle:
        handle.create_group("inner")
    with h5py.File(folder / "strings.h5", "w") as handle:
        handle.create_dataset("data", data=np.array([b"x", b"y"]))


CASES = [  # (id, argv, words the message must hold)
    ("info-missing-file", ["data", "info", "missing.npy"], ["missing.npy", "no such file"]),
    ("info-directory", ["data", "info", "folder.npy"], ["folder.npy", "directory"]),
    ("info-unsupported-suffix", ["data", "info", "notes.txt"], ["notes.txt", "unsupported"]),
    ("info-random-npy", ["data", "info", "random.npy"], ["random.npy", "not a .npy file"]),
    ("info-random-npz", ["data", "info", "random.npz"], ["random.npz", "not a .npz file"]),
    ("info-random-h5", ["data", "info", "random.h5"], ["random.h5", "cannot read"]),
    ("info-empty-npy", ["data", "info", "empty.npy"], ["empty.npy", "not a .npy file"]),
    ("info-truncated-npy", ["data", "info", "truncated.npy"], ["truncated.npy", "cannot read"]),
    ("info-strings-npy", ["data", "info", "strings.npy"], ["strings.npy", "not numbers"]),
    ("info-strings-h5", ["data", "info", "strings.h5"], ["strings.h5", "not numbers"]),
    ("info-objects-npy", ["data", "info", "objects.npy"], ["objects.npy", "cannot read"]),
    ("info-complex-npy", ["data", "info", "complex.npy"], ["complex.npy", "complex"]),
    ("info-complex-npz", ["data", "info", "complex.npz"], ["complex.npz", "complex"]),
    ("info-hdf5-no-arrays", ["data", "info", "empty.h5"], ["empty.h5", "no arrays"]),
    ("info-hdf5-groups-only", ["data", "info", "groups.h5"], ["groups.h5", "no arrays"]),
    ("info-npz-several", ["data", "info", "two.npz"], ["two.npz", "several arrays (a, b)"]),
    ("info-npz-unknown-variable", ["data", "info", "two.npz", "--variable", "c"], ["two.npz", "'c'"]),
    ("info-thresholds-nan-inf", ["data", "info", "good.npy", "--thresholds", "nan,inf"], ["thresholds", "finite"]),
    ("info-thresholds-one-inf", ["data", "info", "good.npy", "--thresholds", "1,inf"], ["thresholds", "finite"]),
    ("info-thresholds-empty", ["data", "info", "good.npy", "--thresholds", ","], ["thresholds"]),
    ("info-thresholds-words", ["data", "info", "good.npy", "--thresholds", "a,b"], ["thresholds", "numbers"]),
    ("info-null-value-word", ["data", "info", "good.npy", "--null-value", "x"], ["null-value"]),
    ("info-require-finite", ["data", "info", "nan.npy", "--require-finite"], ["nan.npy", "1 NaN"]),
    ("info-no-file", ["data", "info"], ["file"]),
    ("data-unknown-action", ["data", "frobnicate"], ["frobnicate"]),
    ("gen-unknown-dataset", ["data", "generate", "hail", "--out", "x.npy"], ["hail", "storms"]),
    ("gen-no-out", ["data", "generate", "storms"], ["--out"]),
    ("gen-bad-suffix", ["data", "generate", "storms", "--out", "x.txt", *TINY], ["x.txt", ".npy"]),
    ("gen-exists", ["data", "generate", "storms", "--out", "good.npy", *TINY], ["good.npy", "--overwrite"]),
    ("gen-out-directory", ["data", "generate", "storms", "--out", "folder.npy", *TINY], ["folder.npy", "directory"]),
    ("gen-no-parent", ["data", "generate", "storms", "--out", "nowhere/x.npy", *TINY], ["nowhere", "no such"]),
    ("gen-parent-is-file", ["data", "generate", "storms", "--out", "good.npy/x.npy", *TINY],
     ["good.npy", "not a directory"]),
    ("gen-size-3", ["data", "generate", "storms", "--out", "x.npy", "--n", "1", "--frames", "2", "--size", "3"],
     ["size", ">= 8"]),
    ("gen-size-0", ["data", "generate", "flame", "--out", "x.npy", "--n", "1", "--frames", "2", "--size", "0"],
     ["size", ">= 8"]),
    ("gen-frames-1", ["data", "generate", "storms", "--out", "x.npy", "--n", "1", "--frames", "1", "--size", "8"],
     ["frames", ">= 2"]),
    ("gen-n-0", ["data", "generate", "navier_stokes", "--out", "x.npy", "--n", "0", "--frames", "2", "--size", "8"],
     ["n ", ">= 1"]),
    ("gen-n-word", ["data", "generate", "storms", "--out", "x.npy", "--n", "many"], ["--n", "many"]),
    ("gen-length-1", ["data", "generate", "sensors", "--out", "x.npy", "--length", "1", "--size", "8"],
     ["length", ">= 2"]),
    ("gen-set-broken-yaml", ["data", "generate", "storms", "--out", "x.npy", *TINY, "--set", "speed=[1,"],
     ["speed", "YAML"]),
    ("gen-set-n-word", ["data", "generate", "storms", "--out", "x.npy", *TINY, "--set", "n=abc"], ["n ", "'abc'"]),
    ("gen-set-size-float", ["data", "generate", "storms", "--out", "x.npy", *TINY, "--set", "size=8.5"],
     ["size", "8.5"]),
    ("gen-set-frames-bool", ["data", "generate", "storms", "--out", "x.npy", *TINY, "--set", "frames=true"],
     ["frames", "True"]),
    ("gen-set-no-equals", ["data", "generate", "storms", "--out", "x.npy", *TINY, "--set", "speed"],
     ["KEY=VALUE", "speed"]),
    ("gen-set-no-key", ["data", "generate", "storms", "--out", "x.npy", *TINY, "--set", "=3"], ["KEY=VALUE"]),
    ("gen-set-unknown-param", ["data", "generate", "storms", "--out", "x.npy", *TINY, "--set", "hail=1"],
     ["hail", "unknown"]),
    ("gen-out-directory-no-suffix", ["data", "generate", "storms", "--out", "outdir", *TINY],
     ["outdir", "is a directory"]),
    ("gen-name-too-long", ["data", "generate", "storms", "--out", LONG_NAME, *TINY],
     ["file name is 304 bytes long", "at most"]),
    ("gen-too-big-for-memory", ["data", "generate", "storms", "--out", "x.npy", "--n", "1", "--frames", "2",
                                "--size", "10000000"], ["storms", "800000000000000 bytes", "available"]),
    ("gen-sensors-grid-too-big-for-memory", ["data", "generate", "sensors", "--out", "x.npy", "--length", "2",
                                             "--size", "10000000"], ["10000000 x 10000000", "bytes", "available"]),
    ("prep-size-0", [*PREPARE, "r.npz", "--size", "0"], ["--size", "at least 8", "got 0"]),
    ("prep-size-negative", [*PREPARE, "r.npz", "--size", "-5"], ["--size", "at least 8", "got -5"]),
    ("prep-size-word", [*PREPARE, "r.npz", "--size", "big"], ["--size", "integer", "'big'"]),
    ("prep-parent-is-file", [*PREPARE, "good.npy/r.npz"], ["good.npy", "not a directory"]),
    ("prep-out-directory", [*PREPARE, "outdir"], ["outdir", "is a directory"]),
    ("prep-out-wrong-suffix", [*PREPARE, "notes.txt"], ["notes.txt", "wrong file type", "ends in .txt", ".npz"]),
    ("prep-out-existing-npy", [*PREPARE, "good.npy"], ["good.npy", "wrong file type", ".npz"]),
    ("prep-name-too-long", [*PREPARE, LONG_NAME], ["file name is 304 bytes long", "at most"]),
    ("prep-from-a-file", ["data", "prepare", "radar", "--from", "notes.txt", "--out", "r.npz"],
     ["notes.txt", "not a folder"]),
    ("generate-negative-seed", ["data", "generate", "storms", *TINY, "--out", "s.npz", "--seed", "-1"],
     ["--seed", "0 .. 4294967295"]),
    ("generate-set-laughs", ["data", "generate", "storms", *TINY, "--out", "s.npz", "--set",
                             "x=" + "[" * 100 + "]" * 100], ["--set x", "nested deeper than 64"]),
]


def _snapshot(folder: Path) -> dict[str, str]:
    """Every path under `folder` with its content hash (folders as 'dir')."""
    return {str(p.relative_to(folder)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}


def _run_one_line_error(argv: list[str], capfd: pytest.CaptureFixture) -> str:
    """Run the CLI in-process; assert exit code 2 and one stderr line; return that line."""
    code = main(argv)
    err = capfd.readouterr().err
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sfp: error: "), err
    return lines[0]


@pytest.mark.parametrize("argv, words", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_cli_input_is_one_line_and_changes_nothing(tmp_path, monkeypatch, capfd, argv, words):
    _prepare(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    line = _run_one_line_error(argv, capfd)
    for word in words:
        assert word in line
    assert _snapshot(tmp_path) == before


def test_unwritable_output_folder_is_one_line(tmp_path, monkeypatch, capfd):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    monkeypatch.chdir(tmp_path)
    line = _run_one_line_error(["data", "generate", "storms", "--out", "x.npz", *TINY], capfd)
    assert "x.npz" in line and "Permission denied" in line
    assert list(tmp_path.iterdir()) == []


def test_bad_input_in_a_subprocess_prints_one_line(tmp_path):
    np.save(tmp_path / "s.npy", np.array(["text"]))
    done = subprocess.run([sys.executable, "-m", "sfp", "data", "info", "s.npy"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["sfp: error: s.npy: holds <U4 values, not numbers"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        out = save_array(tmp_path / "a.npz", np.zeros(3))
        cached_array("umask-test", {"u": umask}, lambda: np.zeros(2))
    finally:
        os.umask(previous)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert cache_path("umask-test", {"u": umask}).stat().st_mode & 0o777 == 0o666 & ~umask


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    pid = _dead_pid()
    out = tmp_path / "x.npy"
    stale_out = tmp_path / f".x.npy.{pid}.sfp-tmp.abc.npy"
    live_out = tmp_path / f".x.npy.{os.getpid()}.sfp-tmp.abc.npy"  # a writer still running keeps its file
    cached = cache_path("stale-test", {"a": 1})
    cached.parent.mkdir(parents=True, exist_ok=True)
    stale_cache = cached.parent / f".{cached.name}.{pid}.sfp-tmp.xyz.tmp"
    for path in (stale_out, live_out, stale_cache):
        path.write_bytes(b"")
    save_array(out, np.zeros(2))
    cached_array("stale-test", {"a": 1}, lambda: np.zeros(2))
    assert not stale_out.exists() and not stale_cache.exists() and live_out.exists()


def _fill_then_fail(file, *args, **kwargs):
    """A write that runs out of disk space half-way."""
    Path(file).write_bytes(b"PK partial")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez_compressed", _fill_then_fail)
    with pytest.raises(UserError, match="No space left on device: the file is too large or the disk is full"):
        save_array(tmp_path / "x.npz", np.zeros(2))
    assert list(tmp_path.iterdir()) == []


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


@pytest.mark.parametrize("suffix", [".h5", ".npy", ".npz"])
def test_file_size_limit_is_one_line_and_leaves_nothing(tmp_path, suffix):
    """Writes past RLIMIT_FSIZE fail with EFBIG (Python ignores SIGXFSZ): one line, no temp, no output, no crash."""
    out_dir, cache = tmp_path / "out", tmp_path / "cache"
    out_dir.mkdir()
    env = {**os.environ, "SFP_CACHE": str(cache), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-m", "sfp", "data", "generate", "storms", "--out", f"g{suffix}", "--n",
                           "1", "--frames", "2", "--size", "32"], cwd=out_dir, env=env, capture_output=True,
                          text=True, timeout=120, preexec_fn=_limit_file_size)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"sfp: error: g{suffix}: cannot write (File too large: the file is too "
                                        "large or the disk is full)"]
    assert "could not write cache file" in done.stdout  # the cache's one-line warning goes to stdout
    assert list(out_dir.iterdir()) == [] and _temps(cache) == []


def test_unwritable_output_folder_is_refused_before_generating(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    monkeypatch.chdir(tmp_path)
    line = _run_one_line_error(["data", "generate", "storms", "--out", "x.npz", *TINY], capfd)
    assert "not writable" in line and "x.npz" in line
    assert "generating" not in capfd.readouterr().out and list(tmp_path.iterdir()) == []


def _tiny_radar_arrays(root, rule, log, first_guess=""):
    data = np.zeros((1, rule.length, 1, rule.size, rule.size), np.float32)
    return {"data": data, "mask": np.isfinite(data), "event": np.zeros(1, np.int64)}


def test_failed_radar_save_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr("sfp.data.radar.dataset.build", _tiny_radar_arrays)
    monkeypatch.setattr(np, "savez_compressed", _fill_then_fail)
    monkeypatch.chdir(tmp_path)
    line = _run_one_line_error(["data", "prepare", "radar", "--from", ".", "--out", "sub/r.npz"], capfd)
    assert line == ("sfp: error: sub/r.npz: cannot write (No space left on device: the file is too large or the "
                    "disk is full)")
    assert [p.name for p in tmp_path.rglob("*")] == ["sub"]


def test_cache_warning_is_one_line_on_stdout(tmp_path, monkeypatch, capfd):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("SFP_CACHE", str(tmp_path / "file" / "cache"))  # a folder that cannot be made
    monkeypatch.chdir(tmp_path)
    assert main(["data", "generate", "storms", "--out", "x.npy", *TINY]) == 0
    captured = capfd.readouterr()
    assert captured.err == ""
    warnings = [line for line in captured.out.splitlines() if "cache" in line]
    assert len(warnings) == 1 and warnings[0].startswith("could not write cache file")
    assert warnings[0].endswith("(Not a directory)")


def test_data_module_too_big_for_memory_is_refused_before_allocating():
    module = FieldDataModule(dataset="storms", n_sequences=256, frames=20, size=100000)
    with pytest.raises(UserError, match=r"storms data of shape \(256, 20, 1, 100000, 100000\) would need "
                                        r"204800000000000 bytes .* available"):
        module.prepare_data()


def test_too_short_series_file_says_its_length_and_what_is_needed(tmp_path):
    path = save_array(tmp_path / "series.npy", np.zeros((10, 3), np.float32))
    module = SeriesDataModule(path=str(path), windows={"context": 4, "target": 2}, loading={"batch_size": 2})
    with pytest.raises(UserError, match=r"series\.npy: 10 time steps are too few .* = 6 steps .* at least 30"):
        module.setup("fit")


def _temps(*folders: Path) -> list[Path]:
    return [p for folder in folders if folder.exists() for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_generate_killed_mid_write_leaves_nothing_after_a_rerun(tmp_path):
    out_dir, cache = tmp_path / "out", tmp_path / "cache"
    out_dir.mkdir()
    env = {**os.environ, "SFP_CACHE": str(cache)}
    argv = [sys.executable, "-m", "sfp", "data", "generate", "storms", "--out", "x.npz",
            "--n", "16", "--frames", "25", "--size", "64"]
    process = subprocess.Popen(argv, cwd=out_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not _temps(out_dir, cache) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert _temps(out_dir, cache), "the run ended before it was caught writing"
    subprocess.run(argv, cwd=out_dir, env=env, check=True, capture_output=True, timeout=120)
    assert _temps(out_dir, cache) == []
    assert np.load(out_dir / "x.npz")["data"].shape == (16, 25, 1, 64, 64)


def _inf_series(path: Path) -> Path:
    values = np.random.default_rng(0).random((200, 3)).astype(np.float32)
    values[5, 1], values[7, 2], values[9, 0] = np.inf, -np.inf, np.nan
    save_array(path, values)
    return path


def _inf_fno(path: Path) -> Path:
    values = np.random.default_rng(0).random((2, 8, 8, 6)).astype(np.float32)
    values[0, 1, 2, :2] = np.inf
    with h5py.File(path, "w") as handle:
        handle.create_dataset("u", data=values)
    return path


def test_infinite_values_in_a_series_file_name_the_file_and_count(tmp_path):
    path = _inf_series(tmp_path / "series.h5")
    module = SeriesDataModule(path=str(path), windows={"context": 4, "target": 2}, loading={"batch_size": 2})
    with pytest.raises(UserError, match=r"series\.h5: 2 infinite values"):
        module.setup("fit")


def test_nan_in_a_series_file_stays_missing_data(tmp_path):
    values = np.random.default_rng(0).random((200, 3)).astype(np.float32)
    values[9, 0] = np.nan
    path = save_array(tmp_path / "series.h5", values)
    module = SeriesDataModule(path=str(path), windows={"context": 4, "target": 2}, loading={"batch_size": 2})
    module.setup("fit")
    assert np.isnan(module.source.read(0, 0, 200)).sum() == 1


def test_infinite_values_in_an_fno_file_name_the_file_and_count(tmp_path):
    path = _inf_fno(tmp_path / "fno.h5")
    reader = FNOReader(path)
    reader.read(1, 0, 6)  # the other sequence is finite
    with pytest.raises(UserError, match=r"fno\.h5: 2 infinite values"):
        reader.read(0, 0, 6)


def test_a_construction_too_large_for_memory_is_a_memory_error_not_a_kill():
    """Inside within_available_memory, mapping more than the memory left fails at once; outside, the same mapping
    (never touched, so it costs nothing) is granted: the cap, not the kernel, refused it."""
    import mmap

    from sfp.data.memory import available_bytes, within_available_memory

    if available_bytes() is None:
        pytest.skip("no /proc/meminfo here")
    size = available_bytes() + 2**29
    with pytest.raises(OSError), within_available_memory():
        mmap.mmap(-1, size)
    mmap.mmap(-1, size).close()
