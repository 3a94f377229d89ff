"""Pictures of radar forecasts on pysteps' precipitation colour scale, with a legend in mm/h.

A PNG grid (a row per model, truth first; a column per lead time) and a GIF that plays the lead times, each frame
stamped with its lead. Missing pixels are grey; panels are at least 128 px a side.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

PANEL_INCHES, DPI = 1.6, 100  # 160 px panels


def _colour_scale():
    import matplotlib

    matplotlib.use("Agg")
    with contextlib.redirect_stdout(io.StringIO()):
        from pysteps.visualization.precipfields import get_colormap
    cmap, norm, _, _ = get_colormap("intensity", units="mm/h", colorscale="pysteps")
    return cmap.with_extremes(bad="0.6"), norm


def _figure(rows: dict[str, np.ndarray], leads: list[int], step_minutes: int):
    """A figure of ``rows`` (name -> (len(leads), H, W) mm/h) at the given lead indices, with a colour bar."""
    import matplotlib.pyplot as plt

    cmap, norm = _colour_scale()
    fig, axes = plt.subplots(len(rows), len(leads), squeeze=False,
                             figsize=(PANEL_INCHES * len(leads) + 1.2, PANEL_INCHES * len(rows)))
    for r, (name, frames) in enumerate(rows.items()):
        for c, lead in enumerate(leads):
            ax = axes[r, c]
            image = ax.imshow(np.ma.masked_invalid(frames[c]), cmap=cmap, norm=norm, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"+{step_minutes * (lead + 1)} min", fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    bar = fig.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
    bar.set_label("rain rate (mm/h)")
    return fig


def forecast_png(path: str | Path, truth: np.ndarray, forecasts: dict[str, np.ndarray],
                 step_minutes: int = 10) -> Path:
    """PNG of truth and each forecast ``(T_out, H, W)`` mm/h, a column per lead time."""
    import matplotlib.pyplot as plt

    leads = list(range(len(truth)))
    fig = _figure({"truth": truth, **forecasts}, leads, step_minutes)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return Path(path)


def forecast_gif(path: str | Path, truth: np.ndarray, forecasts: dict[str, np.ndarray],
                 step_minutes: int = 10, ms_per_frame: int = 600) -> Path:
    """GIF whose frames are the lead times: truth and every forecast side by side, lead stamped on each."""
    import matplotlib.pyplot as plt
    from PIL import Image

    frames = []
    names = ["truth", *forecasts]
    for lead in range(len(truth)):
        fields = {name: (truth if name == "truth" else forecasts[name])[lead:lead + 1] for name in names}
        fig = _figure({name: fields[name] for name in names}, [lead], step_minutes)
        buffer = io.BytesIO()
        fig.savefig(buffer, dpi=DPI, format="png")
        plt.close(fig)
        frames.append(Image.open(buffer).convert("RGB"))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0)
    return Path(path)
