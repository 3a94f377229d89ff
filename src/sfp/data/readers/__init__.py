"""Lazy readers of real data, each a sequence source for :class:`sfp.data.windows.WindowDataset`.

- :class:`SEVIRReader`: SEVIR VIL events from ``CATALOG.csv`` and its HDF5 files;
- :class:`FNOReader`: Navier–Stokes trajectories ``u (N, H, W, T)`` in ``.mat`` (v5 or v7.3) or HDF5 files;
- :class:`NetCDFReader`: a gridded variable of a NetCDF file, cut to a time range and a lat/lon box.

All open their files read-only, read only what a window needs, and raise :class:`sfp.errors.UserError` for a
missing, corrupt or truncated file or an unknown variable.
"""

from sfp.data.readers.fno import FNOReader
from sfp.data.readers.netcdf import NetCDFReader
from sfp.data.readers.sevir import SEVIRReader

__all__ = ["FNOReader", "NetCDFReader", "SEVIRReader"]
