"""Open and save plain array files (.npy, .npz, HDF5/.mat v7.3, NetCDF) lazily and safely.

`open_array` never loads a file whole: .npy is memory-mapped, HDF5 and NetCDF variables are indexed on demand.
Every problem a user can cause (missing file, corrupt or truncated file, unknown variable) becomes a
:class:`~sfp.errors.UserError` naming the file. Files are opened read-only; `save_array` writes atomically.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sfp.errors import UserError

HDF5_SUFFIXES = {".h5", ".hdf5", ".hdf", ".mat"}
NETCDF_SUFFIXES = {".nc", ".nc4", ".netcdf"}
SUFFIXES = {".npy", ".npz"} | HDF5_SUFFIXES | NETCDF_SUFFIXES


class LazyArray(Protocol):
    """What `open_array` returns: shape, dtype and slicing that reads only what is asked for."""

    shape: tuple[int, ...]
    dtype: Any

    def __getitem__(self, index: Any) -> np.ndarray: ...


def _pick(path: Path, names: list[str], variable: str | None, preferred: tuple[str, ...]) -> str:
    if variable is not None:
        if variable not in names:
            raise UserError(f"{path}: no variable {variable!r}; it has: {', '.join(names) or 'none'}")
        return variable
    if len(names) == 1:
        return names[0]
    for name in preferred:
        if name in names:
            return name
    raise UserError(f"{path}: holds several arrays ({', '.join(names)}); choose one with --variable")


def _hdf5_arrays(handle: Any) -> list[str]:
    import h5py

    names: list[str] = []
    handle.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def open_array(path: str | os.PathLike, variable: str | None = None) -> LazyArray:
    """Open one array of a file without reading it; `variable` picks it in multi-array files."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"{path}: unsupported file type {suffix or '(none)'}; use one of {', '.join(sorted(SUFFIXES))}")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        if suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False)
        if suffix == ".npz":
            archive = np.load(path, allow_pickle=False)
            return archive[_pick(path, list(archive.files), variable, ("data", "vil", "u"))]
        if suffix in HDF5_SUFFIXES:
            import h5py

            handle = h5py.File(path, "r")
            return handle[_pick(path, _hdf5_arrays(handle), variable, ("data", "vil", "u"))]
        import xarray as xr

        dataset = xr.open_dataset(path, engine="h5netcdf")
        return dataset[_pick(path, list(dataset.data_vars), variable, ("data",))].variable
    except UserError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        reason = str(err).splitlines()[0] if str(err) else "corrupt or truncated"
        raise UserError(f"{path}: cannot read ({type(err).__name__}: {reason})") from err


def save_array(path: str | os.PathLike, array: np.ndarray, overwrite: bool = False) -> Path:
    """Write `array` to .npy, .npz or HDF5 (dataset ``data``) atomically: temp file in place, then rename."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".npy", ".npz", ".h5", ".hdf5"}:
        raise UserError(f"{path}: can write .npy, .npz, .h5 or .hdf5, not {suffix or '(none)'}")
    if path.exists() and not overwrite:
        raise UserError(f"{path}: exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: no such directory")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        if suffix == ".npy":
            np.save(tmp, array)
        elif suffix == ".npz":
            np.savez_compressed(tmp, data=array)
        else:
            import h5py

            with h5py.File(tmp, "w") as handle:
                handle.create_dataset("data", data=array, chunks=True, compression="gzip", compression_opts=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
