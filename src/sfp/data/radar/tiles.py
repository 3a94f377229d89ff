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


def cut_windows(frames: np.ndarray, rule: TileRule) -> np.ndarray:
    """The kept windows ``(N, length, size, size)`` of a sequence ``(T, H, W)`` in mm/h."""
    steps, height, width = frames.shape
    size = rule.size
    kept = [frames[t:t + rule.length, y:y + size, x:x + size]
            for t in range(0, steps - rule.length + 1, rule.stride)
            for y in range(0, height - size + 1, size)
            for x in range(0, width - size + 1, size)]
    kept = [w for w in kept if rule.keeps(w)]
    return np.stack(kept).astype(np.float32) if kept else np.empty((0, rule.length, size, size), np.float32)
