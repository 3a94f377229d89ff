"""Small files in the real schemas (SEVIR, FNO .mat/HDF5, NetCDF) for the data_io tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.io
import xarray as xr

SEVIR_OFFSETS = ":".join(str(m) for m in range(-120, 125, 5))  # 49 frames, as in the real catalog


def write_sevir(root: Path, events: list[tuple[str, np.ndarray]], extra_rows: list[dict] | None = None) -> Path:
    """Write VIL events ``(time_utc, uint8 array (H, W, T))`` into two HDF5 files under ``root/vil`` and a catalog.

    Events alternate between the files and are stored in reverse order inside each, so the catalog's file_index
    matters. ``extra_rows`` are appended to the catalog as given (e.g. other image types, events with missing data).
    """
    (root / "vil").mkdir(parents=True, exist_ok=True)
    names = ["vil/SEVIR_VIL_A.h5", "vil/SEVIR_VIL_B.h5"]
    per_file: dict[str, list[int]] = {name: [] for name in names}
    for k in range(len(events)):
        per_file[names[k % 2]].append(k)
    rows = []
    for name, members in per_file.items():
        stored = members[::-1]
        with h5py.File(root / name, "w") as handle:
            handle.create_dataset("id", data=np.array([f"S{k}" for k in stored], dtype="S"))
            handle.create_dataset("vil", data=np.stack([events[k][1] for k in stored]) if stored else
                                  np.zeros((0,) + events[0][1].shape, np.uint8))
        for position, k in enumerate(stored):
            rows.append({"id": f"S{k}", "file_name": name, "file_index": position, "img_type": "vil",
                         "time_utc": events[k][0], "minute_offsets": SEVIR_OFFSETS, "pct_missing": 0.0})
    table = pd.DataFrame(rows + (extra_rows or []))
    table.to_csv(root / "CATALOG.csv", index=False)
    return root / "CATALOG.csv"


def write_fno_hdf5(path: Path, u: np.ndarray, name: str = "u") -> Path:
    """``u (N, H, W, T)`` stored as numpy lays it out."""
    with h5py.File(path, "w") as handle:
        handle.create_dataset(name, data=u)
    return path


def write_mat73(path: Path, u: np.ndarray, name: str = "u") -> Path:
    """A MATLAB v7.3 file: HDF5 behind a 512-byte MATLAB header, arrays stored column-major (axes reversed)."""
    with h5py.File(path, "w", userblock_size=512) as handle:
        handle.create_dataset(name, data=np.ascontiguousarray(u.transpose(range(u.ndim)[::-1])))
        handle[name].attrs["MATLAB_class"] = np.bytes_("double")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as handle:
        handle.write(header.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
    return path


def write_mat5(path: Path, u: np.ndarray, name: str = "u") -> Path:
    """An old-style (v5) MATLAB file, as scipy writes it."""
    scipy.io.savemat(path, {name: u, "a": u[..., 0]})
    return path


def write_sst(path: Path, sst: np.ndarray, times: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> Path:
    """An OISST-like NetCDF file: ``sst(time, zlev, lat, lon)`` packed as int16 with a fill value for land (NaN)."""
    data = xr.Dataset(
        {"sst": (("time", "zlev", "lat", "lon"), sst[:, None].astype(np.float32)),
         "anom": (("time", "zlev", "lat", "lon"), np.zeros_like(sst)[:, None].astype(np.float32))},
        coords={"time": times, "zlev": [0.0], "lat": lat, "lon": lon},
    )
    encoding = {"sst": {"dtype": "int16", "scale_factor": 0.01, "_FillValue": -999}}
    data.to_netcdf(path, engine="h5netcdf", encoding=encoding)
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file to a fraction of its bytes, as an interrupted download would."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
