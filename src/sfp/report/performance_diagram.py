"""The performance diagram (Roebber 2009): POD against success ratio, per threshold and lead time.

Each forecast is a point (SR = 1 − FAR, POD); the background shows CSI contours (CSI = 1/(1/SR + 1/POD − 1)) and
dashed lines of constant frequency bias (bias = POD/SR), so one glance reads all four scores. A perfect forecast
sits at the top right corner. The points come from :func:`sfp.metrics.events.performance_points` of pooled
per-lead contingency counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sfp.metrics.events import csi_from_rates
from sfp.report.figures import pyplot, save_figure

CSI_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
BIAS_LEVELS = (0.25, 0.5, 0.8, 1.0, 1.3, 1.5, 2.0, 3.0, 5.0)


def _draw_background(axis: Any) -> None:
    """CSI contours (filled, grey) and labelled dashed bias lines on the unit square."""
    rates = torch.linspace(0.01, 1.0, 100, dtype=torch.float64)
    success_ratio, pod = torch.meshgrid(rates, rates, indexing="xy")
    csi = csi_from_rates(success_ratio, pod)
    axis.contourf(success_ratio, pod, csi, levels=(0.0, *CSI_LEVELS, 1.0), cmap="Greys", alpha=0.35)
    contours = axis.contour(success_ratio, pod, csi, levels=CSI_LEVELS, colors="grey", linewidths=0.6)
    axis.clabel(contours, fmt="%.1f", fontsize=6)
    for bias in BIAS_LEVELS:
        axis.plot([0, 1], [0, bias], linestyle="--", color="black", linewidth=0.6)
        end = (1.0, bias) if bias <= 1 else (1 / bias, 1.0)
        axis.annotate(f"{bias:g}", end, xytext=(2, 2), textcoords="offset points", fontsize=6)
    axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="success ratio (1 − FAR)", ylabel="POD", aspect="equal")


def plot_performance_diagram(path: Path, points_by_model: Mapping[str, Mapping[str, Any]],
                             thresholds: Sequence[float], title: str = "", unit: str = "") -> Path:
    """One performance-diagram panel per threshold, a colour per model and one marker per lead time.

    ``points_by_model[name]`` holds ``"success_ratio"`` and ``"pod"`` shaped ``(T, K)``: lead times by the K
    ``thresholds`` (as :func:`~sfp.metrics.events.performance_points` gives for per-lead counts ``(T, K, 4)``).
    Each model's markers are joined in lead order and labelled 1..T; undefined (NaN) points are not drawn.
    """
    plt = pyplot()

    fig, axes = plt.subplots(1, len(thresholds), figsize=(3.6 * len(thresholds), 3.8), squeeze=False)
    for column, (axis, threshold) in enumerate(zip(axes[0], thresholds)):
        _draw_background(axis)
        for name, points in points_by_model.items():
            success_ratio = np.asarray(points["success_ratio"], dtype=float)[:, column]
            pod = np.asarray(points["pod"], dtype=float)[:, column]
            (line,) = axis.plot(success_ratio, pod, marker="o", markersize=4, linewidth=0.8, label=name)
            for lead, (x, y) in enumerate(zip(success_ratio, pod), start=1):
                if np.isfinite(x) and np.isfinite(y):
                    axis.annotate(str(lead), (x, y), xytext=(3, -3), textcoords="offset points", fontsize=5,
                                  color=line.get_color())
        axis.set_title(f">= {threshold:g} {unit}".rstrip(), fontsize=9, pad=12)  # above the bias labels
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
