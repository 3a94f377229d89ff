"""The prepared radar file: windows of every event, built once and written atomically, and read back checked.

An ``.npz`` with ``data`` ``(N, length, 1, size, size)`` float32 mm/h (NaN missing), ``mask`` (True where observed),
``event`` ``(N,)`` the index of each window's event in ``events`` (names), ``position`` ``(N, 3)`` each window's
first frame, row and column in its event's regridded composite, and the settings it was built with (``spacing_km``,
``step_minutes``, ``context``, ``key``). ``key`` hashes the settings, so a file built with the same ones is reused
instead of rebuilt. A file may also hold a first guess after each window's context (``first_guess`` names its
nowcast, :mod:`sfp.data.radar.first_guess`); without that key it has none.
"""

from __future__ import annotations

import dataclasses
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sfp.data.cache import cache_key
from sfp.data.radar.events import EVENTS, Event, read_event
from sfp.data.radar.first_guess import add_first_guess
from sfp.data.radar.tiles import TileRule, cut_windows
from sfp.data.writing import write_file
from sfp.errors import UserError

KEYS = ("data", "mask", "event", "events", "position", "spacing_km", "step_minutes", "context", "key")
FORMAT = 2  # 2: windows keep their place in the composite (position)


def settings_key(rule: TileRule, spacing_km: float, step_minutes: int, first_guess: str = "") -> str:
    """A hash of everything that shapes the windows."""
    guess = {"first_guess": first_guess} if first_guess else {}
    return cache_key("radar", {**dataclasses.asdict(rule), "spacing_km": spacing_km, "step_minutes": step_minutes,
                               "format": FORMAT, **guess})


def build(root: str | Path, rule: TileRule, spacing_km: float = 2.0, step_minutes: int = 10,
          events: tuple[Event, ...] = EVENTS, log: Callable[[str], None] = lambda _: None,
          first_guess: str = "") -> dict[str, np.ndarray]:
    """Read every event under ``root`` and cut its kept windows; the arrays of the prepared file. ``first_guess``:
    a nowcast's name to insert after each window's context (:func:`~sfp.data.radar.first_guess.add_first_guess`)."""
    windows, owners, places = [], [], []
    for index, event in enumerate(events):
        cut, where = cut_windows(read_event(root, event, spacing_km, step_minutes), rule)
        log(f"{event.name}: {len(cut)} windows")
        windows.append(cut)
        owners.append(np.full(len(cut), index, dtype=np.int64))
        places.append(where)
    data = np.concatenate(windows)[:, :, None]
    if not len(data):
        raise UserError(f"{root}: no window passes the tile rule {rule}")
    arrays = {"data": data, "mask": np.isfinite(data), "event": np.concatenate(owners),
              "events": np.array([e.name for e in events]), "position": np.concatenate(places),
              "spacing_km": np.float64(spacing_km),
              "step_minutes": np.int64(step_minutes), "context": np.int64(rule.context),
              "key": np.array(settings_key(rule, spacing_km, step_minutes, first_guess))}
    return add_first_guess(arrays, root, events, first_guess, log) if first_guess else arrays


def save(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write the prepared arrays to ``path`` (.npz) atomically; a failed write is one UserError line, no file."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise UserError(f"{path}: the prepared radar file is an .npz")
    return write_file(path, lambda temp: np.savez_compressed(temp, **arrays))


def load(path: str | Path) -> dict[str, Any]:
    """Read a prepared file whole; a one-line UserError when it is missing, truncated or not a radar file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; build it with: sfp data prepare radar --out {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in KEYS if k not in archive.files]
            if missing:
                raise UserError(f"{path}: not a prepared radar file of this sfp (lacks {', '.join(missing)}); "
                                f"build it again: sfp data prepare radar --out {path}")
            arrays = {key: archive[key] for key in KEYS}
            arrays["first_guess"] = str(archive["first_guess"]) if "first_guess" in archive.files else ""
    except UserError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise UserError(f"{path}: cannot read ({type(err).__name__}; corrupt or truncated?)") from err
    data = arrays["data"]
    if data.ndim != 5 or data.shape[2] != 1 or len(arrays["event"]) != len(data):
        raise UserError(f"{path}: windows of shape {data.shape} and {len(arrays['event'])} event ids do not match")
    arrays["events"] = [str(name) for name in arrays["events"]]
    return arrays
