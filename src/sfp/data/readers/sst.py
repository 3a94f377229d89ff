"""Marine heatwaves of a daily SST NetCDF file in the OISST layout: ``sst(time, lat, lon)`` in °C, land as NaN.

The climatology comes from a base period (the training years) only, read through :class:`NetCDFReader`; the
heatwaves are then found on every day of the file (:mod:`sfp.metrics.heatwaves`). Detection needs consecutive
daily dates; anything else is a UserError naming the file.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from sfp.data.readers.netcdf import NetCDFReader
from sfp.errors import UserError
from sfp.metrics.heatwaves import Climatology, calendar_days, climatology, detect, event_onsets

Bounds = tuple[float | None, float | None] | None


def read_daily(reader: NetCDFReader) -> tuple[np.ndarray, np.ndarray]:
    """All frames of ``reader`` as ``(T, H, W)`` float32 and their dates, which must be consecutive days."""
    if reader.times is None:
        raise UserError(f"{reader.path}: marine heatwaves need a time coordinate of dates")
    dates = reader.times.astype("datetime64[D]")
    if np.any(np.diff(dates) != np.timedelta64(1, "D")):
        raise UserError(f"{reader.path}: marine heatwaves need consecutive daily values; the dates jump")
    return reader.read(0, 0, reader.sequence_length)[:, 0], dates


def sst_climatology(path: str | os.PathLike, base_period: tuple[str, str], variable: str = "sst",
                    lat_range: Bounds = None, lon_range: Bounds = None) -> Climatology:
    """The heatwave climatology of the file's days in ``base_period`` (inclusive dates), ``(366, H, W)``."""
    sst, dates = read_daily(NetCDFReader(path, variable, base_period, lat_range, lon_range))
    year, day = calendar_days(dates)
    return climatology(sst, year, day)


def heatwave_statistics(path: str | os.PathLike, base_period: tuple[str, str], variable: str = "sst",
                        lat_range: Bounds = None, lon_range: Bounds = None) -> dict[str, float | int]:
    """Heatwave statistics over every day of the file against the base period's climatology: ocean pixels,
    days, events, the fraction of ocean pixel-days in a heatwave and in each category, events per pixel and
    year, mean duration (days) and the largest intensity (°C above the climatology)."""
    clim = sst_climatology(path, base_period, variable, lat_range, lon_range)
    sst, dates = read_daily(NetCDFReader(path, variable, None, lat_range, lon_range))
    seas, thresh = clim.on(calendar_days(dates)[1])
    found = detect(*(torch.from_numpy(np.moveaxis(x, 0, -1).copy()) for x in (sst, seas, thresh)))
    ocean = np.isfinite(sst).any(axis=0)
    pixel_days = int(ocean.sum()) * len(dates)
    starts = int((event_onsets(found.event) == torch.arange(len(dates))).sum())
    event_days = int(found.event.sum())
    categories = {f"category_{k}_fraction": float((found.category == k).sum()) / max(pixel_days, 1)
                  for k in range(1, 5)}
    intensity = found.intensity[found.event]
    return {
        "ocean_pixels": int(ocean.sum()), "days": len(dates), "events": starts,
        "heatwave_fraction": event_days / max(pixel_days, 1), **categories,
        "events_per_pixel_year": starts / max(pixel_days / 365.25, 1e-9),
        "mean_duration": event_days / starts if starts else float("nan"),
        "max_intensity": float(intensity.max()) if intensity.numel() else float("nan"),
    }
