"""Forecasts of a whole radar composite, written as NetCDF with the importer's georeferencing (pysteps-friendly).

From one start of an event of the pysteps example data, regridded as the prepared windows were (``spacing_km``,
``step_minutes``): each nowcast (pysteps' references; a trained agent as overlapping tiles blended,
:func:`sfp.report.full_domain.tiled`) forecasts the whole domain. The file holds one variable per model and the
observations, on dims ``(lead, y, x)`` with the pixel centres' ``x``/``y`` in the projection's units, each lead's
``time``, and the PROJ string in the ``projection`` attribute, as pysteps' importers give it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import torch

from sfp.data.radar.first_guess import Nowcast
from sfp.errors import UserError


def forecast_dataset(frames: np.ndarray, times: list[datetime], y: np.ndarray, x: np.ndarray, projection: str,
                     start: int, context: int, target: int, nowcasts: dict[str, Nowcast]) -> object:
    """An ``xarray.Dataset`` of each nowcast of ``frames`` ``(T, H, W)`` mm/h from the ``context`` frames ending at
    frame ``start + context - 1`` over ``target`` leads, beside the observations (NaN past the event's end)."""
    import xarray as xr

    if not 0 <= start <= len(frames) - context:
        raise UserError(f"--start {start}: the event has {len(frames)} frames; a forecast needs {context} of "
                        f"context, so start lies in 0..{len(frames) - context}")
    window = torch.as_tensor(np.asarray(frames[start:start + context], np.float32))[None, :, None]
    first = start + context
    step = times[1] - times[0] if len(times) > 1 else timedelta(0)
    lead_times = [times[first - 1] + step * (lead + 1) for lead in range(target)]
    observed = np.full((target, *frames.shape[1:]), np.nan, np.float32)
    available = frames[first:first + target]
    observed[:len(available)] = available
    variables = {"observed": (("lead", "y", "x"), observed, {"units": "mm/h", "long_name": "observed rain rate"})}
    for name, nowcast in nowcasts.items():
        forecast = nowcast(window, target)[0, :, 0].numpy().astype(np.float32)
        variables[name] = (("lead", "y", "x"), forecast, {"units": "mm/h", "long_name": f"{name} forecast"})
    minutes = [int(round((time - times[first - 1]).total_seconds() / 60)) for time in lead_times]
    return xr.Dataset(variables, coords={
        "lead": ("lead", minutes, {"units": "minutes"}), "time": ("lead", np.array(lead_times, "datetime64[s]")),
        "y": ("y", y, {"units": "m", "long_name": "y of the pixel centre in the projection"}),
        "x": ("x", x, {"units": "m", "long_name": "x of the pixel centre in the projection"})},
        attrs={"projection": projection, "issued": str(times[first - 1]), "source": "sfp radar --forecast"})


def write_composite_forecast(root: str, data: str, event_name: str, start: int, checkpoints: dict[str, str],
                             out: str) -> Path:
    """The forecasts of ``event_name`` from ``start`` (pysteps' extrapolation and S-PROG, and each checkpoint's
    agent tiled as it was trained, on the grid of the prepared file ``data``) as ``<out>/<event>-<start>.nc``."""
    from sfp.data.radar.dataset import load
    from sfp.data.radar.events import event_grid, event_named, read_event
    from sfp.data.radar.first_guess import forecaster_window, layout
    from sfp.data.windows import time_features
    from sfp.models.nowcasts import extrapolation_nowcast, sprog_nowcast
    from sfp.report.full_domain import forecaster_nowcast
    from sfp.task import RADAR

    event = event_named(event_name)
    arrays = load(data)
    spacing, step, length = float(arrays["spacing_km"]), int(arrays["step_minutes"]), arrays["data"].shape[1]
    observed, context, target = layout(arrays)[0], *forecaster_window(arrays)
    frames = read_event(root, event, spacing, step)
    times, y, x, projection = event_grid(root, event, frames.shape[1:], spacing, step)
    features = torch.from_numpy(time_features(np.arange(length), length))  # a window's own
    nowcasts: dict[str, Nowcast] = {"extrapolation": extrapolation_nowcast, "sprog": sprog_nowcast}
    for name, path in checkpoints.items():
        nowcasts[name] = forecaster_nowcast(path, arrays, RADAR.bounds, features[:context], features[context:])
    dataset = forecast_dataset(frames, times, y, x, projection, start, observed, target, nowcasts)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{event_name.replace('/', '-')}-{start:03d}.nc"
    dataset.to_netcdf(path, engine="h5netcdf")
    return path
