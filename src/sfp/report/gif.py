"""Animated GIFs of forecasts: rows of sequences, columns of panels (context | truth | forecast ...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw

LABEL_HEIGHT = 14
GIF_SAMPLES = 3
"""Sequences shown in a forecast GIF unless a run says otherwise."""


def _colorize(frames: np.ndarray, vmin: float, vmax: float, cmap: str, scale: int) -> np.ndarray:
    """(T, H, W) values -> (T, H*scale, W*scale, 3) uint8; NaN (missing) shows as grey."""
    unit = np.clip((frames - vmin) / max(vmax - vmin, 1e-12), 0.0, 1.0)
    rgb = (colormaps[cmap](np.nan_to_num(unit))[..., :3] * 255).astype(np.uint8)
    rgb[np.isnan(frames)] = 128
    return rgb.repeat(scale, axis=1).repeat(scale, axis=2)


def animate(path: str | Path, context: np.ndarray, panels: dict[str, np.ndarray], cmap: str = "viridis",
            vmin: float | None = None, vmax: float | None = None, fps: int = 4) -> Path:
    """Write a GIF: `context` (S, T_in, H, W) and each panel (S, T_out, H, W), one row per sequence S.

    During the first T_in frames every column replays the context; then the context column holds its last frame
    and the other columns play their lead times. Colours share one range (default: the context's and panels').
    """
    everything = np.concatenate([context.reshape(-1)] + [p.reshape(-1) for p in panels.values()])
    vmin = float(np.nanmin(everything)) if vmin is None else vmin
    vmax = float(np.nanmax(everything)) if vmax is None else vmax
    n_seq, t_in, height, width = context.shape
    t_out = next(iter(panels.values())).shape[1]
    scale = max(1, 96 // max(height, width))
    names = ["context", *panels]
    timelines = [np.concatenate([context, np.repeat(context[:, -1:], t_out, axis=1)], axis=1)]
    timelines += [np.concatenate([context, frames], axis=1) for frames in panels.values()]
    tiles = [[_colorize(line[s], vmin, vmax, cmap, scale) for line in timelines] for s in range(n_seq)]
    tile_h, tile_w = height * scale, width * scale
    images = []
    for t in range(t_in + t_out):
        canvas = np.full((LABEL_HEIGHT + n_seq * (tile_h + 2), len(names) * (tile_w + 2), 3), 255, np.uint8)
        for s in range(n_seq):
            for c in range(len(names)):
                y, x = LABEL_HEIGHT + s * (tile_h + 2), c * (tile_w + 2)
                canvas[y:y + tile_h, x:x + tile_w] = tiles[s][c][t]
        image = Image.fromarray(canvas)
        draw = ImageDraw.Draw(image)
        lead = f"t-{t_in - 1 - t}" if t < t_in else f"t+{t - t_in + 1}"
        for c, name in enumerate(names):
            draw.text((c * (tile_w + 2) + 2, 1), f"{name} {lead}" if c == 0 else name, fill=(0, 0, 0))
        images.append(image)
    path = Path(path)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path
