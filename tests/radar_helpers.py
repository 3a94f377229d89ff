"""Where the real radar example data live for tests, and tiny files in each network's format."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

DEFAULT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "radar" / "pysteps-data"


def radar_root() -> Path:
    """``$SFP_RADAR_DATA`` or ``../shared/radar/pysteps-data`` from the repository root; skip when absent."""
    root = Path(os.environ.get("SFP_RADAR_DATA", DEFAULT_ROOT))
    if not root.is_dir():
        pytest.skip(f"real radar data not found at {root} (set SFP_RADAR_DATA to a copy of pysteps-data)")
    return root


def write_fmi_pgm(path: Path, pixels: np.ndarray) -> Path:
    """A gzipped 8-bit PGM with the header fields pysteps' ``import_fmi_pgm`` reads (255 = missing)."""
    height, width = pixels.shape
    header = "\n".join([
        "P5", "# type stereographic", "# centrallongitude 25", "# centrallatitude 90", "# truelatitude 60",
        "# bottomleft 18.600000 57.930000", "# topright 34.903000 69.005000",
        "# metersperpixel_x 1000.0", "# metersperpixel_y 1000.0", f"{width} {height}", "255", ""])
    with gzip.open(path, "wb") as handle:
        handle.write(header.encode() + pixels.astype(np.uint8).tobytes())
    return path


def write_bom_netcdf(path: Path, mm: np.ndarray, accumulation_s: int = 600) -> Path:
    """A Rainfields3-like NetCDF: ``precipitation`` in mm over ``accumulation_s`` (NaN written as fill = missing)."""
    import netCDF4

    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("y", mm.shape[0])
        ds.createDimension("x", mm.shape[1])
        for name, size in (("x", mm.shape[1]), ("y", mm.shape[0])):
            var = ds.createVariable(name, "f4", (name,))
            var.units = "km"
            var[:] = np.arange(size) * 0.5
        proj = ds.createVariable("proj", "i4", ())
        proj.grid_mapping_name = "albers_conical_equal_area"
        proj.longitude_of_central_meridian = 151.0
        proj.latitude_of_projection_origin = -34.0
        proj.standard_parallel = np.array([-30.0, -40.0])
        for name, seconds in (("start_time", 0), ("valid_time", accumulation_s)):
            var = ds.createVariable(name, "i8", ())
            var.units = "seconds since 2020-10-31 00:00:00"
            var[...] = seconds
        rain = ds.createVariable("precipitation", "f4", ("y", "x"), fill_value=-1.0)
        rain.units = "mm"
        rain[:] = np.ma.masked_invalid(mm)
    return path


def write_mch_gif(path: Path, indices: np.ndarray) -> Path:
    """An 8-bit GIF of AQC palette indices, as pysteps' ``import_mch_gif`` decodes them (255 = missing)."""
    from PIL import Image

    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette([v for i in range(256) for v in (i, i, i)])
    image.save(path, optimize=False)
    return path


def write_knmi_hdf5(path: Path, hundredths_mm: np.ndarray) -> Path:
    """A KNMI-like HDF5 5-min accumulation in 0.01 mm (65535 = missing) with the attributes pysteps reads."""
    import h5py

    with h5py.File(path, "w") as handle:
        handle.create_dataset("image1/image_data", data=hundredths_mm.astype(np.uint16))
        geo = handle.create_group("geographic")
        geo.create_group("map_projection").attrs["projection_proj4_params"] = np.bytes_(
            b"+proj=stere +lat_0=90 +lon_0=0.0 +lat_ts=60.0 +a=6378137 +b=6356752 +x_0=0 +y_0=0")
        rows, cols = hundredths_mm.shape
        for key, value in (("geo_column_offset", 0.0), ("geo_row_offset", 3650.0), ("geo_pixel_size_x", 1.0),
                           ("geo_pixel_size_y", -1.0), ("geo_number_columns", cols), ("geo_number_rows", rows)):
            geo.attrs[key] = np.array([value], dtype=np.float32)
        geo.attrs["geo_dim_pixel"] = np.bytes_(b"KM,KM")
    return path
