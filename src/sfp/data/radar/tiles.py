"""Cut regridded event sequences into fixed-size windows that keep the rain.

A window is ``length`` consecutive frames of one ``size x size`` tile. Tiles do not overlap in space; windows start
every ``stride`` frames. A window is kept when its context frames hold at least ``min_wet`` wet pixels
(>= ``wet_threshold`` mm/h, as a fraction of all context pixels) and the whole window at most ``max_missing``
missing pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TileRule:
    """Window shape and the rule that keeps rainy, mostly observed windows."""

    size: int = 64
    length: int = 12
    context: int = 6
    stride: int = 3
    wet_threshold: float = 0.5
    min_wet: float = 0.05
    max_missing: float = 0.1

    def keeps(self, window: np.ndarray) -> bool:
        """Whether a window ``(length, H, W)`` in mm/h passes the rule."""
        context = window[: self.context]
        wet = np.nan_to_num(context, nan=0.0) >= self.wet_threshold
        return bool(wet.mean() >= self.min_wet and np.isnan(window).mean() <= self.max_missing)


def cut_windows(frames: np.ndarray, rule: TileRule) -> tuple[np.ndarray, np.ndarray]:
    """The kept windows ``(N, length, size, size)`` of a sequence ``(T, H, W)`` in mm/h, and where each lies:
    ``(N, 3)`` its first frame, row and column (what a forecast of the whole domain is cut to)."""
    steps, height, width = frames.shape
    size = rule.size
    places = [(t, y, x) for t in range(0, steps - rule.length + 1, rule.stride)
              for y in range(0, height - size + 1, size) for x in range(0, width - size + 1, size)]
    kept = [(place, frames[place[0]:place[0] + rule.length, place[1]:place[1] + size, place[2]:place[2] + size])
            for place in places]
    kept = [(place, window) for place, window in kept if rule.keeps(window)]
    if not kept:
        return np.empty((0, rule.length, size, size), np.float32), np.empty((0, 3), np.int64)
    return (np.stack([window for _, window in kept]).astype(np.float32),
            np.array([place for place, _ in kept], dtype=np.int64))
