"""Is S-PROG's intensity what a learned correction could fix? S-PROG's whole-composite forecast (the first guess of
a prepared file, ``sfp data prepare radar --first-guess sprog``) quantile-mapped per lead time onto the truth of each
held-out fold's training events (:mod:`sfp.quantile_map`), blended with the unmapped guess by a weight chosen on the
fold's validation event (CSI-M), scored on its test event; contingency counts pooled over the folds
(:func:`sfp.radar_heldout.folds`). Needs ``SFP_RADAR_GUESS`` (default ``runs/radar/windows_sprog.npz``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from sfp.data.radar.dataset import load
from sfp.data.radar.first_guess import layout
from sfp.errors import UserError
from sfp.metrics.bootstrap import csi_m_of_counts
from sfp.metrics.events import contingency
from sfp.quantile_map import apply_quantile_map, fit_quantile_map
from sfp.radar_heldout import CSI5, folds
from sfp.task import RADAR

ROOT = Path(__file__).resolve().parents[1]
BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _counts(forecast: torch.Tensor, truth: torch.Tensor) -> np.ndarray:
    """Hits, misses and false alarms per threshold ``(K, 3)`` over every window, lead and pixel."""
    return contingency(forecast[:, :, None], truth[:, :, None], tuple(RADAR.thresholds))[..., :3].double().numpy()


def run() -> list[dict]:
    path = Path(os.environ.get("SFP_RADAR_GUESS", ROOT / "runs" / "radar" / "windows_sprog.npz"))
    arrays = load(path)
    observed, lead = layout(arrays)
    if not lead:
        raise UserError(f"{path}: no first guess; build it with sfp data prepare radar --first-guess sprog")
    frames = torch.from_numpy(arrays["data"][:, :, 0])
    guess, truth = frames[:, observed:observed + lead], frames[:, observed + lead:observed + 2 * lead]
    event_of = np.asarray(arrays["event"])
    names = list(arrays["events"])
    totals = {"sprog": 0.0, "qmap": 0.0}
    for test, val in folds(names):
        member = {name: np.flatnonzero(event_of == names.index(name)) for name in (test, val)}
        train = np.flatnonzero(~np.isin(event_of, [names.index(test), names.index(val)]))
        mapping = fit_quantile_map(guess[train], truth[train])
        blend = max(BLENDS, key=lambda b: float(csi_m_of_counts(_counts(
            apply_quantile_map(mapping, guess[member[val]], b), truth[member[val]]))))
        totals["sprog"] = totals["sprog"] + _counts(guess[member[test]], truth[member[test]])
        totals["qmap"] = totals["qmap"] + _counts(apply_quantile_map(mapping, guess[member[test]], blend),
                                                  truth[member[test]])
    return [row for name, counts in totals.items() for row in (
        {"name": f"{name}: pooled CSI-M", "value": float(csi_m_of_counts(counts)), "unit": ""},
        {"name": f"{name}: pooled CSI 5 mm/h", "value": float(csi_m_of_counts(counts[[CSI5]])), "unit": ""})]
