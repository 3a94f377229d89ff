"""Open and save plain array files (.npy, .npz, HDF5/.mat v7.3, NetCDF) lazily and safely.

`open_array` never loads a file whole: .npy is memory-mapped, HDF5 and NetCDF variables are indexed on demand.
Every problem a user can cause (missing file, corrupt or truncated file, unknown variable) becomes a
:class:`~sfp.errors.UserError` naming the file. Files are opened read-only; `save_array` writes atomically.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sfp.data.writing import check_output, write_file
from sfp.errors import UserError, first_line

HDF5_SUFFIXES = {".h5", ".hdf5", ".hdf", ".mat"}
NETCDF_SUFFIXES = {".nc", ".nc4", ".netcdf"}
SUFFIXES = {".npy", ".npz"} | HDF5_SUFFIXES | NETCDF_SUFFIXES
WRITABLE = {".npy", ".npz", ".h5", ".hdf5"}


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
    if not names:
        raise UserError(f"{path}: holds no arrays")
    raise UserError(f"{path}: holds several arrays ({', '.join(names)}); choose one with --variable")


def _hdf5_arrays(handle: Any) -> list[str]:
    import h5py

    names: list[str] = []
    handle.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


NUMPY_MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK"}


def _check_magic(path: Path, suffix: str) -> None:
    """A .npy/.npz file must start with its format's signature (else numpy calls it pickled data)."""
    magic = NUMPY_MAGIC.get(suffix)
    if magic is None:
        return
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(magic))
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror or err})") from err
    if head != magic:
        raise UserError(f"{path}: not a {suffix} file (no {suffix} signature; empty, corrupt or another format)")


def open_array(path: str | os.PathLike, variable: str | None = None) -> LazyArray:
    """Open one array of a file without reading it; `variable` picks it in multi-array files."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"{path}: unsupported file type {suffix or '(none)'}; use one of {', '.join(sorted(SUFFIXES))}")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a file")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    _check_magic(path, suffix)
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
        reason = first_line(err, "corrupt or truncated")
        raise UserError(f"{path}: cannot read ({type(err).__name__}: {reason})") from err


class _Writes:
    """Only the ``write`` of a file: numpy then writes through Python, whose errors keep their errno (its fast
    path, ``ndarray.tofile``, reports a full disk as a short write without one)."""

    def __init__(self, handle: Any) -> None:
        self.write = handle.write


def _write(temp: str, array: np.ndarray, suffix: str) -> None:
    """Write `array` to the file `temp` in the format of `suffix`.

    HDF5 is built in memory and then written as plain bytes: a write that fails inside HDF5 (a full disk) crashes
    the process when the file is closed (h5py 3.16, HDF5 2.0), while a failed Python write is an ordinary OSError.
    """
    if suffix == ".npy":
        with open(temp, "wb") as handle:
            np.save(_Writes(handle), array, allow_pickle=False)
    elif suffix == ".npz":
        np.savez_compressed(temp, data=array)
    else:
        import h5py

        image = io.BytesIO()
        with h5py.File(image, "w") as handle:
            handle.create_dataset("data", data=array, chunks=True, compression="gzip", compression_opts=1)
        with open(temp, "wb") as file:
            file.write(image.getbuffer())


def save_array(path: str | os.PathLike, array: np.ndarray, overwrite: bool = False) -> Path:
    """Write `array` to .npy, .npz or HDF5 (dataset ``data``) atomically: temp file in place, then rename.

    The path is checked first (:func:`~sfp.data.writing.check_output`); the file gets the umask's mode; the
    temporary file is removed on any failure, and those of a killed earlier run are removed first. A write that
    fails (full disk, unwritable folder) is a one-line :class:`UserError`.
    """
    path = check_output(path, WRITABLE, replace=overwrite)
    return write_file(path, lambda temp: _write(temp, array, path.suffix.lower()))
