"""`sfp data info` / `sfp data generate` and the array-file helpers: summaries, atomic saves, one-line errors."""

import hashlib

import h5py
import numpy as np
import pytest
import xarray as xr

from sfp.cli.data import describe
from sfp.cli.main import main
from sfp.data.files import open_array, save_array
from sfp.errors import UserError


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_describe_counts_events_by_hand():
    values = np.array([[0.0, 16.0, 20.0, np.nan], [74.0, 100.0, 255.0, 5.0]], dtype=np.float32)
    summary = describe(values, thresholds=(16.0, 74.0), null_value=255.0)
    # valid: 0, 16, 20, 74, 100, 5 (NaN and the null 255 are out) -> 6 values
    assert summary["valid"] == 6 and summary["nonfinite"] == 1 and summary["missing"] == 1
    assert summary["event_fraction"][16.0] == pytest.approx(4 / 6)  # 16, 20, 74, 100
    assert summary["event_fraction"][74.0] == pytest.approx(2 / 6)  # 74, 100
    assert (summary["min"], summary["max"]) == (0.0, 100.0)
    assert summary["mean"] == pytest.approx((0 + 16 + 20 + 74 + 100 + 5) / 6)


def test_describe_streams_in_chunks(monkeypatch):
    import sfp.cli.data as cli_data

    monkeypatch.setattr(cli_data, "CHUNK_BYTES", 8)  # one row per chunk
    values = np.arange(30, dtype=np.float64).reshape(10, 3)
    summary = describe(values, thresholds=(15.0,))
    assert summary["mean"] == pytest.approx(14.5) and summary["event_fraction"][15.0] == pytest.approx(0.5)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".h5"])
def test_save_then_open_round_trip(tmp_path, suffix):
    array = np.random.default_rng(0).random((3, 4, 5)).astype(np.float32)
    path = save_array(tmp_path / f"a{suffix}", array)
    np.testing.assert_array_equal(open_array(path)[:], array)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_save_refuses_to_overwrite(tmp_path):
    path = save_array(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(UserError, match="exists"):
        save_array(path, np.ones(3))
    np.testing.assert_array_equal(np.load(path), np.zeros(3))


def test_open_netcdf_variable(tmp_path):
    path = tmp_path / "sst.nc"
    xr.Dataset({"sst": (("time", "lat"), np.arange(6.0).reshape(2, 3))}).to_netcdf(path, engine="h5netcdf")
    np.testing.assert_array_equal(np.asarray(open_array(path, "sst")[:]), np.arange(6.0).reshape(2, 3))
    with pytest.raises(UserError, match="no variable 'temp'; it has: sst"):
        open_array(path, "temp")


def test_info_prints_summary(tmp_path, capsys):
    path = tmp_path / "v.npy"
    np.save(path, np.array([0.0, 133.0, 200.0, 10.0], dtype=np.float32))
    assert main(["data", "info", str(path), "--thresholds", "133,181"]) == 0
    out = capsys.readouterr().out
    assert "(4,)" in out and "float32" in out
    assert "50.0000 %" in out and "25.0000 %" in out


def _error_line(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sfp: error: ") and "Traceback" not in err
    return err


def test_info_missing_file(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "nope.npy")]) == 2
    assert "no such file" in _error_line(capsys)


def test_info_truncated_file_is_reported_and_left_alone(tmp_path, capsys):
    path = tmp_path / "cut.npy"
    np.save(path, np.arange(1000.0))
    path.write_bytes(path.read_bytes()[:500])
    before = _digest(path)
    assert main(["data", "info", str(path)]) == 2
    assert "cannot read" in _error_line(capsys)
    assert _digest(path) == before


def test_info_corrupt_hdf5(tmp_path, capsys):
    path = tmp_path / "bad.h5"
    path.write_bytes(b"not an hdf5 file at all" * 10)
    assert main(["data", "info", str(path)]) == 2
    assert "cannot read" in _error_line(capsys)


def test_info_wrong_variable_and_good_file_untouched(tmp_path, capsys):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as handle:
        handle["vil"] = np.zeros((2, 3), dtype=np.uint8)
    before = _digest(path)
    assert main(["data", "info", str(path), "--variable", "u"]) == 2
    assert "no variable 'u'; it has: vil" in _error_line(capsys)
    assert main(["data", "info", str(path)]) == 0
    assert _digest(path) == before


def test_info_rejects_nan_when_finite_required(tmp_path, capsys):
    path = tmp_path / "nan.npy"
    np.save(path, np.array([1.0, np.nan]))
    assert main(["data", "info", str(path), "--require-finite"]) == 2
    assert "1 NaN or infinite values" in _error_line(capsys)


@pytest.mark.parametrize("argv", [["data", "info"], ["data", "info", "x.npy", "--bogus"], ["nope"],
                                  ["data", "info", "x.npy", "--thresholds", "a,b"]])
def test_bad_options_are_one_line(argv, capsys):
    assert main(argv) == 2
    _error_line(capsys)
