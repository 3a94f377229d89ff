"""Paired bootstrap intervals of a relative change between two models scored on the same test sequences.

A model's metric over a set is a function of sums, over its sequences, of per-sequence statistics: hits, misses
and false alarms per threshold for pooled CSI (:func:`csi_m_of_counts`); a sum and a count for a mean such as MSE
(squared errors and values), SSIM or the TKE error (per-frame scores and frames) (:func:`mean_of_sums`). A resample
draws the sequences with replacement, the same draw for both models (paired: what makes one sequence hard counts
for both), sums each model's statistics, recomputes both metrics and the relative change ``(new - old) / |old|``
(:func:`sfp.table.render.relative`'s definition). The interval is the resampled changes' percentiles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sfp.errors import UserError

CONFIDENCE = 0.95
RESAMPLES = 2000
Metric = Callable[[np.ndarray], np.ndarray]  # summed statistics (R, ...) -> the metric of each row (R,)


@dataclass(frozen=True)
class ChangeInterval:
    """A relative change on all sequences and its paired bootstrap interval ``[low, high]``."""

    change: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """Whether 0 lies outside the interval."""
        return self.low > 0 or self.high < 0


def mean_of_sums(sums: np.ndarray) -> np.ndarray:
    """A mean from summed ``(..., 2)`` statistics: total over count (e.g. squared errors over values)."""
    return sums[..., 0] / sums[..., 1]


def csi_m_of_counts(sums: np.ndarray) -> np.ndarray:
    """CSI-M from summed ``(..., K, 3)`` counts (hits, misses, false alarms per threshold): the mean over the
    thresholds where hits + misses + false alarms > 0 of hits over that sum; NaN where none is."""
    hits, events = sums[..., 0], sums.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        csi = np.where(events > 0, hits / events, np.nan)
        defined = (events > 0).sum(-1)
        return np.where(defined > 0, np.nansum(csi, axis=-1) / defined, np.nan)


def resample_weights(count: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """``resamples`` draws of ``count`` sequences with replacement, as how often each is drawn ``(R, count)``: one
    draw for every model scored on those sequences (paired)."""
    return np.random.default_rng(seed).multinomial(count, np.full(count, 1.0 / count), size=resamples)


def interval(changes: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central ``confidence`` of resampled changes (percentiles), leaving out those that are not finite."""
    changes = np.asarray(changes, dtype=np.float64)
    changes = changes[np.isfinite(changes)]
    if not len(changes):
        raise UserError("no resample gave a finite relative change")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(changes, [tail, 100 - tail])
    return float(low), float(high)


def paired_bootstrap(new: np.ndarray, old: np.ndarray, metric: Metric, resamples: int = RESAMPLES, seed: int = 0,
                     confidence: float = CONFIDENCE) -> ChangeInterval:
    """The relative change of ``metric`` from ``old`` to ``new`` and its paired bootstrap interval.

    ``new`` and ``old``: per-sequence statistics ``(S, ...)``, row ``i`` of both from test sequence ``i``.
    ``resamples`` draws of ``S`` sequences with replacement (seeded); the interval holds the central
    ``confidence`` of the resampled changes (percentiles), leaving out a draw whose change is not finite.
    """
    new, old = np.asarray(new, dtype=np.float64), np.asarray(old, dtype=np.float64)
    if new.shape != old.shape or new.ndim < 1 or len(new) < 1:
        raise UserError(f"paired statistics need one row per sequence for both models, got shapes {new.shape} "
                        f"and {old.shape}")
    if not 0 < confidence < 1 or resamples < 1:
        raise UserError(f"need 0 < confidence < 1 and resamples >= 1, got {confidence} and {resamples}")
    reference = float(metric(old.sum(0)[None])[0])
    if reference == 0 or not np.isfinite(reference):
        raise UserError(f"the old model's metric on all sequences is {reference}: no relative change")
    change = (float(metric(new.sum(0)[None])[0]) - reference) / abs(reference)
    count = len(new)
    draws = resample_weights(count, resamples, seed)
    totals_new, totals_old = (
        (draws @ stats.reshape(count, -1)).reshape(resamples, *stats.shape[1:]) for stats in (new, old))
    before = metric(totals_old)
    with np.errstate(invalid="ignore", divide="ignore"):
        changes = (metric(totals_new) - before) / np.abs(before)
    return ChangeInterval(change, *interval(changes, confidence))
