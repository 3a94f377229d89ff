"""A gridded variable of a NetCDF file (e.g. daily sea-surface temperature) as one long series of frames.

The file is opened lazily through xarray (engine h5netcdf, read-only) and only the frames asked for are read.
Choose the variable, a time range and a latitude/longitude box (bounds inclusive, in the file's own coordinates);
the grid keeps the file's orientation. Fill values are decoded to NaN, so land stays NaN in the values, never
zero, and ``mask`` (True where the first frame has data) tells sea from land; +inf or -inf raises a UserError
when read. Extra axes of length one (e.g. a depth level) are dropped. Frames come out as float32 ``(T, 1, H, W)``,
one sequence; the time coordinate gives the timestamps for calendar features.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import xarray as xr

from sfp.data.readers.base import cannot_read, existing_file, reject_infinite
from sfp.errors import UserError

TIME_NAMES = ("time", "t", "date")
LAT_NAMES = ("lat", "latitude", "y", "nav_lat")
LON_NAMES = ("lon", "longitude", "x", "nav_lon")


def _open(path: os.PathLike) -> xr.Dataset:
    try:
        return xr.open_dataset(path, engine="h5netcdf", cache=False)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise cannot_read(path, err) from err


def _find_dim(dims: tuple[str, ...], names: tuple[str, ...], what: str, variable: str) -> str:
    for dim in dims:
        if dim.lower() in names:
            return dim
    raise UserError(f"{variable!r} has no {what} axis (looked for {', '.join(names)}); its axes: {', '.join(dims)}")


def _axes(array: xr.DataArray, variable: str) -> tuple[tuple[str, str, str], dict[str, int]]:
    """The (time, lat, lon) axis names, and the other axes (each of length 1) with the index that drops them."""
    dims = tuple(map(str, array.dims))
    axes = (_find_dim(dims, TIME_NAMES, "time", variable), _find_dim(dims, LAT_NAMES, "latitude", variable),
            _find_dim(dims, LON_NAMES, "longitude", variable))
    extra = {d: 0 for d in dims if d not in axes}
    long_extra = [f"{d} ({array.sizes[d]})" for d in extra if array.sizes[d] != 1]
    if long_extra:
        raise UserError(f"{variable!r} has further axes {', '.join(long_extra)}; only axes of length 1 are dropped")
    return axes, extra


def _selection(values: np.ndarray, bounds: tuple[Any, Any] | None, what: str) -> slice | np.ndarray:
    """Indices of coordinate values within inclusive bounds (None = open), as a slice when contiguous."""
    if bounds is None:
        return slice(None)
    low, high = bounds
    keep = np.ones(len(values), dtype=bool)
    try:
        if low is not None:
            keep &= values >= low
        if high is not None:
            keep &= values <= high
    except TypeError as err:
        raise UserError(f"{what} bounds {bounds} do not compare with the file's {values.dtype} coordinate") from err
    index = np.flatnonzero(keep)
    if len(index) == 0:
        raise UserError(f"no {what} in [{low}, {high}]; the file covers {values.min()} to {values.max()}")
    if index[-1] - index[0] + 1 == len(index):
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def _as_times(bounds: tuple[str | None, str | None] | None) -> tuple[Any, Any] | None:
    if bounds is None:
        return None
    try:
        return tuple(None if b is None else np.datetime64(b, "ns") for b in bounds)
    except ValueError as err:
        raise UserError(f"unreadable time bound in {bounds} ({err})") from err


class NetCDFReader:
    """One variable of a NetCDF file, cut to a time range and a lat/lon box, as a one-sequence source.

    time_range: (start, end) dates, e.g. ("2015-01-01", "2015-12-31"); either may be None.
    lat_range, lon_range: (low, high) in degrees of the file's coordinates; either may be None.
    """

    def __init__(self, path: str | os.PathLike, variable: str, time_range: tuple[str | None, str | None] | None = None,
                 lat_range: tuple[float | None, float | None] | None = None,
                 lon_range: tuple[float | None, float | None] | None = None) -> None:
        self.path = existing_file(path, "NetCDF file")
        self.variable = variable
        dataset = _open(self.path)
        try:
            if variable not in dataset.data_vars:
                names = ", ".join(map(str, dataset.data_vars))
                raise UserError(f"{self.path}: no variable {variable!r}; it has: {names}")
            array = dataset[variable]
            self.axes, extra = _axes(array, variable)
            coords = [np.asarray(dataset[a].values) if a in dataset.coords else np.arange(array.sizes[a])
                      for a in self.axes]
            time_bounds = _as_times(time_range) if np.issubdtype(coords[0].dtype, np.datetime64) else time_range
            bounds = (time_bounds, lat_range, lon_range)
            self.index = {**extra, **{axis: _selection(values, bound, what) for axis, values, bound, what in zip(
                self.axes, coords, bounds, ("times", "latitudes", "longitudes"))}}
            times = coords[0][self.index[self.axes[0]]]
            self.times = times.astype("datetime64[ns]") if np.issubdtype(times.dtype, np.datetime64) else None
            selected = array.variable.isel(self.index)
            self.num_sequences, self.sequence_length = 1, selected.sizes[self.axes[0]]
            self.sample_shape = (1, selected.sizes[self.axes[1]], selected.sizes[self.axes[2]])
        finally:
            dataset.close()
        self._selected: xr.Variable | None = None
        self._pid: int | None = None
        self.mask = np.isfinite(self.read(0, 0, 1)[0, 0])

    def _variable(self) -> xr.Variable:
        """The selected variable, lazily indexed, opened once per process."""
        if self._selected is None or self._pid != os.getpid():
            self._selected = _open(self.path)[self.variable].variable.isel(self.index)
            self._pid = os.getpid()
        return self._selected

    def read(self, sequence: int, start: int, stop: int) -> np.ndarray:
        if sequence != 0:
            raise IndexError(f"a NetCDF series has one sequence, asked for {sequence}")
        window = self._variable().isel({self.axes[0]: slice(start, stop)}).transpose(*self.axes)
        try:
            values = np.asarray(window.values, dtype=np.float32)
        except (OSError, RuntimeError, ValueError) as err:
            raise cannot_read(self.path, err) from err
        return reject_infinite(self.path, values)[:, None]

    def timestamps(self, sequence: int) -> np.ndarray | None:
        return self.times

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_selected": None, "_pid": None}
