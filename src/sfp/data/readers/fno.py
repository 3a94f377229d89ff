"""Navier–Stokes trajectories in the FNO layout: a variable ``u`` of shape ``(N, H, W, T)``.

Three file kinds hold it:

- HDF5 (``.h5``/``.hdf5``) written from numpy: ``u`` is stored as ``(N, H, W, T)`` and read lazily;
- MATLAB v7.3 ``.mat`` files are HDF5 too, but MATLAB stores arrays column-major, so h5py sees ``u`` with its axes
  reversed, ``(T, W, H, N)``; read lazily and turned back;
- older MATLAB ``.mat`` files (v5, not HDF5) go through ``scipy.io.loadmat``, which loads the variable whole (such
  files are limited to 2 GiB).

Every sequence comes out as float32 frames ``(T, 1, H, W)``; frames holding +inf or -inf raise a UserError when read
(NaN stays missing data).
"""

from __future__ import annotations

import os

import h5py
import numpy as np
import scipy.io

from sfp.data.readers.base import (
    HandleCache,
    cannot_read,
    existing_file,
    hdf5_dataset,
    open_hdf5,
    read_hdf5,
    reject_infinite,
)
from sfp.errors import UserError

MATLAB_HEADER = b"MATLAB"


def _is_matlab(path: os.PathLike) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(MATLAB_HEADER)) == MATLAB_HEADER


class FNOReader:
    """One variable ``(N, H, W, T)`` of an FNO-style ``.mat``/HDF5 file as a source of ``(T, 1, H, W)`` sequences."""

    def __init__(self, path: str | os.PathLike, variable: str = "u") -> None:
        self.path = existing_file(path, "FNO data file")
        self.variable = variable
        self._handles = HandleCache()
        self._loaded: np.ndarray | None = None
        if h5py.is_hdf5(self.path):
            self.column_major = _is_matlab(self.path) or self.path.suffix.lower() == ".mat"
            with open_hdf5(self.path) as handle:
                shape = hdf5_dataset(handle, variable).shape
            shape = shape[::-1] if self.column_major else shape
        elif self.path.suffix.lower() == ".mat":
            self.column_major = False
            self._loaded = self._load_matlab_v5()
            shape = self._loaded.shape
        else:
            raise UserError(f"{self.path}: neither HDF5 nor a MATLAB .mat file")
        if len(shape) != 4:
            raise UserError(f"{self.path}: {variable!r} has shape {tuple(shape)}, expected (N, H, W, T)")
        self.num_sequences, height, width, self.sequence_length = (int(s) for s in shape)
        self.sample_shape = (1, height, width)

    def _load_matlab_v5(self) -> np.ndarray:
        errors = (ValueError, TypeError, OSError, EOFError, scipy.io.matlab.MatReadError)
        try:
            names = [name for name, _, _ in scipy.io.whosmat(self.path)]
        except errors as err:
            raise cannot_read(self.path, err) from err
        if self.variable not in names:
            raise UserError(f"{self.path}: no variable {self.variable!r}; it has: {', '.join(names) or 'none'}")
        try:
            return np.asarray(scipy.io.loadmat(self.path, variable_names=[self.variable])[self.variable])
        except errors as err:
            raise cannot_read(self.path, err) from err

    def read(self, sequence: int, start: int, stop: int) -> np.ndarray:
        if self._loaded is not None:
            frames = np.moveaxis(self._loaded[sequence, :, :, start:stop], -1, 0)
        else:
            data = self._handles.get(self.path)[self.variable]
            if self.column_major:
                frames = np.swapaxes(read_hdf5(data, (slice(start, stop), slice(None), slice(None), sequence)), 1, 2)
            else:
                frames = np.moveaxis(read_hdf5(data, (sequence, slice(None), slice(None), slice(start, stop))), -1, 0)
        return reject_infinite(self.path, np.ascontiguousarray(frames, dtype=np.float32)[:, None])

    def timestamps(self, sequence: int) -> None:
        return None
