"""A first guess inside each radar window: a pysteps nowcast of the whole composite, cut to the window's tile.

A hybrid agent (issue 36) starts from the best reference a forecaster already runs and learns its correction. For
that it reads, after the window's observed context, the reference's forecast of the same lead times, computed on
the event's whole regridded composite (so it saw the inflow from beyond the tile) and cut to the tile. A prepared
file with a first guess holds windows of ``observed + lead + lead`` frames: the observed context, the guess, the
truth; its ``first_guess`` names the nowcast (``""`` in a file without one) and ``context`` counts the observed
frames. The data module reads ``observed + lead`` frames as the context, so a forecaster sees the guess as the
context's last ``lead`` frames (:class:`sfp.models.first_guess.FirstGuessResidual` adds its correction to them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sfp.data.radar.events import Event, read_event

Nowcast = Callable[[Tensor, int], Tensor]  # context (B, T, C, H, W) mm/h, frames out -> (B, out, C, H, W)


def domain_crops(frames: np.ndarray, places: Sequence[Sequence[int]], context: int, target: int, size: int,
                 nowcast: Nowcast) -> np.ndarray:
    """For windows at ``places`` (first frame, row, column) of one event's frames ``(T, H, W)``: the nowcast of the
    whole domain from the window's context, cut to its tile: ``(N, target, 1, size, size)`` float32. One forecast
    per distinct start serves every tile cut from it."""
    tiles = np.empty((len(places), target, 1, size, size), np.float32)
    by_start: dict[int, list[int]] = defaultdict(list)
    for i, (start, _, _) in enumerate(places):
        by_start[int(start)].append(i)
    for start, members in by_start.items():
        window = torch.as_tensor(np.asarray(frames[start:start + context], np.float32))[None, :, None]
        forecast = nowcast(window, target)[0].numpy()  # (target, 1, H, W)
        for i in members:
            _, row, column = places[i]
            tiles[i] = forecast[:, :, row:row + size, column:column + size]
    return tiles


def layout(arrays: dict[str, Any]) -> tuple[int, int]:
    """``(observed, guess)``: a prepared file's observed context frames and first-guess frames (0 without one)."""
    observed, length = int(arrays["context"]), arrays["data"].shape[1]
    return observed, ((length - observed) // 2 if str(arrays["first_guess"]) else 0)


def forecaster_window(arrays: dict[str, Any]) -> tuple[int, int]:
    """``(context, target)``: the frames a forecaster of a prepared file reads (the observed ones and any guess) and
    the frames it forecasts."""
    observed, guess = layout(arrays)
    return observed + guess, arrays["data"].shape[1] - observed - guess


def add_first_guess(arrays: dict[str, Any], root: str | Path, events: Sequence[Event], name: str,
                    log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The prepared ``arrays`` (without a first guess) of ``events`` (the file's, in order, read from ``root``) with
    nowcast ``name`` (``sfp.models.nowcasts.NOWCASTS``) of every window's whole composite inserted after its
    observed context: windows ``observed + 2 lead`` frames."""
    from sfp.models.nowcasts import NOWCASTS

    nowcast = NOWCASTS.get(name)
    data, observed = arrays["data"], int(arrays["context"])
    lead, size = data.shape[1] - observed, data.shape[-1]
    guess = np.empty((len(data), lead, 1, size, size), np.float32)
    for owner, event in enumerate(events):
        members = np.flatnonzero(arrays["event"] == owner)
        if not len(members):
            continue
        frames = read_event(root, event, float(arrays["spacing_km"]), int(arrays["step_minutes"]))
        starts = len(set(arrays["position"][members, 0].tolist()))
        log(f"{event.name}: {name} on the whole composite from {starts} starts")
        guess[members] = domain_crops(frames, arrays["position"][members].tolist(), observed, lead, size, nowcast)
    return {**arrays, "data": np.concatenate([data[:, :observed], guess, data[:, observed:]], axis=1),
            "mask": np.concatenate([arrays["mask"][:, :observed], np.isfinite(guess), arrays["mask"][:, observed:]],
                                   axis=1),
            "first_guess": np.array(name)}


def guessed(name: str, lead: int, forecaster: Nowcast) -> Nowcast:
    """A nowcast of whole domains by a hybrid forecaster: nowcast ``name``'s ``lead`` frames appended to the
    context, as the hybrid's training windows hold them."""
    from sfp.models.nowcasts import NOWCASTS

    first = NOWCASTS.get(name)

    def nowcast(context: Tensor, out: int) -> Tensor:
        return forecaster(torch.cat([context, first(context, lead).to(context.dtype)], dim=1), out)

    return nowcast
