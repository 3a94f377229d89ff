"""Radially averaged power spectra of forecasts against the observations' (log-log), the nowcasters' view of blur.

A forecast that smooths away small scales falls below the observed spectrum at high frequencies. The spectra come
from :func:`sfp.metrics.spectrum.rapsd` (averaged over the frames of a set by the caller).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sfp.report.figures import pyplot, save_figure


def plot_rapsd(path: Path, spectra_by_model: Mapping[str, tuple[Any, Any]], reference: str = "observations",
               lead_labels: Sequence[str] | None = None, title: str = "", unit: str = "km") -> Path:
    """RAPSD of each model on log-log axes, ``reference`` (the observations) drawn in black.

    ``spectra_by_model[name] = (frequencies (K,), power)``; power ``(K,)`` gives one panel, ``(T, K)`` one panel per
    lead time (titled by ``lead_labels``, default 1..T). The zero frequency (the mean) is not drawn. ``unit`` names
    the length the frequencies are counted per.
    """
    plt = pyplot()

    spectra = {name: (np.asarray(freq, dtype=float), np.atleast_2d(np.asarray(power, dtype=float)))
               for name, (freq, power) in spectra_by_model.items()}
    panels = next(iter(spectra.values()))[1].shape[0]
    labels = list(lead_labels) if lead_labels is not None else [str(t) for t in range(1, panels + 1)]
    fig, axes = plt.subplots(1, panels, figsize=(3.4 * panels, 3.2), squeeze=False)
    for row, axis in enumerate(axes[0]):
        for name, (frequencies, power) in spectra.items():
            style = {"color": "black", "linewidth": 2.0, "zorder": 3} if name == reference else {"linewidth": 1.0}
            axis.loglog(frequencies[1:], power[row, 1:], label=name, **style)
        axis.set_xlabel(f"frequency (1/{unit})")
        if panels > 1:
            axis.set_title(f"lead {labels[row]}", fontsize=9)
    axes[0][0].set_ylabel("power")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
