"""Event scores: contingency counts, the CSI family (POD, FAR, HSS, ETS, bias), performance-diagram points and
the fractions skill score.

An event is ``value >= threshold`` (thresholds in original units, e.g. 0-255 VIL). Target entries that are NaN
(missing data) are left out of the counts, and count as non-events in both fields for FSS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from sfp.metrics._common import (
    as_float,
    check_pair,
    check_reduction,
    check_thresholds,
    positive_int,
    separable_filter,
)

SCORE_NAMES = ("csi", "pod", "far", "hss", "ets", "bias")


def block_max(field: Tensor, size: int) -> Tensor:
    """Max over non-overlapping ``size × size`` blocks of the last two axes: ``(..., H, W) -> (..., ⌈H/s⌉, ⌈W/s⌉)``.

    When H or W is not a multiple of ``size`` the field is padded with −inf at the bottom and right, so the
    partial edge blocks are kept and pooled over the pixels they hold (no data are cropped).
    """
    *lead, height, width = field.shape
    padded = F.pad(field, (0, -width % size, 0, -height % size), value=-math.inf)
    blocks = padded.reshape(*lead, padded.shape[-2] // size, size, padded.shape[-1] // size, size)
    return blocks.amax(dim=(-3, -1))


def contingency(
    pred: Tensor,
    target: Tensor,
    thresholds: Sequence[float],
    pool: int | None = None,
    reduction: str = "sum",
) -> Tensor:
    """Hits, misses, false alarms and correct negatives per threshold: ``(K, 4)``, or ``(B, K, 4)`` with "none".

    Inputs share a shape with the sample axis first, e.g. ``(B, T, C, H, W)`` or ``(B, T, N)``. With ``pool = s``
    both fields are first max-pooled over s×s blocks of the last two axes (see :func:`block_max`); a pooled cell
    is missing when all of its target pixels are. Counts are float64 holding exact integers, so sums over a whole
    evaluation set stay exact (up to 2**53).
    """
    check_reduction(reduction, ("sum", "none"))
    check_pair(pred, target, min_dims=3 if pool is not None else 1)
    levels = check_thresholds(thresholds)
    pred, target = as_float(pred, target)
    valid = ~torch.isnan(target)
    if pool is not None:
        positive_int("pool", pool)
        pred = block_max(pred, pool)
        target = block_max(torch.where(valid, target, -math.inf), pool)
        valid = block_max(valid.to(pred.dtype), pool) > 0
    pred, target, valid = (x.reshape(x.shape[0], -1) for x in (pred, target, valid))
    total = valid.sum(1)
    rows = []
    for level in levels:
        forecast = (pred >= level) & valid
        observed = (target >= level) & valid
        hits = (forecast & observed).sum(1)
        misses = observed.sum(1) - hits
        false_alarms = forecast.sum(1) - hits
        rows.append(torch.stack([hits, misses, false_alarms, total - hits - misses - false_alarms], dim=-1))
    counts = torch.stack(rows, dim=1).to(torch.float64)
    return counts.sum(0) if reduction == "sum" else counts


def _ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    """``numerator / denominator``, NaN where the denominator is zero (the score is undefined there)."""
    return torch.where(denominator != 0, numerator / denominator, math.nan)


def scores(counts: Tensor) -> dict[str, Tensor]:
    """Scores per threshold from counts ``(..., 4)`` (hits H, misses M, false alarms F, correct negatives C).

    - csi = H / (H + M + F)
    - pod = H / (H + M)
    - far = F / (H + F)
    - bias = (H + F) / (H + M)
    - hss = 2 (H·C − M·F) / [(H + M)(M + C) + (H + F)(F + C)]   (Heidke skill score)
    - ets = (H − H_r) / (H + M + F − H_r),  H_r = (H + M)(H + F) / (H + M + F + C)   (equitable threat score)

    Each is NaN where its denominator is zero (e.g. CSI when H + M + F = 0: no event forecast or observed).
    """
    hits, misses, false_alarms, negatives = counts.to(torch.float64).unbind(-1)
    total = hits + misses + false_alarms + negatives
    random_hits = _ratio((hits + misses) * (hits + false_alarms), total)
    return {
        "csi": _ratio(hits, hits + misses + false_alarms),
        "pod": _ratio(hits, hits + misses),
        "far": _ratio(false_alarms, hits + false_alarms),
        "hss": _ratio(
            2 * (hits * negatives - misses * false_alarms),
            (hits + misses) * (misses + negatives) + (hits + false_alarms) * (false_alarms + negatives),
        ),
        "ets": _ratio(hits - random_hits, hits + misses + false_alarms - random_hits),
        "bias": _ratio(hits + false_alarms, hits + misses),
    }


def performance_points(counts: Tensor) -> dict[str, Tensor]:
    """Coordinates of a performance diagram (Roebber 2009) from contingency counts ``(..., 4)``.

    ``success_ratio`` = 1 − FAR = H / (H + F) (x axis) and ``pod`` = H / (H + M) (y axis), with the ``csi`` and
    frequency ``bias`` = (H + F) / (H + M) each point lies on; NaN where undefined, as in :func:`scores`. Per-lead
    points come from per-lead counts, e.g. ``contingency(pred.transpose(0, 1), target.transpose(0, 1), thresholds,
    reduction="none")`` for ``(B, T, ...)`` fields, ``(T, K, 4)``.
    """
    family = scores(counts)
    return {"success_ratio": 1 - family["far"], "pod": family["pod"], "csi": family["csi"], "bias": family["bias"]}


def csi_from_rates(success_ratio: Tensor, pod: Tensor) -> Tensor:
    """CSI = 1 / (1/SR + 1/POD − 1), the identity behind the diagram's CSI contours (for SR, POD > 0)."""
    return 1 / (1 / success_ratio + 1 / pod - 1)


def csi(
    pred: Tensor, target: Tensor, thresholds: Sequence[float], pool: int | None = None, reduction: str = "sum"
) -> Tensor:
    """Critical success index per threshold, ``(K,)`` from counts summed over the batch, or ``(B, K)`` with "none".

    NaN where a threshold has no event forecast or observed (H + M + F = 0).
    """
    return scores(contingency(pred, target, thresholds, pool, reduction))["csi"]


def csi_m(
    pred: Tensor, target: Tensor, thresholds: Sequence[float], pool: int | None = None, reduction: str = "sum"
) -> Tensor:
    """Mean CSI over the thresholds where it is defined: a scalar, or ``(B,)`` with "none"; NaN if none is."""
    return torch.nanmean(csi(pred, target, thresholds, pool, reduction), dim=-1)


def _box_mean(events: Tensor, window: int) -> Tensor:
    """Mean over a ``window × window`` box centred on each pixel of the last two axes, zero outside the domain.

    Same-size output; for even windows the box reaches one pixel further right/down than left/up.
    """
    before, after = (window - 1) // 2, window // 2
    ones = torch.ones(window, dtype=events.dtype, device=events.device)
    return separable_filter(F.pad(events, (before, after, before, after)), ones) / window**2


def fss_sums(pred: Tensor, target: Tensor, thresholds: Sequence[float], window: int) -> tuple[Tensor, Tensor]:
    """Per-sample, per-threshold sums of the fractions Brier score and its reference, ``(B, K)`` each.

    With event fractions P_f, P_o from :func:`_box_mean`: ``Σ (P_f − P_o)²`` and ``Σ (P_f² + P_o²)`` over all
    pixels of all frames and channels of each sample.
    """
    check_pair(pred, target, min_dims=3)
    positive_int("window", window)
    pred, target = as_float(pred, target)
    levels = torch.tensor(check_thresholds(thresholds), dtype=pred.dtype, device=pred.device)
    levels = levels.view(1, -1, *[1] * (pred.dim() - 1))
    valid = ~torch.isnan(target).unsqueeze(1)
    forecast, observed = (
        _box_mean(((x.unsqueeze(1) >= levels) & valid).to(pred.dtype), window) for x in (pred, target)
    )
    samples, count = pred.shape[0], levels.shape[1]
    error = ((forecast - observed) ** 2).reshape(samples, count, -1).sum(-1)
    reference = (forecast**2 + observed**2).reshape(samples, count, -1).sum(-1)
    return error, reference


def fss(pred: Tensor, target: Tensor, threshold: float, window: int, reduction: str = "mean") -> Tensor:
    """Fractions skill score (Roberts & Lean 2008) at one threshold and window; inputs ``(B, ..., H, W)``.

    Binary event fields are turned into fractions by a ``window × window`` mean filter with zero padding ('same'
    size: cells outside the domain count as non-events, the divisor stays window²). FSS = 1 − FBS / FBS_ref with
    FBS = mean (P_f − P_o)² and FBS_ref = mean (P_f² + P_o²). "mean" takes both means over the whole batch, "none"
    over each sample, ``(B,)``. NaN where neither field has an event (FBS_ref = 0). Higher is better, 1 is perfect.
    """
    check_reduction(reduction)
    error, reference = (sums[:, 0] for sums in fss_sums(pred, target, [threshold], window))
    if reduction == "mean":
        error, reference = error.sum(), reference.sum()
    return 1 - _ratio(error, reference)
