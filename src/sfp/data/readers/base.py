"""What the readers share: checked paths, read-only HDF5 opening with one-line errors, handles safe across forks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sfp.errors import UserError, first_line


def existing_file(path: str | os.PathLike, what: str = "file") -> Path:
    """The path, or a UserError when no such file exists."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"{path}: no such {what}")
    return path


def cannot_read(path: Path, err: BaseException) -> UserError:
    """A UserError saying why a file could not be read (corrupt, truncated, not the expected format)."""
    return UserError(f"{path}: cannot read ({type(err).__name__}: {first_line(err, 'corrupt or truncated')})")


def open_hdf5(path: Path) -> h5py.File:
    """Open an HDF5 file read-only; a corrupt or truncated one raises a UserError."""
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise cannot_read(path, err) from err


def hdf5_dataset(handle: h5py.File, name: str) -> h5py.Dataset:
    """The named dataset of an open file, or a UserError listing the datasets it has."""
    item = handle.get(name)
    if not isinstance(item, h5py.Dataset):
        names = [key for key, value in handle.items() if isinstance(value, h5py.Dataset)]
        raise UserError(f"{handle.filename}: no dataset {name!r}; it has: {', '.join(names) or 'none'}")
    return item


def read_hdf5(dataset: h5py.Dataset, index: Any) -> np.ndarray:
    """``dataset[index]``, with a read failure (a truncated file) as a UserError."""
    try:
        return dataset[index]
    except (OSError, RuntimeError) as err:
        raise cannot_read(Path(dataset.file.filename), err) from err


def reject_infinite(path: str | os.PathLike, values: np.ndarray) -> np.ndarray:
    """`values`, or a UserError naming the file and the count when they hold +inf or -inf.

    NaN is missing data (masked downstream); an infinite value is a broken file and would turn the loss into NaN.
    """
    if values.dtype.kind in "fc":
        count = int(np.isinf(values).sum())
        if count:
            raise UserError(f"{path}: {count} infinite values (inf/-inf) in the data; only NaN may mark missing values")
    return values


class HandleCache:
    """Open HDF5 files by path, reopened in a new process: an h5py handle must not cross a fork or a pickle."""

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._files: dict[Path, h5py.File] = {}

    def get(self, path: Path) -> h5py.File:
        if self._pid != os.getpid():
            self._pid, self._files = os.getpid(), {}
        if path not in self._files:
            self._files[path] = open_hdf5(path)
        return self._files[path]

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files = {}

    def __getstate__(self) -> dict:
        return {"_pid": None, "_files": {}}
