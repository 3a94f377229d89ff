"""Forecast pictures on the colour scale of the field, with a legend in its units and the lead on each panel.

Rain rate (radar): pysteps' precipitation colour scale in mm/h. VIL (storms): a discrete radar-style scale whose
bounds are the CSI thresholds, so a colour change is an event. Marine heatwaves (ocean): the SST anomaly from the
climatology on a diverging scale centred on 0 °C, the heatwave categories contoured over it
(:func:`heatwave_png`). Other fields: viridis over the truth's range. A PNG grid (a row per model, truth first; a
column per lead time) and a GIF that plays the lead times. Missing pixels are grey; panels are at least 128 px a
side.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sfp.task import TaskSpec

PANEL_INCHES, DPI = 1.6, 100  # 160 px panels
VIL_COLOURS = ("#ffffff", "#a6e3a1", "#2e9e3e", "#f5e642", "#f59a23", "#e0301e", "#b5179e", "#5a189a")


@dataclass(frozen=True)
class ColourScale:
    """A colour map, its normalization and the legend's label."""

    cmap: Any
    norm: Any
    label: str


def colour_scale(task: TaskSpec, values: np.ndarray | None = None) -> ColourScale:
    """The scale pictures of ``task`` use; ``values`` sets the range of a continuous scale."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize

    if task.name == "radar":
        with contextlib.redirect_stdout(io.StringIO()):
            from pysteps.visualization.precipfields import get_colormap
        cmap, norm, _, _ = get_colormap("intensity", units="mm/h", colorscale="pysteps")
        return ColourScale(cmap.with_extremes(bad="0.6"), norm, "rain rate (mm/h)")
    if task.heatwaves:
        largest = 1.0 if values is None else max(float(np.nanmax(np.abs(values))), 1e-6)
        return ColourScale(colormaps["RdBu_r"].with_extremes(bad="0.6"), Normalize(-largest, largest),
                           "SST anomaly (°C)")
    if task.name == "storms":
        bounds = [0.0, *task.thresholds, task.value_scale]
        cmap = ListedColormap(VIL_COLOURS[:len(bounds) - 1]).with_extremes(bad="0.6")
        return ColourScale(cmap, BoundaryNorm(bounds, cmap.N), "VIL (0-255)")
    low, high = (0.0, 1.0) if values is None else (float(np.nanmin(values)), float(np.nanmax(values)))
    return ColourScale(colormaps["viridis"].with_extremes(bad="0.6"), Normalize(low, high), "value")


Overlay = Callable[[Any, str, int], None]  # (axes, row name, lead index) -> draws over that panel


def _figure(rows: dict[str, np.ndarray], leads: list[int], scale: ColourScale, lead_label: Callable[[int], str],
            overlay: Overlay | None = None):
    """A figure of ``rows`` (name -> (len(leads), H, W)) at the given lead indices, with a colour bar; every panel
    is ``PANEL_INCHES`` a side (margins for the labels and the bar are added around them, not taken from them);
    ``overlay`` draws over each panel."""
    import matplotlib.pyplot as plt

    left, right, top, bottom, gap = 0.35, 1.1, 0.3, 0.1, 0.08  # inches
    width = left + len(leads) * PANEL_INCHES + (len(leads) - 1) * gap + right
    height = top + len(rows) * PANEL_INCHES + (len(rows) - 1) * gap + bottom
    fig, axes = plt.subplots(len(rows), len(leads), squeeze=False, figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                        wspace=gap / PANEL_INCHES, hspace=gap / PANEL_INCHES)
    for r, (name, frames) in enumerate(rows.items()):
        for c, lead in enumerate(leads):
            ax = axes[r, c]
            image = ax.imshow(np.ma.masked_invalid(frames[c]), cmap=scale.cmap, norm=scale.norm,
                              interpolation="nearest", aspect="auto")
            ax.set_xticks([]), ax.set_yticks([])
            if overlay is not None:
                overlay(ax, name, lead)
            if r == 0:
                ax.set_title(lead_label(lead), fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    bar = fig.add_axes((1 - (right - 0.15) / width, bottom / height, 0.15 / width, 1 - (top + bottom) / height))
    fig.colorbar(image, cax=bar).set_label(scale.label)
    return fig


def minutes(step_minutes: int) -> Callable[[int], str]:
    """Lead labels ``+10 min``, ``+20 min``, ... for frames ``step_minutes`` apart."""
    return lambda lead: f"+{step_minutes * (lead + 1)} min"


def steps(lead: int) -> str:
    """Lead labels ``+1 step``, ``+2 steps``, ... where the data has no clock."""
    return f"+{lead + 1} step{'s' if lead else ''}"


def forecast_png(path: str | Path, truth: np.ndarray, forecasts: dict[str, np.ndarray], scale: ColourScale,
                 lead_label: Callable[[int], str] = steps) -> Path:
    """PNG of truth and each forecast ``(T_out, H, W)``, a column per lead time."""
    import matplotlib.pyplot as plt

    fig = _figure({"truth": truth, **forecasts}, list(range(len(truth))), scale, lead_label)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return Path(path)


def days(lead: int) -> str:
    """Lead labels ``+1 day``, ``+2 days``, ..."""
    return f"+{lead + 1} day{'s' if lead else ''}"


CATEGORY_LINES = {1: ("0.2", 0.6), 2: ("k", 1.0), 3: ("k", 1.8), 4: ("k", 2.6)}  # colour, width per category


def heatwave_png(path: str | Path, anomalies: dict[str, np.ndarray], categories: dict[str, np.ndarray],
                 leads: list[int], scale: ColourScale) -> Path:
    """PNG of SST anomalies ``(T_out, H, W)`` per row (truth first) at ``leads``, with the outline of the days at
    each heatwave category (I thin grey, II-IV ever thicker black) contoured over them."""
    import matplotlib.pyplot as plt

    shown = {name: values[leads] for name, values in categories.items()}

    def outline(ax: Any, name: str, column: int) -> None:
        for level, (colour, width) in CATEGORY_LINES.items():
            inside = shown[name][column] >= level
            if inside.any() and not inside.all():
                ax.contour(inside.astype(float), levels=[0.5], colors=colour, linewidths=width)

    rows = {name: values[leads] for name, values in anomalies.items()}
    fig = _figure(rows, list(range(len(leads))), scale, lambda column: days(leads[column]), outline)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return Path(path)


def forecast_gif(path: str | Path, truth: np.ndarray, forecasts: dict[str, np.ndarray], scale: ColourScale,
                 lead_label: Callable[[int], str] = steps, ms_per_frame: int = 600) -> Path:
    """GIF whose frames are the lead times: truth and every forecast side by side, lead stamped on each."""
    import matplotlib.pyplot as plt
    from PIL import Image

    frames = []
    rows = {"truth": truth, **forecasts}
    for lead in range(len(truth)):
        fig = _figure({name: values[lead:lead + 1] for name, values in rows.items()}, [lead], scale, lead_label)
        buffer = io.BytesIO()
        fig.savefig(buffer, dpi=DPI, format="png")
        plt.close(fig)
        frames.append(Image.open(buffer).convert("RGB"))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0)
    return Path(path)


def rainiest_window(batches: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The test window (a batch of one) whose truth has the largest mean: the one worth looking at."""
    means = [batch[3].nan_to_num(0).flatten(1).mean(1) for batch in batches]
    which = max(range(len(batches)), key=lambda b: float(means[b].max()))
    index = int(means[which].argmax())
    return tuple(part[index:index + 1] for part in batches[which])
