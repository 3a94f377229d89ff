"""The precipitation events of the pysteps example data, each read as one regridded sequence in mm/h.

Events are brought to ``spacing_km`` (block means, :func:`~sfp.data.radar.grid.block_mean`) and ``step_minutes``
(frames on the step, :func:`~sfp.data.radar.grid.on_step`). The BoM ``prcp-cscn`` event (6-min frames) is left out:
at a 10-min step only every 30 min would remain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from sfp.data.radar.grid import block_factor, block_mean, on_step
from sfp.data.radar.readers import NETWORKS, event_files, file_time, read_frame
from sfp.errors import UserError


@dataclass(frozen=True)
class Event:
    """One event: its name (``network/date``), network and folder under the pysteps-data root."""

    name: str
    network: str
    folder: str


EVENTS: tuple[Event, ...] = (
    Event("fmi/20160928", "fmi", "fmi/pgm/20160928"),
    Event("fmi/20170509", "fmi", "fmi/pgm/20170509"),
    Event("mch/20150515", "mch", "mch/20150515"),
    Event("mch/20160711", "mch", "mch/20160711"),
    Event("mch/20170131", "mch", "mch/20170131"),
    Event("knmi/20100826", "knmi", "KNMI/2010/08"),
    Event("bom/20201031", "bom", "bom/prcp-c10"),
)


def event_named(name: str) -> Event:
    """The event of the pysteps example data called ``name`` (e.g. ``fmi/20170509``); one line for another name."""
    found = {event.name: event for event in EVENTS}
    if name not in found:
        raise UserError(f"unknown radar event {name!r}: not an event of the pysteps example data "
                        f"({', '.join(found)})")
    return found[name]


def _files_on_step(root: str | Path, event: Event, step_minutes: int) -> list[Path]:
    network = NETWORKS[event.network]
    folder = Path(root) / event.folder
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder (event {event.name})")
    files = event_files(network, folder)
    keep = on_step([file_time(network, f) for f in files], step_minutes)
    if not keep:
        raise UserError(f"{folder}: no frame on the {step_minutes}-min step")
    return [files[index] for index in keep]


def read_event(root: str | Path, event: Event, spacing_km: float = 2.0, step_minutes: int = 10) -> np.ndarray:
    """The event's frames on the step, block-averaged to ``spacing_km``: ``(T, H, W)`` float32 mm/h, NaN missing."""
    network = NETWORKS[event.network]
    factor = block_factor(network.pixel_m, spacing_km)
    frames = [block_mean(read_frame(network, path).rain, factor) for path in _files_on_step(root, event, step_minutes)]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise UserError(f"{Path(root) / event.folder}: frames of different sizes {sorted(shapes)}")
    return np.stack(frames)


def event_grid(root: str | Path, event: Event, shape: tuple[int, int], spacing_km: float = 2.0,
               step_minutes: int = 10) -> tuple[list[datetime], np.ndarray, np.ndarray, str]:
    """Where :func:`read_event`'s frames lie: their times, the pixel centres' ``y`` and ``x`` for frames of
    ``shape`` ``(H, W)``, and the PROJ string of the importer's projection (read from its first file)."""
    network = NETWORKS[event.network]
    files = _files_on_step(root, event, step_minutes)
    grid = read_frame(network, files[0]).grid
    if grid is None:
        raise UserError(f"{files[0]}: its importer gives no georeferencing")
    y, x = grid.centres(*shape, factor=block_factor(network.pixel_m, spacing_km))
    return [file_time(network, path) for path in files], y, x, grid.projection
