"""Ensemble verification as torchmetrics Metrics: rank histogram, spread-skill, Brier/reliability/ROC, ensemble FSS.

Ensembles are ``(B, M, T, ...)`` (M members, T lead times), truths ``(B, T, ...)`` with NaN where nothing was
observed (radar): those entries are left out of every score (FSS: no event there, as in :func:`fss_sums`); events are
``value >= threshold`` (as in :mod:`sfp.metrics.events`) and an event's probability is the fraction of members in
which it happens. CRPS is :class:`sfp.metrics.CRPS`. States are exact float64 sums (see
:mod:`sfp.metrics.modules`); ratios are taken only in ``compute``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.metrics._common import as_float, check_thresholds, positive_int
from sfp.metrics.events import _box_mean
from sfp.metrics.modules import _SUM, FSS, _ExactSums


def check_ensemble(ensemble: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Reject an ensemble that is not ``(B, M, T, ...)`` over a ``(B, T, ...)`` truth; return both as floats."""
    if ensemble.dim() < 3 or ensemble.shape[:1] + ensemble.shape[2:] != target.shape:
        raise UserError(f"ensemble must be (B, M, T, ...) matching target (B, T, ...); got "
                        f"{tuple(ensemble.shape)} and {tuple(target.shape)}")
    return as_float(ensemble, target)


def exceedance(ensemble: Tensor, thresholds: Sequence[float]) -> Tensor:
    """Probability of ``value >= threshold`` (fraction of members), ``(B, M, ...)`` -> ``(B, K, ...)``."""
    levels = torch.tensor(check_thresholds(thresholds), dtype=ensemble.dtype, device=ensemble.device)
    levels = levels.view(1, -1, 1, *[1] * (ensemble.dim() - 2))
    return (ensemble.unsqueeze(1) >= levels).to(ensemble.dtype).mean(2)


def _leads_last(values: Tensor) -> Tensor:
    """``(B, T, ...)`` -> ``(N, T)``: every entry of one lead time in a column."""
    return values.transpose(0, 1).reshape(values.shape[1], -1).T


class RankHistogram(_ExactSums):
    """Counts of the truth's rank among the M members (``M + 1`` bins, normalised to frequencies by compute).

    Ties (e.g. a dry pixel where every member is dry) are broken uniformly at random, so a calibrated ensemble
    gives a flat histogram also for fields with many equal values; ``seed`` makes the tie-break reproducible.
    """

    higher_is_better = None

    def __init__(self, members: int, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.members = positive_int("members", members)
        self._add_sum("counts", self.members + 1)
        self._generator = torch.Generator().manual_seed(seed)

    def update(self, ensemble: Tensor, target: Tensor) -> None:
        ensemble, target = check_ensemble(ensemble, target)
        if ensemble.shape[1] != self.members:
            raise UserError(f"RankHistogram was built for {self.members} members, got {ensemble.shape[1]}")
        truth = target.unsqueeze(1)
        below = (ensemble < truth).sum(1)
        equal = (ensemble == truth).sum(1)
        uniform = torch.rand(equal.shape, generator=self._generator).to(ensemble.device)
        rank = below + (uniform * (equal + 1)).floor().long()
        observed = ~torch.isnan(target)
        self.counts += torch.bincount(rank[observed], minlength=self.members + 1).to(_SUM)

    def compute(self) -> Tensor:
        return self.counts / self.counts.sum()


class SpreadSkill(_ExactSums):
    """Spread-skill ratio per lead time, ``sqrt((M + 1) / M) * spread / RMSE(ensemble mean)`` ``(T,)``.

    spread is the root of the mean unbiased member variance; with the finite-ensemble factor (Fortin et al.
    2014) a calibrated ensemble scores 1: below 1 is under-dispersive, above over-dispersive. ``compute`` returns
    ``{"ratio", "spread", "rmse"}``, each ``(T,)`` (spread already scaled by the factor).
    """

    higher_is_better = None

    def __init__(self, target_len: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self._add_sum("variance", positive_int("target_len", target_len))
        self._add_sum("squared_error", target_len)
        self._add_sum("count", target_len)

    def update(self, ensemble: Tensor, target: Tensor) -> None:
        ensemble, target = check_ensemble(ensemble, target)
        if ensemble.shape[1] < 2:
            raise UserError("the spread of an ensemble needs at least 2 members")
        members, observed = ensemble.shape[1], ~torch.isnan(target)
        variance = torch.where(observed, ensemble.var(1), 0.0)
        self.variance += _leads_last(variance).sum(0, dtype=_SUM) * (members + 1) / members
        self.squared_error += _leads_last(torch.where(observed, ensemble.mean(1) - target, 0.0) ** 2).sum(0, dtype=_SUM)
        self.count += _leads_last(observed).sum(0, dtype=_SUM)

    def compute(self) -> dict[str, Tensor]:
        spread = (self.variance / self.count).sqrt()
        rmse = (self.squared_error / self.count).sqrt()
        return {"ratio": spread / rmse, "spread": spread, "rmse": rmse}


class Probabilistic(_ExactSums):
    """Brier score per threshold and lead time, its skill against the set's own climatology, the reliability
    diagram and the ROC area, per threshold.

    Probabilities fall in ``bins`` equal bins of [0, 1] for the reliability diagram and the ROC curve (one point
    per bin edge). ``compute`` returns ``brier`` and ``brier_skill`` ``(K, T)``, ``base_rate`` ``(K, T)``,
    ``reliability_forecast`` / ``reliability_observed`` / ``reliability_count`` ``(K, bins)`` (mean
    probability, observed frequency and entries per bin) and ``roc_area`` ``(K,)``.
    """

    higher_is_better = None

    def __init__(self, thresholds: Sequence[float], target_len: int, bins: int = 11, **kwargs) -> None:
        super().__init__(**kwargs)
        self.thresholds = check_thresholds(thresholds)
        self.bins = positive_int("bins", bins)
        k, t = len(self.thresholds), positive_int("target_len", target_len)
        for name in ("brier", "events", "count"):
            self._add_sum(name, k, t)
        for name in ("bin_count", "bin_probability", "bin_events"):
            self._add_sum(name, k, self.bins)

    def update(self, ensemble: Tensor, target: Tensor) -> None:
        ensemble, target = check_ensemble(ensemble, target)
        probability = exceedance(ensemble, self.thresholds).transpose(0, 1)  # (K, B, T, ...)
        observed = exceedance(target.unsqueeze(1), self.thresholds).transpose(0, 1)
        valid = (~torch.isnan(target)).to(probability.dtype).unsqueeze(0).expand_as(probability)
        k, t = probability.shape[0], probability.shape[2]
        p, o, v = (x.transpose(1, 2).reshape(k, t, -1) for x in (probability, observed, valid))
        self.brier += ((p - o) ** 2 * v).sum(-1, dtype=_SUM)
        self.events += (o * v).sum(-1, dtype=_SUM)
        self.count += v.sum(-1, dtype=_SUM)
        flat_p, flat_o, flat_v = probability.reshape(k, -1), observed.reshape(k, -1), valid.reshape(k, -1)
        index = (flat_p * self.bins).long().clamp_(max=self.bins - 1)
        for name, values in (("bin_count", flat_v), ("bin_probability", flat_p * flat_v),
                             ("bin_events", flat_o * flat_v)):
            getattr(self, name).scatter_add_(1, index, values.to(_SUM))

    def compute(self) -> dict[str, Tensor]:
        base_rate = self.events / self.count
        brier = self.brier / self.count
        climatology = base_rate * (1 - base_rate)
        count = self.bin_count
        # ROC: warn when p falls in bin >= i, for i = bins .. 0; hit and false-alarm rates from the bins' counts
        hits = self.bin_events.flip(1).cumsum(1)
        false_alarms = (count - self.bin_events).flip(1).cumsum(1)
        zero = torch.zeros_like(hits[:, :1])
        pod = torch.cat([zero, hits], 1) / hits[:, -1:]
        pofd = torch.cat([zero, false_alarms], 1) / false_alarms[:, -1:]
        area = ((pofd[:, 1:] - pofd[:, :-1]) * (pod[:, 1:] + pod[:, :-1]) / 2).sum(1)
        return {"brier": brier, "brier_skill": 1 - brier / climatology, "base_rate": base_rate,
                "reliability_forecast": self.bin_probability / count,
                "reliability_observed": self.bin_events / count, "reliability_count": count, "roc_area": area}


class EnsembleFSS(FSS):
    """Fractions skill score of the exceedance probability (the ensemble's forecast fraction of each pixel,
    smoothed by the ``window`` box) against the observed event fractions, ``(K, W)`` per threshold and window:
    :class:`~sfp.metrics.modules.FSS` with an ensemble's probabilities for the forecast's events."""

    def update(self, ensemble: Tensor, target: Tensor) -> None:
        ensemble, target = check_ensemble(ensemble, target)
        valid = (~torch.isnan(target)).unsqueeze(1).to(ensemble.dtype)
        probability = exceedance(ensemble, self.thresholds) * valid
        observed = exceedance(target.unsqueeze(1), self.thresholds) * valid
        k = probability.shape[1]
        for j, window in enumerate(self.windows):
            forecast, truth = (_box_mean(x, window).transpose(0, 1).reshape(k, -1) for x in (probability, observed))
            self.error[:, j] += ((forecast - truth) ** 2).sum(1, dtype=_SUM)
            self.reference[:, j] += (forecast**2 + truth**2).sum(1, dtype=_SUM)
