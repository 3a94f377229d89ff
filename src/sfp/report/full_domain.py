"""pysteps' nowcasts run on the whole composite and cut to the scored tiles: the reference a forecaster would run.

A nowcast made on a 64x64 tile alone sees no rain beyond it: whatever flows in from outside is lost, and how much
depends on the border rule each method happens to use. Run on the event's whole regridded composite (missing pixels
as no rain, as on tiles) and then cut to each test window's tile, every reference sees the inflow a forecaster's
would, and is scored on exactly the pixels the agent is (issue 36). One forecast per distinct start time of an
event serves every tile cut from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sfp.data.radar.events import event_named, read_event
from sfp.data.radar.first_guess import Nowcast, domain_crops, guessed, layout
from sfp.errors import UserError


def _starts(length: int, size: int, stride: int) -> list[int]:
    """Tile starts along one axis: every ``stride``, the last flush with the edge."""
    if length < size:
        raise UserError(f"a domain of {length} pixels is smaller than the {size}-pixel tiles")
    return sorted({*range(0, length - size + 1, stride), length - size})


def tiled(forecast_tiles: Callable[[Tensor], Tensor], size: int, overlap: int) -> Nowcast:
    """A forecaster of ``size x size`` tiles (``(N, T, 1, size, size)`` contexts -> ``(N, out, 1, size, size)``) as
    a nowcast of a whole domain: tiles overlapping by ``overlap`` pixels, each pixel the mean of every tile covering
    it weighted by a tent that falls to the tiles' edges (a tile's border, where it saw least, counts least)."""
    ramp = torch.minimum(torch.arange(1, size + 1), torch.arange(size, 0, -1)).double()
    weight = ramp[:, None] * ramp[None, :]

    def nowcast(context: Tensor, out: int) -> Tensor:
        height, width = context.shape[-2:]
        places = [(y, x) for y in _starts(height, size, size - overlap) for x in _starts(width, size, size - overlap)]
        tiles = torch.stack([context[0, :, :, y:y + size, x:x + size] for y, x in places])
        with torch.no_grad():
            forecasts = forecast_tiles(tiles).double()
        total = forecasts.new_zeros((forecasts.shape[1], forecasts.shape[2], height, width))
        weights = forecasts.new_zeros((height, width))
        for (y, x), forecast in zip(places, forecasts):
            total[..., y:y + size, x:x + size] += weight * forecast
            weights[y:y + size, x:x + size] += weight
        return (total / weights)[None, :out].float()

    return nowcast


def forecaster_tiles(path: str, bounds: Any, context_x: Tensor, target_x: Tensor,
                     batch: int = 16) -> Callable[[Tensor], Tensor]:
    """The trained forecaster of checkpoint ``path`` over tiles (its forecasts inside ``bounds``), ``batch`` tiles a
    call, each with the test windows' time features ``context_x``, ``target_x`` (``(T, d_x)``: a radar window's
    own steps, the same for every window)."""
    from sfp.forecasting.checkpoints import load_forecaster

    agent = load_forecaster(path)
    agent.bounds = bounds

    def forecast(tiles: Tensor) -> Tensor:
        return torch.cat([agent.forecast(context_x.expand(len(chunk), *context_x.shape), chunk,
                                         target_x.expand(len(chunk), *target_x.shape))
                          for chunk in tiles.split(batch)])

    return forecast


def forecaster_nowcast(path: str, arrays: dict[str, Any], bounds: Any, context_x: Tensor,
                       target_x: Tensor) -> Nowcast:
    """The forecaster of checkpoint ``path``, trained on windows of the prepared ``arrays``, as a nowcast of whole
    domains: its tiles overlapping by half and blended; a hybrid's first guess made on the whole domain first, as
    its training windows hold it (:func:`sfp.data.radar.first_guess.guessed`)."""
    size, (_, guess) = arrays["data"].shape[-1], layout(arrays)
    nowcast = tiled(forecaster_tiles(path, bounds, context_x, target_x), size, size // 2)
    return guessed(str(arrays["first_guess"]), guess, nowcast) if guess else nowcast


def _key(context: Tensor) -> bytes:
    return context.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()


class TileForecast:
    """Precomputed forecast tiles as a forecaster of batches: each window is found by its context tile (what the
    test loader gives), so the tiles serve batches in any order."""

    def __init__(self, contexts: Iterable[Tensor], tiles: np.ndarray) -> None:
        self.by_context: dict[bytes, Tensor] = {}
        for context, tile in zip(contexts, tiles, strict=True):
            key = _key(context)
            if key in self.by_context and not torch.equal(self.by_context[key], torch.from_numpy(tile)):
                raise UserError("two test windows share a context tile but not a forecast; cannot tell them apart")
            self.by_context[key] = torch.from_numpy(tile)

    def __call__(self, batch: tuple[Tensor, ...]) -> Tensor:
        return torch.stack([self.by_context[_key(context)] for context in batch[1]])


def full_domain_references(root: str | Path, datamodule: Any, nowcasts: dict[str, Nowcast]) -> dict[str, TileForecast]:
    """Each of ``nowcasts`` run on the whole composites under ``root`` (the pysteps example data the prepared file
    was built from) from the observed context frames and cut to the test windows of ``datamodule`` (a set-up
    :class:`RadarDataModule`), as forecasters named ``<name>_full``."""
    arrays, test = datamodule.arrays, datamodule.datasets["test"]
    indices = np.asarray(test.index)[:, 0]
    contexts = [test[k][1] for k in range(len(test))]
    owners, places = arrays["event"][indices], arrays["position"][indices]
    size, (observed, _) = arrays["data"].shape[-1], layout(arrays)
    frames = {}
    for owner in np.unique(owners):
        event = event_named(str(arrays["events"][owner]))
        frames[owner] = read_event(root, event, float(arrays["spacing_km"]), int(arrays["step_minutes"]))
    found = {}
    for name, nowcast in nowcasts.items():
        tiles = np.empty((len(indices), datamodule.target, 1, size, size), np.float32)
        for owner, event_frames in frames.items():
            members = np.flatnonzero(owners == owner)
            tiles[members] = domain_crops(event_frames, places[members].tolist(), observed, datamodule.target,
                                          size, nowcast)
        found[f"{name}_full"] = TileForecast(contexts, tiles)
    return found
