"""SEVIR VIL events, read lazily one window at a time from the HDF5 files that ``CATALOG.csv`` points to.

Layout of the real data: ``CATALOG.csv`` has one row per (event, image type) with columns ``id``, ``file_name``
(relative to the data root), ``file_index`` (the event's row in that file), ``img_type``, ``time_utc``,
``pct_missing`` and optionally ``minute_offsets`` (colon-separated minutes of each frame from ``time_utc``). Each VIL
file holds a dataset ``vil`` of shape ``(N, 384, 384, 49)`` uint8, where 255 marks a missing pixel.

Kept are VIL events without missing data (``img_type == "vil"``, ``pct_missing == 0``), in time order. A frame is
float32 on the 0-255 VIL scale with missing pixels as NaN, optionally shrunk to ``size`` by the mean of each block
of pixels (missing pixels left out of the mean). The standard split is by time: train before 2019-01-01, val before
2019-06-01, test after.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from sfp.data.readers.base import HandleCache, cannot_read, existing_file, hdf5_dataset, read_hdf5
from sfp.errors import UserError

CATALOG_COLUMNS = ("id", "file_name", "file_index", "img_type", "time_utc", "pct_missing")
MISSING = 255
FRAME_MINUTES = 5
TRAIN_END = "2019-01-01"
VAL_END = "2019-06-01"


def block_mean(values: np.ndarray, valid: np.ndarray, factor: int) -> np.ndarray:
    """Mean of the valid pixels of each ``factor x factor`` block of ``(T, H, W)`` frames, float32; NaN where a
    block has none. Works on the raw uint8 values, so no full-resolution float copy is ever made."""
    t, h, w = values.shape
    shape = (t, h // factor, factor, w // factor, factor)
    if valid.all():  # the usual case (events with pct_missing == 0): no counting needed
        return (values.reshape(shape).sum(axis=(2, 4), dtype=np.float64) / factor**2).astype(np.float32)
    total = np.where(valid, values, 0).reshape(shape).sum(axis=(2, 4), dtype=np.float64)
    count = valid.reshape(shape).sum(axis=(2, 4))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / count).astype(np.float32)


def _read_catalog(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise cannot_read(path, err) from err
    absent = [c for c in CATALOG_COLUMNS if c not in table.columns]
    if absent:
        raise UserError(f"{path}: not a SEVIR catalog, columns missing: {', '.join(absent)}")
    table = table[(table["img_type"] == "vil") & (pd.to_numeric(table["pct_missing"], errors="coerce") == 0)].copy()
    if table.empty:
        raise UserError(f"{path}: no VIL event without missing data (img_type == 'vil', pct_missing == 0)")
    try:
        table["time_utc"] = pd.to_datetime(table["time_utc"], utc=True).dt.tz_localize(None)
    except (ValueError, TypeError) as err:
        raise UserError(f"{path}: unreadable time_utc ({err})") from err
    return table.sort_values(["time_utc", "id"], kind="stable").reset_index(drop=True)


class SEVIRReader:
    """The kept VIL events of a SEVIR catalog as a sequence source of ``(T, 1, H, W)`` frames.

    root: the data folder the catalog's ``file_name`` paths are relative to.
    catalog: the catalog file (default ``root/CATALOG.csv``).
    size: the frame side after block-mean downsampling (must divide 384, e.g. 128); None keeps the full grid.
    """

    def __init__(self, root: str | os.PathLike, catalog: str | os.PathLike | None = None,
                 size: int | None = None) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise UserError(f"{self.root}: no such SEVIR data folder")
        table = _read_catalog(existing_file(catalog or self.root / "CATALOG.csv", "SEVIR catalog"))
        self.event_ids = table["id"].astype(str).tolist()
        self.files = [self.root / name for name in table["file_name"]]
        self.file_indices = table["file_index"].astype(np.int64).to_numpy()
        self.times = table["time_utc"].to_numpy(dtype="datetime64[ns]")
        self._handles = HandleCache()
        height, width, self.sequence_length = self._check_files()
        self.offsets = self._minute_offsets(table)
        if size is not None and (size < 1 or height % size or width % size):
            raise UserError(f"size={size} must divide the SEVIR frame size {height}x{width}")
        self.factor = 1 if size is None else height // size
        self.num_sequences = len(self.files)
        self.sample_shape = (1, height // self.factor, width // self.factor)

    def _check_files(self) -> tuple[int, int, int]:
        """Every referenced file exists and holds a 4-D ``vil`` with the event's row; returns (H, W, T)."""
        shapes = set()
        for path in sorted(set(self.files)):
            existing_file(path, "SEVIR file")
            vil = hdf5_dataset(self._handles.get(path), "vil")
            if vil.ndim != 4:
                raise UserError(f"{path}: 'vil' has shape {vil.shape}, expected (N, H, W, T)")
            rows = self.file_indices[[f == path for f in self.files]]
            if rows.min() < 0 or rows.max() >= vil.shape[0]:
                raise UserError(f"{path}: the catalog asks for event row {rows.max()}, the file holds {vil.shape[0]}")
            shapes.add(vil.shape[1:])
        if len(shapes) > 1:
            raise UserError(f"{self.root}: SEVIR files disagree on the event shape: {sorted(shapes)}")
        return shapes.pop()

    def _minute_offsets(self, table: pd.DataFrame) -> np.ndarray:
        """Minutes of each frame from ``time_utc``, per event ``(N, T)``: from the catalog, else 5-minute steps."""
        default = np.arange(self.sequence_length) * FRAME_MINUTES
        if "minute_offsets" not in table.columns:
            return np.tile(default, (len(table), 1))
        rows = []
        for event, text in zip(self.event_ids, table["minute_offsets"]):
            if not isinstance(text, str):
                rows.append(default)
                continue
            try:
                offsets = np.array([int(part) for part in text.split(":")])
            except ValueError as err:
                raise UserError(f"event {event}: unreadable minute_offsets {text!r}") from err
            if len(offsets) != self.sequence_length:
                raise UserError(f"event {event}: {len(offsets)} minute_offsets for {self.sequence_length} frames")
            rows.append(offsets)
        return np.stack(rows)

    def read(self, sequence: int, start: int, stop: int) -> np.ndarray:
        path = self.files[sequence]
        vil = self._handles.get(path)["vil"]
        raw = read_hdf5(vil, (int(self.file_indices[sequence]), slice(None), slice(None), slice(start, stop)))
        raw = np.ascontiguousarray(np.moveaxis(raw, -1, 0))
        valid = raw != MISSING
        if self.factor > 1:
            return block_mean(raw, valid, self.factor)[:, None]
        frames = raw.astype(np.float32)
        frames[~valid] = np.nan
        return frames[:, None]

    def timestamps(self, sequence: int) -> np.ndarray:
        return self.times[sequence] + self.offsets[sequence].astype("timedelta64[m]")

    def split_indices(self, train_end: str = TRAIN_END, val_end: str = VAL_END) -> dict[str, list[int]]:
        """Event indices by time: train before ``train_end`` <= val < ``val_end`` <= test."""
        bounds = np.datetime64(train_end, "ns"), np.datetime64(val_end, "ns")
        if bounds[0] > bounds[1]:
            raise UserError(f"train_end {train_end} comes after val_end {val_end}")
        which = np.searchsorted(bounds, self.times, side="right")
        return {name: np.flatnonzero(which == k).tolist() for k, name in enumerate(("train", "val", "test"))}
