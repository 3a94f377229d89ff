"""Readers of real data on small files written in the real schemas: values, layout, laziness, errors, read-only."""

from __future__ import annotations

import stat
import tracemalloc

import numpy as np
import pytest

from data_io_files import digest, truncate, write_fno_hdf5, write_mat5, write_mat73, write_sevir, write_sst
from sfp.data.readers import FNOReader, NetCDFReader, SEVIRReader
from sfp.errors import UserError


def _read_only(*paths):
    for path in paths:
        path.chmod(stat.S_IRUSR | stat.S_IRGRP)


def _peak_bytes(action) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------- SEVIR

SEVIR_TIMES = ["2018-06-01 12:00:00", "2019-06-01 00:00:00", "2018-12-31 23:55:00", "2019-01-01 00:00:00",
               "2019-05-31 23:00:00", "2019-07-04 18:00:00"]


@pytest.fixture
def sevir(tmp_path):
    rng = np.random.default_rng(0)
    events = [(t, rng.integers(0, 255, size=(12, 12, 49), dtype=np.uint8)) for t in SEVIR_TIMES]
    events[0][1][3, 4, 20] = 255  # one missing pixel
    extra = [
        {"id": "X1", "file_name": "vil/SEVIR_VIL_A.h5", "file_index": 0, "img_type": "vil",
         "time_utc": "2018-01-01 00:00:00", "minute_offsets": None, "pct_missing": 0.25},
        {"id": "S0", "file_name": "ir069/SEVIR_IR069.h5", "file_index": 0, "img_type": "ir069",
         "time_utc": SEVIR_TIMES[0], "minute_offsets": None, "pct_missing": 0.0},
    ]
    write_sevir(tmp_path, events, extra)
    by_time = sorted(range(len(events)), key=lambda k: SEVIR_TIMES[k])
    return tmp_path, [events[k][1] for k in by_time], [SEVIR_TIMES[k] for k in by_time]


def test_sevir_keeps_clean_vil_events_in_time_order(sevir):
    root, arrays, times = sevir
    reader = SEVIRReader(root)
    assert (reader.num_sequences, reader.sequence_length, reader.sample_shape) == (6, 49, (1, 12, 12))
    assert [str(t)[:19].replace("T", " ") for t in reader.times] == times
    for k, array in enumerate(arrays):
        window = reader.read(k, 13, 25)
        assert window.shape == (12, 1, 12, 12) and window.dtype == np.float32
        expected = array[:, :, 13:25].transpose(2, 0, 1).astype(np.float32)
        expected[expected == 255] = np.nan
        np.testing.assert_array_equal(window[:, 0], expected)


def test_sevir_missing_pixel_is_nan(sevir):
    root, arrays, times = sevir
    first = times.index(SEVIR_TIMES[0])
    frame = SEVIRReader(root).read(first, 20, 21)[0, 0]
    assert np.isnan(frame[3, 4]) and np.isnan(frame).sum() == 1


def test_sevir_downsamples_by_block_mean_ignoring_missing(sevir):
    root, arrays, times = sevir
    first = times.index(SEVIR_TIMES[0])
    small = SEVIRReader(root, size=6).read(first, 20, 21)[0, 0]
    full = arrays[first][:, :, 20].astype(np.float64)
    quads = [full[0::2, 0::2], full[1::2, 0::2], full[0::2, 1::2], full[1::2, 1::2]]
    expected = sum(quads) / 4
    expected[1, 2] = (full[2, 4] + full[2, 5] + full[3, 5]) / 3  # the block holding the missing pixel (3, 4)
    np.testing.assert_allclose(small, expected, rtol=1e-6)


def test_sevir_split_by_time_boundaries(sevir):
    root, _, times = sevir
    splits = SEVIRReader(root).split_indices()
    named = {name: [times[k] for k in idx] for name, idx in splits.items()}
    assert named == {
        "train": ["2018-06-01 12:00:00", "2018-12-31 23:55:00"],
        "val": ["2019-01-01 00:00:00", "2019-05-31 23:00:00"],
        "test": ["2019-06-01 00:00:00", "2019-07-04 18:00:00"],
    }


def test_sevir_timestamps_follow_minute_offsets(sevir):
    root, _, times = sevir
    stamps = SEVIRReader(root).timestamps(0)
    assert len(stamps) == 49
    assert stamps[0] == np.datetime64(times[0].replace(" ", "T")) - np.timedelta64(120, "m")
    assert np.all(np.diff(stamps) == np.timedelta64(5, "m"))


def test_sevir_real_frame_size_downsampled_to_128(tmp_path):
    rng = np.random.default_rng(1)
    event = rng.integers(0, 255, size=(384, 384, 49), dtype=np.uint8)
    write_sevir(tmp_path, [("2018-05-05 10:00:00", event)])
    reader = SEVIRReader(tmp_path, size=128)
    window = reader.read(0, 0, 2)
    assert window.shape == (2, 1, 128, 128)
    expected = event[:, :, 1].astype(np.float64).reshape(128, 3, 128, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(window[1, 0], expected, rtol=1e-5)


def test_sevir_reads_lazily(tmp_path):
    rng = np.random.default_rng(2)
    events = [(f"2018-0{1 + k % 9}-02 00:00:00", rng.integers(0, 255, size=(128, 128, 49), dtype=np.uint8))
              for k in range(12)]
    write_sevir(tmp_path, events)
    reader = SEVIRReader(tmp_path)
    whole = 12 * 128 * 128 * 49 * 4  # every event as float32: 38 MB
    peak = _peak_bytes(lambda: reader.read(5, 0, 25))
    assert peak < whole / 6


def test_sevir_never_writes_its_input(sevir):
    root, _, _ = sevir
    files = [root / "CATALOG.csv", root / "vil/SEVIR_VIL_A.h5", root / "vil/SEVIR_VIL_B.h5"]
    before = [digest(f) for f in files]
    _read_only(*files)
    reader = SEVIRReader(root, size=6)
    for k in range(reader.num_sequences):
        reader.read(k, 0, 49)
    assert [digest(f) for f in files] == before


@pytest.mark.parametrize("damage, message", [
    (lambda root: (root / "vil/SEVIR_VIL_B.h5").unlink(), "no such SEVIR file"),
    (lambda root: truncate(root / "vil/SEVIR_VIL_A.h5"), "cannot read"),
    (lambda root: (root / "CATALOG.csv").unlink(), "no such SEVIR catalog"),
    (lambda root: (root / "CATALOG.csv").write_text("id,file_name\nS0,x.h5\n"), "columns missing"),
    (lambda root: (root / "CATALOG.csv").write_text(""), "cannot read"),
])
def test_sevir_damaged_inputs_raise_user_error(sevir, damage, message):
    root, _, _ = sevir
    damage(root)
    with pytest.raises(UserError, match=message):
        SEVIRReader(root)


def test_sevir_bad_arguments_raise_user_error(sevir, tmp_path):
    root, _, _ = sevir
    with pytest.raises(UserError, match="no such SEVIR data folder"):
        SEVIRReader(tmp_path / "nowhere")
    with pytest.raises(UserError, match="size=5"):
        SEVIRReader(root, size=5)


def test_sevir_file_without_vil_dataset(tmp_path):
    rng = np.random.default_rng(3)
    write_sevir(tmp_path, [("2018-05-05 10:00:00", rng.integers(0, 255, size=(8, 8, 49), dtype=np.uint8))])
    import h5py

    with h5py.File(tmp_path / "vil/SEVIR_VIL_B.h5", "w") as handle:
        handle.create_dataset("ir069", data=np.zeros((1, 8, 8, 49), np.uint8))
    import pandas as pd

    table = pd.read_csv(tmp_path / "CATALOG.csv")
    table.loc[0, "file_name"] = "vil/SEVIR_VIL_B.h5"
    table.to_csv(tmp_path / "CATALOG.csv", index=False)
    with pytest.raises(UserError, match="no dataset 'vil'; it has: ir069"):
        SEVIRReader(tmp_path)


# ---------------------------------------------------------------- FNO

@pytest.fixture
def fno_u():
    n, h, w, t = 3, 4, 5, 6  # all axes different, so a transposition cannot go unnoticed
    return np.arange(n * h * w * t, dtype=np.float64).reshape(n, h, w, t) * 0.5 - 7


@pytest.mark.parametrize("write, name", [(write_fno_hdf5, "ns.h5"), (write_mat73, "ns_v73.mat"),
                                         (write_mat5, "ns_v5.mat")])
def test_fno_layouts_read_the_same(tmp_path, fno_u, write, name):
    reader = FNOReader(write(tmp_path / name, fno_u))
    assert (reader.num_sequences, reader.sequence_length, reader.sample_shape) == (3, 6, (1, 4, 5))
    window = reader.read(2, 1, 4)
    assert window.shape == (3, 1, 4, 5) and window.dtype == np.float32
    for k in range(3):
        np.testing.assert_array_equal(window[k, 0], fno_u[2, :, :, 1 + k])


def test_fno_mat73_is_seen_transposed_by_h5py(tmp_path, fno_u):
    import h5py

    path = write_mat73(tmp_path / "ns.mat", fno_u)
    with h5py.File(path, "r") as handle:
        assert handle["u"].shape == (6, 5, 4, 3)
    assert FNOReader(path).sample_shape == (1, 4, 5)


def test_fno_other_variable(tmp_path, fno_u):
    path = write_fno_hdf5(tmp_path / "ns.h5", fno_u, name="vorticity")
    assert FNOReader(path, variable="vorticity").num_sequences == 3
    with pytest.raises(UserError, match="no dataset 'u'; it has: vorticity"):
        FNOReader(path)


def test_fno_mat5_wrong_variable_lists_the_names(tmp_path, fno_u):
    path = write_mat5(tmp_path / "ns.mat", fno_u)
    with pytest.raises(UserError, match="no variable 'w'; it has: .*u"):
        FNOReader(path, variable="w")


@pytest.mark.parametrize("write, name", [(write_fno_hdf5, "ns.h5"), (write_mat73, "ns.mat"), (write_mat5, "ns.mat")])
def test_fno_truncated_files_raise_user_error(tmp_path, fno_u, write, name):
    path = truncate(write(tmp_path / name, np.repeat(fno_u, 40, axis=0)), keep=0.3)
    with pytest.raises(UserError, match="cannot read"):
        reader = FNOReader(path)
        reader.read(reader.num_sequences - 1, 0, 6)


def test_fno_bad_files_raise_user_error(tmp_path, fno_u):
    with pytest.raises(UserError, match="no such FNO data file"):
        FNOReader(tmp_path / "absent.mat")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an array file at all" * 10)
    with pytest.raises(UserError, match="neither HDF5 nor"):
        FNOReader(garbage)
    flat = write_fno_hdf5(tmp_path / "flat.h5", fno_u[0])
    with pytest.raises(UserError, match=r"expected \(N, H, W, T\)"):
        FNOReader(flat)


def test_fno_reads_lazily_and_never_writes(tmp_path):
    u = np.random.default_rng(0).standard_normal((40, 64, 64, 50), dtype=np.float32)  # 33 MB
    for path in (write_fno_hdf5(tmp_path / "big.h5", u), write_mat73(tmp_path / "big.mat", u)):
        before = digest(path)
        _read_only(path)
        reader = FNOReader(path)
        peak = _peak_bytes(lambda reader=reader: reader.read(17, 10, 30))
        assert peak < u.nbytes / 20
        np.testing.assert_array_equal(reader.read(17, 10, 30)[:, 0], u[17, :, :, 10:30].transpose(2, 0, 1))
        assert digest(path) == before


# ---------------------------------------------------------------- NetCDF

@pytest.fixture
def sst_file(tmp_path):
    times = np.arange("2015-01-01", "2015-03-02", dtype="datetime64[D]").astype("datetime64[ns]")  # 60 days
    lat = np.linspace(40.0, -40.0, 9)  # descending, as in many products
    lon = np.arange(0.0, 360.0, 30.0)  # 12 columns
    rng = np.random.default_rng(4)
    sst = np.round(rng.uniform(-1.5, 30.0, size=(len(times), len(lat), len(lon))), 2)
    land = np.zeros((len(lat), len(lon)), bool)
    land[2:4, 3:6] = True
    sst[:, land] = np.nan
    return write_sst(tmp_path / "sst.nc", sst, times, lat, lon), sst, times, lat, lon, land


def test_netcdf_selects_time_and_box(sst_file):
    path, sst, times, lat, lon, land = sst_file
    reader = NetCDFReader(path, "sst", time_range=("2015-01-10", "2015-01-29"), lat_range=(-10, 30),
                          lon_range=(60, 200))
    rows = np.flatnonzero((lat >= -10) & (lat <= 30))  # 30, 20, 10, 0, -10
    cols = np.flatnonzero((lon >= 60) & (lon <= 200))  # 60 ... 180
    assert (reader.num_sequences, reader.sequence_length, reader.sample_shape) == (1, 20, (1, 5, 5))
    np.testing.assert_array_equal(reader.timestamps(0), times[9:29])
    window = reader.read(0, 2, 5)
    assert window.shape == (3, 1, 5, 5) and window.dtype == np.float32
    expected = sst[11:14][:, rows][:, :, cols]
    np.testing.assert_allclose(window[:, 0], expected, atol=0.006, equal_nan=True)


def test_netcdf_land_is_nan_and_masked_not_zero(sst_file):
    path, sst, times, lat, lon, land = sst_file
    reader = NetCDFReader(path, "sst")
    frames = reader.read(0, 0, reader.sequence_length)[:, 0]
    assert np.isnan(frames[:, land]).all()
    assert np.isfinite(frames[:, ~land]).all()
    np.testing.assert_array_equal(reader.mask, ~land)


@pytest.mark.parametrize("kwargs, message", [
    ({"variable": "temperature"}, "no variable 'temperature'; it has: sst, anom"),
    ({"variable": "sst", "time_range": ("2016-01-01", None)}, "no times in"),
    ({"variable": "sst", "lat_range": (50, 60)}, "no latitudes in"),
    ({"variable": "sst", "time_range": ("January", None)}, "unreadable time bound"),
])
def test_netcdf_bad_selection_raises_user_error(sst_file, kwargs, message):
    with pytest.raises(UserError, match=message):
        NetCDFReader(sst_file[0], **kwargs)


def test_netcdf_bad_files_raise_user_error(tmp_path, sst_file):
    with pytest.raises(UserError, match="no such NetCDF file"):
        NetCDFReader(tmp_path / "absent.nc", "sst")
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"\x00\x01 definitely not netcdf" * 50)
    with pytest.raises(UserError, match="cannot read"):
        NetCDFReader(garbage, "sst")
    with pytest.raises(UserError, match="cannot read"):
        NetCDFReader(truncate(sst_file[0], keep=0.4), "sst")


def test_netcdf_long_extra_axis_is_refused(tmp_path):
    import xarray as xr

    path = tmp_path / "levels.nc"
    xr.Dataset({"temp": (("time", "depth", "lat", "lon"), np.zeros((3, 2, 4, 5), np.float32))},
               coords={"time": np.arange(3).astype("datetime64[D]")}).to_netcdf(path, engine="h5netcdf")
    with pytest.raises(UserError, match="depth \\(2\\)"):
        NetCDFReader(path, "temp")


def test_netcdf_reads_lazily_and_never_writes(tmp_path):
    import xarray as xr

    values = np.random.default_rng(5).standard_normal((400, 100, 100), dtype=np.float32)  # 16 MB
    path = tmp_path / "big.nc"
    xr.Dataset({"sst": (("time", "lat", "lon"), values)},
               coords={"time": np.arange(400).astype("datetime64[D]").astype("datetime64[ns]"),
                       "lat": np.arange(100.0) - 50, "lon": np.arange(100.0)}).to_netcdf(path, engine="h5netcdf")
    before = digest(path)
    _read_only(path)
    reader = NetCDFReader(path, "sst")
    peak = _peak_bytes(lambda: reader.read(0, 200, 220))
    assert peak < values.nbytes / 10
    np.testing.assert_array_equal(reader.read(0, 200, 220)[:, 0], values[200:220])
    assert digest(path) == before


def test_readers_survive_pickling_as_spawned_loader_workers_need(tmp_path, sevir, sst_file, fno_u):
    import pickle

    root, _, _ = sevir
    readers = [SEVIRReader(root, size=6), FNOReader(write_mat73(tmp_path / "ns.mat", fno_u)),
               NetCDFReader(sst_file[0], "sst")]
    for reader in readers:
        expected = reader.read(0, 1, 3)  # opens the files in this process first
        copy = pickle.loads(pickle.dumps(reader))
        np.testing.assert_array_equal(copy.read(0, 1, 3), expected)
