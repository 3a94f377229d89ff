"""Speed and memory of the lazy readers, the window datasets and the streaming scaler, on files written here.

Rows: windows per second read through SEVIR (real 384x384x49 events, shrunk to 128) and NetCDF; the memory and
time of reading one window lazily against loading the whole file (ratios within this run); scaler throughput;
batches per second of a field data set in memory. Rates are per CPU second (process time), since the machine is
shared and wall time mostly measures the neighbours.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch.utils.data import DataLoader

from sfp.data.readers import NetCDFReader, SEVIRReader
from sfp.data.readers.sevir import block_mean
from sfp.data.scalers import fit_moments
from sfp.data.windows import ArraySource, WindowDataset, split_by_time

SEVIR_EVENTS = 8


def _timed(action) -> float:
    """CPU seconds of the action: steadier than wall time on a machine shared with other work."""
    start = time.process_time()
    action()
    return time.process_time() - start


def _peak_mb(action) -> float:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _write_sevir(root: Path) -> Path:
    rng = np.random.default_rng(0)
    (root / "vil").mkdir()
    path = root / "vil" / "SEVIR_VIL_BENCH.h5"
    with h5py.File(path, "w") as handle:
        vil = handle.create_dataset("vil", shape=(SEVIR_EVENTS, 384, 384, 49), dtype=np.uint8)
        for k in range(SEVIR_EVENTS):
            vil[k] = rng.integers(0, 255, size=(384, 384, 49), dtype=np.uint8)
    pd.DataFrame({"id": [f"S{k}" for k in range(SEVIR_EVENTS)], "file_name": "vil/SEVIR_VIL_BENCH.h5",
                  "file_index": range(SEVIR_EVENTS), "img_type": "vil",
                  "time_utc": pd.date_range("2018-05-01", periods=SEVIR_EVENTS, freq="D"),
                  "pct_missing": 0.0}).to_csv(root / "CATALOG.csv", index=False)
    return path


def _sevir_rows(root: Path) -> list[dict]:
    path = _write_sevir(root)
    data = WindowDataset(SEVIRReader(root, size=128), context=13, target=12, stride=12, calendar=True)
    seconds = _timed(lambda: [data[k] for k in range(len(data))])

    def eager():  # what a reader that loads the file whole would do for the same window
        with h5py.File(path, "r") as handle:
            raw = np.ascontiguousarray(np.moveaxis(handle["vil"][()][1, :, :, 12:37], -1, 0))
        return block_mean(raw, raw != 255, 3)

    lazy_mb, eager_mb = _peak_mb(lambda: data[4]), _peak_mb(eager)
    lazy_s, eager_s = _timed(lambda: data[4]), _timed(eager)
    return [
        {"name": "sevir windows/s (13+12 frames, 384->128)", "value": len(data) / seconds, "unit": "1/s",
         "note": f"{len(data)} windows of {SEVIR_EVENTS} events"},
        {"name": "sevir one window: peak memory, lazy vs whole file", "value": lazy_mb / eager_mb, "unit": "x",
         "note": f"{lazy_mb:.1f} MB vs {eager_mb:.0f} MB"},
        {"name": "sevir one window: time, lazy vs loading whole file", "value": lazy_s / eager_s, "unit": "x",
         "note": f"{lazy_s * 1e3:.0f} ms vs {eager_s * 1e3:.0f} ms CPU"},
    ]


def _netcdf_rows(root: Path) -> list[dict]:
    days, lat, lon = 730, 90, 180
    values = np.random.default_rng(1).normal(15, 5, size=(days, lat, lon)).astype(np.float32)
    values[:, :20, :40] = np.nan
    path = root / "sst.nc"
    coords = {"time": pd.date_range("2015-01-01", periods=days, freq="D"), "lat": np.linspace(89, -89, lat),
              "lon": np.linspace(0, 358, lon)}
    xr.Dataset({"sst": (("time", "lat", "lon"), values)}, coords=coords).to_netcdf(path, engine="h5netcdf")
    reader = NetCDFReader(path, "sst")
    data = WindowDataset(reader, context=10, target=10, stride=5, position="window", calendar=True)
    count = min(len(data), 100)
    seconds = _timed(lambda: [data[k] for k in range(count)])
    splits = split_by_time(reader, 0.1, 0.1, gap=20)
    train_values = (splits["train"][0].stop - splits["train"][0].start) * lat * lon
    fit_s = _timed(lambda: fit_moments(reader, splits["train"]))
    return [
        {"name": "netcdf windows/s (10+10 frames of 90x180)", "value": count / seconds, "unit": "1/s"},
        {"name": "scaler fit, streamed from netcdf", "value": train_values / fit_s / 1e6, "unit": "M values/s"},
    ]


def _memory_rows() -> list[dict]:
    fields = np.random.default_rng(2).uniform(0, 255, size=(64, 20, 1, 64, 64)).astype(np.float32)
    loader = DataLoader(WindowDataset(ArraySource(fields), context=10, target=10), batch_size=8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # collating with several threads on a shared, loaded machine only adds contention
    try:
        seconds = _timed(lambda: list(loader))
    finally:
        torch.set_num_threads(threads)
    return [{"name": "field batches/s (8 x 20 x 1 x 64 x 64, in memory)", "value": len(loader) / seconds,
             "unit": "1/s", "note": "one torch thread"}]


def run() -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="sfp-bench-data-io-") as tmp:
        root = Path(tmp)
        (root / "sevir").mkdir()
        return _sevir_rows(root / "sevir") + _netcdf_rows(root) + _memory_rows()
