"""The ``qmap`` peer: the equal-step baseline's forecasts quantile-mapped, per lead time, onto the truth's
distribution (fitted on the validation split, no training), blended with the unmapped forecast by a weight whose
validation MSE change matches SFP's.

The map of one lead time sends the forecast's value at each level of a fixed grid of quantile levels (``levels``
evenly spaced on [0, 1], both ends included) to the truth's value at the same level, linearly in between and
constant beyond the fitted range. Where the forecast's quantile is tied over several levels (a dry area: many
zeros), that value maps to the mean of the truth's quantiles over those levels.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.metrics.functional import mse
from sfp.task import Bounds

QUANTILE_LEVELS = 101  # 0, 0.01, ..., 1
BLEND_BISECTIONS = 20  # halvings of the searched side: a blend within 1e-6 of the crossing


@dataclass(frozen=True)
class QuantileMap:
    """Per lead time ``(T, Q)``: the forecast's quantiles (ascending) and the value each one maps to."""

    forecast: Tensor
    mapped: Tensor


def _quantiles(values: Tensor, levels: Tensor) -> Tensor:
    """The values at ``levels`` (in [0, 1]) of a 1-D sample, linear between order statistics (no size limit)."""
    ordered = values.sort().values
    position = levels * (ordered.numel() - 1)
    below = position.floor().long()
    above = position.ceil().long()
    return ordered[below] + (position - below) * (ordered[above] - ordered[below])


def fit_quantile_map(forecasts: Tensor, truths: Tensor, levels: int = QUANTILE_LEVELS) -> QuantileMap:
    """The map of each lead time (axis 1 of ``(N, T, ...)``) from the forecasts' values to the truths', over the
    entries where the truth is not NaN."""
    if forecasts.shape != truths.shape or forecasts.dim() < 2 or levels < 2:
        raise UserError(f"a quantile map needs forecasts and truths of one shape (N, T, ...) and >= 2 levels, got "
                        f"{tuple(forecasts.shape)}, {tuple(truths.shape)} and {levels}")
    grid = torch.linspace(0.0, 1.0, levels, dtype=torch.float64, device=forecasts.device)
    forecast_q, truth_q = [], []
    for lead in range(forecasts.shape[1]):
        forecast, truth = forecasts[:, lead].flatten().double(), truths[:, lead].flatten().double()
        valid = ~torch.isnan(truth)
        if not valid.any():
            raise UserError(f"lead time {lead} has no valid truth to fit a quantile map on")
        forecast_q.append(_quantiles(forecast[valid], grid))
        truth_q.append(_quantiles(truth[valid], grid))
    forecast_q, truth_q = torch.stack(forecast_q), torch.stack(truth_q)
    tied = (forecast_q[:, :, None] == forecast_q[:, None, :]).double()  # (T, Q, Q)
    mapped = (tied * truth_q[:, None, :]).sum(-1) / tied.sum(-1)
    return QuantileMap(forecast_q.to(forecasts.dtype), mapped.to(forecasts.dtype))


def apply_quantile_map(mapping: QuantileMap, forecasts: Tensor, blend: float) -> Tensor:
    """``blend * mapped + (1 - blend) * forecasts`` for ``(N, T, ...)`` forecasts, each lead time through its own
    map; ``blend`` in [0, 1] (0: the forecasts unchanged)."""
    if not 0.0 <= blend <= 1.0:
        raise UserError(f"the quantile map's blend must lie in [0, 1], got {blend!r}")
    leads, count = mapping.forecast.shape
    if forecasts.dim() < 2 or forecasts.shape[1] != leads:
        raise UserError(f"the quantile map was fitted on {leads} lead times; forecasts have shape "
                        f"{tuple(forecasts.shape)}")
    knots, mapped = (part.to(forecasts.device, forecasts.dtype) for part in (mapping.forecast, mapping.mapped))
    values = forecasts.transpose(0, 1).reshape(leads, -1)
    upper = torch.searchsorted(knots, values.contiguous(), right=True).clamp(1, count - 1)
    x0, x1 = knots.gather(1, upper - 1), knots.gather(1, upper)
    y0, y1 = mapped.gather(1, upper - 1), mapped.gather(1, upper)
    fraction = torch.where(x1 > x0, (values - x0) / (x1 - x0).clamp_min(torch.finfo(values.dtype).tiny), 0.0)
    result = y0 + fraction.clamp(0.0, 1.0) * (y1 - y0)
    result = result.reshape(leads, forecasts.shape[0], *forecasts.shape[2:]).transpose(0, 1)
    return blend * result + (1.0 - blend) * forecasts


def _bisect(change: Callable[[float], float], target: float, low: float, high: float, iterations: int) -> float:
    """The blend in ``[low, high]`` where a monotone ``change`` (either way) is nearest ``target``: the end nearer
    it when it lies outside the range of ``change`` there, else the bisected crossing."""
    at_low, at_high = change(low), change(high)
    sign = 1.0 if at_high >= at_low else -1.0  # bisect sign * change, rising from low to high
    if sign * target <= sign * at_low:
        return low
    if sign * target >= sign * at_high:
        return high
    for _ in range(iterations):
        middle = (low + high) / 2
        at_middle = change(middle)
        if sign * at_middle < sign * target:
            low, at_low = middle, at_middle
        else:
            high, at_high = middle, at_middle
    return low if abs(target - at_low) <= abs(at_high - target) else high


def _lowest(change: Callable[[float], float], iterations: int) -> float:
    """Where a convex ``change`` is lowest on [0, 1], by golden-section search (one evaluation per iteration)."""
    ratio = (5**0.5 - 1) / 2
    low, high = 0.0, 1.0
    left, right = 1.0 - ratio, ratio
    at_left, at_right = change(left), change(right)
    for _ in range(iterations):
        if at_left <= at_right:
            high, right, at_right = right, left, at_left
            left = high - ratio * (high - low)
            at_left = change(left)
        else:
            low, left, at_left = left, right, at_right
            right = low + ratio * (high - low)
            at_right = change(right)
    return (low + high) / 2


def match_blend(change: Callable[[float], float], target: float, iterations: int = BLEND_BISECTIONS) -> float:
    """The smallest blend in [0, 1] whose ``change(blend)`` is ``target``, for a ``change`` convex in the blend.

    A relative MSE change is: a quadratic ``(2 b <e d> + b^2 <d^2>) / <e^2>`` with ``e = f - y`` and ``d = m - f``
    (forecast f, mapped m, truth y). It rises from 0 where the forecast's errors are uncorrelated with functions of
    it (an MSE-trained forecast), but falls first where the map also corrects a bias. So: the lowest point
    (golden-section search), then a bisection on the falling side for a target below ``change(0)``, else on the
    rising side. A target out of reach gives the blend nearest it (0, the lowest point or 1).
    """
    lowest = _lowest(change, 2 * iterations)
    at_zero = change(0.0)
    if target < at_zero:
        return _bisect(change, target, 0.0, lowest, iterations)
    rising = _bisect(change, target, lowest, 1.0, iterations)
    return rising if abs(change(rising) - target) < target - at_zero else 0.0


def blend_for_mse_change(mapping: QuantileMap, forecasts: Tensor, truths: Tensor, target: float,
                         iterations: int = BLEND_BISECTIONS) -> float:
    """The blend whose validation MSE change ``mse(blended) / mse(forecasts) - 1`` (NaN truths left out) is
    nearest ``target`` (SFP's validation MSE change against the same equal-step baseline), by :func:`match_blend`.
    The blend of forecasts and mapped values inside the task's bounds stays inside them: no clamping is needed."""
    baseline = mse(forecasts, truths).item()
    if not baseline > 0:
        raise UserError(f"the unmapped forecasts' validation MSE is {baseline}: no relative change to match")

    def change(blend: float) -> float:
        return mse(apply_quantile_map(mapping, forecasts, blend), truths).item() / baseline - 1.0

    return match_blend(change, target, iterations)


MAP_FILE = "qmap.pt"  # the qmap stage's artifact in its folder


def save_quantile_map(path: str | Path, baseline_checkpoint: str, mapping: QuantileMap, blend: float) -> None:
    """The qmap peer as a file: the equal-step baseline it maps (a checkpoint path), its map and its blend."""
    torch.save({"baseline": str(baseline_checkpoint), "forecast": mapping.forecast, "mapped": mapping.mapped,
                "blend": float(blend)}, path)


def load_quantile_mapped(path: str | Path, bounds: Bounds) -> Callable[[tuple[Tensor, ...]], Tensor]:
    """The qmap peer saved by :func:`save_quantile_map` as a function of a batch (the baseline's forecast, inside
    ``bounds``, then mapped and blended; a blend of values inside the bounds stays inside them)."""
    from sfp.forecasting.checkpoints import load_forecaster

    try:
        saved = torch.load(path, weights_only=True)
        mapping, blend = QuantileMap(saved["forecast"], saved["mapped"]), float(saved["blend"])
    except (OSError, RuntimeError, KeyError, TypeError, pickle.UnpicklingError) as err:
        raise UserError(f"{path}: not a quantile map sfp saved ({type(err).__name__})") from None
    baseline = load_forecaster(saved["baseline"])
    baseline.bounds = bounds
    return lambda batch: apply_quantile_map(mapping, baseline.forecast(batch[0], batch[1], batch[2]), blend)
