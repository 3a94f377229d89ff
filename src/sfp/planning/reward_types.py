"""What a reward is: a per-sample score of forecasts against the truth (higher is better), additive or not, seen
everywhere or at gauges alone (the built-in rewards and their registry: :mod:`sfp.planning.rewards`).

A :class:`Reward` maps a forecast ``(B, *S, T, C, H, W)`` and the truth ``(B, T, C, H, W)`` to ``(B, *S)``: the
``*S`` axes are candidate stacks (e.g. n imagined futures per sample), scored against their sample's truth in one
vectorized call. Everything is in original units (e.g. 0-255 VIL for CSI thresholds).

Partial forecasts: a reward scores whatever frames it is given, so the planner's cumulative reward of frames
0..t is the reward of ``pred[..., : t + 1, :, :, :]`` against ``target[:, : t + 1]``. The built-in rewards are
:class:`AdditiveReward` objects, functions of per-sample totals that add up over frames (event counts, squared errors,
per-frame scores), so the planner updates a beam's totals with each new frame instead of rescoring all of them.

Undefined values: a threshold at which neither field has an event scores a perfect 1 (CSI, FSS), so a sample with
no events anywhere scores 1; any other NaN score (no valid target value, a NaN forecast) becomes -inf so that it
never wins a comparison.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache, partial

import torch
from torch import Tensor

from sfp.errors import UserError

ScoreFunction = Callable[[Tensor, Tensor], Tensor]
"""``(pred (N, ...), target (N, ...)) -> (N,)``: one score per forecast, inputs of the same shape."""


def _pairs(pred: Tensor, target: Tensor, name: str) -> tuple[Tensor, Tensor, torch.Size]:
    """Forecasts ``(B, *S, T, ...)`` and the truth ``(B, T, ...)`` as ``N = B·|S|`` pairs of one shape, and
    ``(B, *S)``."""
    extra = pred.ndim - target.ndim
    if extra < 0 or pred.shape[0] != target.shape[0] or pred.shape[1 + extra:] != target.shape[1:]:
        raise UserError(f"reward {name}: forecasts {tuple(pred.shape)} do not match the truth "
                        f"{tuple(target.shape)}; expected (B, *S, {', '.join(map(str, target.shape[1:]))})")
    flat_pred = pred.reshape(-1, *target.shape[1:])
    flat_target = target.reshape(target.shape[0], *([1] * extra), *target.shape[1:]).expand(pred.shape)
    return flat_pred, flat_target.reshape(flat_pred.shape), pred.shape[: 1 + extra]


def _undefined_loses(scores: Tensor) -> Tensor:
    """NaN scores replaced by -inf."""
    return torch.where(torch.isnan(scores), -math.inf, scores)


def negative_squared_error(pred: Tensor, target: Tensor) -> Tensor:
    """Per-pixel local score ``-(pred - target)²`` summed over channels: ``(N, T, C, H, W) -> (N, T, H, W)``;
    missing (NaN) truth scores 0."""
    error = (pred - target).pow(2)
    return -torch.where(torch.isnan(error), torch.zeros_like(error), error).sum(2)


class Reward:
    """A per-sample score (higher is better) with a readable name; call it on forecasts and the truth.

    local: a per-pixel score ``(N, T, C, H, W) x 2 -> (N, T, H, W)`` whose sum over a region says how much that
    region adds to the reward (to first order); the mosaic planner picks codes patch by patch with it. Rewards
    without one use :func:`negative_squared_error`. regions: for a reward of whole objects, where a forecast's
    objects matched to the truth's lie (``(N, T, C, H, W) x 2 -> (N, T*C, H, W)`` boolean), the pixels an
    ``objects`` pseudo-label edits; None for other rewards.
    """

    def __init__(self, score: ScoreFunction, name: str, local: ScoreFunction | None = None,
                 regions: ScoreFunction | None = None) -> None:
        self.score = score
        self.name = name
        self.local = local or negative_squared_error
        self.regions = regions

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        """Score ``pred (B, *S, T, ...)`` against ``target (B, T, ...)``: ``(B, *S)``, NaN replaced by -inf."""
        flat_pred, flat_target, samples = _pairs(pred, target, self.name)
        scores = self.score(flat_pred, flat_target)
        if scores.shape != flat_pred.shape[:1]:
            raise UserError(f"reward {self.name} returned shape {tuple(scores.shape)} for {flat_pred.shape[0]} "
                            f"forecasts; a reward must return one value per forecast")
        return _undefined_loses(scores.to(torch.promote_types(pred.dtype, torch.float32))).reshape(samples)


def _score_from_totals(pred: Tensor, target: Tensor, totals: ScoreFunction,
                       finish: Callable[[Tensor], Tensor]) -> Tensor:
    return finish(totals(pred, target).to(torch.float64))


class AdditiveReward(Reward):
    """A reward that is a function of per-sample totals adding up over frames: ``finish(totals(pred, target))``.

    totals: ``N`` pairs ``(N, T, ...)`` -> ``(N, m)`` sums over their frames (event counts, squared errors and
    valid counts, per-frame scores and frame counts); finish: ``(N, m)`` -> ``(N,)``. The totals of frames 0..t
    are those of frames 0..t-1 plus those of frame t, so the beam search scores an extension from its newest
    frame alone: O(T) reward work per forecast instead of O(T²), with the same scores.
    """

    def __init__(self, totals: ScoreFunction, finish: Callable[[Tensor], Tensor], name: str,
                 local: ScoreFunction | None = None, regions: ScoreFunction | None = None) -> None:
        super().__init__(partial(_score_from_totals, totals=totals, finish=finish), name, local, regions)
        self.totals = totals
        self.finish = finish

    def frame_totals(self, pred: Tensor, target: Tensor) -> Tensor:
        """The totals ``(B, *S, m)`` (float64) of forecasts ``(B, *S, T, ...)`` against ``target (B, T, ...)``."""
        flat_pred, flat_target, samples = _pairs(pred, target, self.name)
        return self.totals(flat_pred, flat_target).to(torch.float64).reshape(*samples, -1)

    def from_totals(self, totals: Tensor) -> Tensor:
        """Scores ``(...)`` (float64) of totals ``(..., m)``, NaN replaced by -inf."""
        scores = self.finish(totals.reshape(-1, totals.shape[-1]))
        return _undefined_loses(scores).reshape(totals.shape[:-1])


class WeightedSum(Reward):
    """``Σ weight · reward`` over ``terms``, a sequence of ``(reward, weight)`` pairs (weights finite).

    Not additive over frames even when its terms are: the beam search rescores its partial forecasts.
    """

    def __init__(self, terms: Sequence[tuple[Reward, float]]) -> None:
        if not terms:
            raise UserError("a weighted reward needs at least one term")
        self.terms = [(reward, _finite_weight(reward, weight)) for reward, weight in terms]
        name = " + ".join(f"{weight:g}*{reward.name}" for reward, weight in self.terms)
        super().__init__(self._weighted_score, name, self._weighted_local)

    def _weighted_score(self, pred: Tensor, target: Tensor) -> Tensor:
        return sum(weight * reward.score(pred, target).to(torch.float64) for reward, weight in self.terms)

    def _weighted_local(self, pred: Tensor, target: Tensor) -> Tensor:
        return sum(weight * reward.local(pred, target) for reward, weight in self.terms)


class Gauged(Reward):
    """``reward`` seeing only the pixels where ``mask`` (``(H, W)``, True at a gauge) is True: forecasts and truth
    are 0 elsewhere, so an event or an error there counts for nothing (for rewards whose events lie above 0)."""

    def __init__(self, reward: Reward, mask: Tensor) -> None:
        self.inner, self.mask = reward, mask
        super().__init__(self._seen(reward.score), f"{reward.name} at gauges", self._seen(reward.local),
                         reward.regions and self._seen(reward.regions))

    def _seen(self, score: ScoreFunction) -> ScoreFunction:
        def seen(pred: Tensor, target: Tensor) -> Tensor:
            mask = self.mask.to(pred.device)
            return score(torch.where(mask, pred, 0.0), torch.where(mask, target, 0.0))
        return seen


GAUGE_SEED = 2026  # one fixed set of gauges for every model and stage


@lru_cache(maxsize=8)
def gauge_mask(height: int, width: int, fraction: float, device: torch.device | str = "cpu") -> Tensor:
    """A fixed random ``(height, width)`` mask, True at about ``fraction`` of the pixels (at least one): the gauges
    that see the truth, the same for every model (seeded by :data:`GAUGE_SEED` and the size alone). Made once per
    size and device (every training step asks): read it, do not change it."""
    if not 0.0 < fraction <= 1.0:
        raise UserError(f"gauges must be a fraction in (0, 1], got {fraction!r}")
    draw = torch.rand(height, width, generator=torch.Generator().manual_seed(GAUGE_SEED))
    mask = draw < fraction
    mask.view(-1)[draw.argmin()] = True
    return mask.to(device)


def _finite_weight(reward: object, weight: object) -> float:
    """``weight`` as a finite float, after checking that ``reward`` is a Reward."""
    try:
        value = float(weight)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if not isinstance(reward, Reward) or not math.isfinite(value):
        raise UserError(f"weighted reward terms must be (Reward, finite weight) pairs, got {(reward, weight)!r}")
    return value
