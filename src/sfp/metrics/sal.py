"""SAL (Wernli, Paulat, Hagen & Frei 2008): structure, amplitude and location of a precipitation-like field.

For non-negative fields on an ``H × W`` grid of unit cells, each frame against its truth:

- A = (D_f − D_t) / ½(D_f + D_t), D the domain mean (NaN values left out); in [−2, 2].
- Objects: the regions (8-connected unless stated) where ``value >= threshold_factor × q``, q the ``quantile``
  (0.95) of the field's wet (positive) values; the paper's factor is 1/15. Each object n has its mass R_n (sum of
  values), peak R_n^max and centre of mass x_n.
- S = (V_f − V_t) / ½(V_f + V_t), with the scaled volume V = Σ R_n V_n / Σ R_n, V_n = R_n / R_n^max; in [−2, 2].
  S < 0: objects too small or too peaked, S > 0: too large or too flat.
- L = L1 + L2 in [0, 2]: L1 = |x_f − x_t| / d, x the centre of mass of the whole field and d = √(H² + W²) the
  domain's diagonal; L2 = 2 |r_f − r_t| / d, r = Σ R_n |x − x_n| / Σ R_n the mass-weighted distance of the
  objects from x (how scattered they are).

A component is NaN where a field with no positive value leaves it undefined (as in pysteps): A and S when both
fields are dry, L when either is. :func:`sal_penalty` makes a finite score of them for rewards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from sfp.errors import UserError
from sfp.metrics._common import check_pair, positive_float, positive_int
from sfp.metrics.objects import frames, label_regions

PAPER_THRESHOLD_FACTOR = 1 / 15
SAL_NAMES = ("structure", "amplitude", "location")
_WORST = 2.0  # the largest |S|, |A| and L


@dataclass(frozen=True)
class _FieldSummary:
    """What SAL needs of one frame: domain mean, scaled volume V, centre of mass x and objects' spread r."""

    mean: float
    scaled_volume: float
    centre: np.ndarray
    spread: float


def _summary(field: np.ndarray, threshold_factor: float, quantile: float, connectivity: int,
             min_size: int) -> _FieldSummary:
    values = np.nan_to_num(field, nan=0.0)
    wet = values[values > 0]
    if wet.size == 0:
        return _FieldSummary(float(np.nanmean(field)) if np.isfinite(field).any() else np.nan, 0.0,
                             np.full(2, np.nan), np.nan)
    labels, count = label_regions(values >= threshold_factor * np.quantile(wet, quantile), connectivity,
                                  min_size=min_size)
    index = np.arange(1, count + 1)
    masses = np.asarray(ndimage.sum_labels(values, labels, index))
    peaks = np.asarray(ndimage.maximum(values, labels, index))
    centres = np.asarray(ndimage.center_of_mass(values, labels, index))
    centre = np.asarray(ndimage.center_of_mass(values))
    return _FieldSummary(float(np.nanmean(field)), float((masses**2 / peaks).sum() / masses.sum()), centre,
                         float((masses * np.hypot(*(centres - centre).T)).sum() / masses.sum()))


def _normalized_difference(forecast: float, truth: float) -> float:
    total = forecast + truth
    return (forecast - truth) / (0.5 * total) if total > 0 else np.nan


def sal_frame(forecast: np.ndarray, truth: np.ndarray, threshold_factor: float = PAPER_THRESHOLD_FACTOR,
              quantile: float = 0.95, connectivity: int = 8, min_size: int = 1) -> tuple[float, float, float]:
    """(S, A, L) of one 2-D forecast against its truth (see the module docstring)."""
    f, t = (_summary(x, threshold_factor, quantile, connectivity, min_size) for x in (forecast, truth))
    diagonal = float(np.hypot(*truth.shape))
    location = (np.hypot(*(f.centre - t.centre)) + 2 * abs(f.spread - t.spread)) / diagonal
    return _normalized_difference(f.scaled_volume, t.scaled_volume), _normalized_difference(f.mean, t.mean), location


def check_sal_options(threshold_factor: float, quantile: float, min_size: int) -> None:
    """Raise UserError unless the factor is positive, the quantile in (0, 1] and ``min_size`` a positive integer."""
    positive_float("threshold_factor", threshold_factor)
    positive_int("min_size", min_size)
    if not 0 < quantile <= 1:
        raise UserError(f"quantile must be in (0, 1], got {quantile!r}")


def sal(pred: Tensor, target: Tensor, threshold_factor: float = PAPER_THRESHOLD_FACTOR, quantile: float = 0.95,
        connectivity: int = 8, min_size: int = 1) -> Tensor:
    """S, A and L of every frame of forecasts ``(N, ..., H, W)`` against the truth: ``(N, F, 3)`` float64, F the
    frames (and channels) of a sample; NaN where undefined. Objects under ``min_size`` pixels are left out (the
    paper keeps all; pysteps drops those under 50). Computed on CPU without gradient."""
    check_pair(pred, target, min_dims=3)
    check_sal_options(threshold_factor, quantile, min_size)
    forecast, truth = frames(pred), frames(target)
    components = [[sal_frame(f, t, threshold_factor, quantile, connectivity, min_size) for f, t in zip(fs, ts)]
                  for fs, ts in zip(forecast, truth)]
    return torch.tensor(components, dtype=torch.float64).reshape(*forecast.shape[:2], 3)


def sal_penalty(components: Tensor) -> Tensor:
    """``|S| + |A| + L`` of components ``(..., 3)``, finite: an undefined component counts as its worst value 2,
    and a frame where all three are undefined (no positive value in either field) scores a perfect 0."""
    structure, amplitude, location = components.unbind(-1)
    penalty = sum(torch.nan_to_num(x, nan=_WORST) for x in (structure.abs(), amplitude.abs(), location))
    return torch.where(torch.isnan(components).all(-1), 0.0, penalty)
