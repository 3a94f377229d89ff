"""One ensemble's verification over a set (every metric of :mod:`sfp.metrics.ensemble` plus CRPS), its summary
as plain numbers, and the rank-histogram and reliability-diagram plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from sfp.metrics import CRPS
from sfp.metrics.ensemble import EnsembleFSS, Probabilistic, RankHistogram, SpreadSkill
from sfp.report.figures import pyplot, save_figure


class EnsembleVerification:
    """CRPS, rank histogram, spread-skill per lead, Brier/reliability/ROC per threshold and ensemble FSS of
    ``(B, M, T, ...)`` ensembles of ``members`` members against ``(B, T, ...)`` truths, accumulated by ``update``."""

    def __init__(self, members: int, target_len: int, thresholds: Sequence[float], windows: Sequence[int]) -> None:
        self.thresholds = tuple(thresholds)
        self.metrics = {"crps": CRPS(), "rank": RankHistogram(members), "spread": SpreadSkill(target_len),
                        "probabilistic": Probabilistic(thresholds, target_len), "fss": EnsembleFSS(thresholds, windows)}

    def update(self, ensemble: Tensor, target: Tensor) -> None:
        for metric in self.metrics.values():
            metric.update(ensemble, target)

    def compute(self) -> dict[str, object]:
        """Plain numbers and lists (JSON-ready): per lead ``spread_skill``, per threshold ``brier_skill`` rows."""
        spread = self.metrics["spread"].compute()
        prob = self.metrics["probabilistic"].compute()
        values = {
            "crps": self.metrics["crps"].compute(),
            "spread_skill": spread["ratio"], "spread_skill_mean": spread["ratio"].mean(),
            "rmse_ensemble_mean": spread["rmse"],
            "rank_histogram": self.metrics["rank"].compute(),
            "brier": prob["brier"], "brier_skill": prob["brier_skill"], "roc_area": prob["roc_area"],
            "reliability_forecast": prob["reliability_forecast"], "reliability_observed": prob["reliability_observed"],
            "fss": self.metrics["fss"].compute(),
        }
        return {"thresholds": list(self.thresholds),
                **{k: torch.nan_to_num(v.double(), nan=-1.0).tolist() for k, v in values.items()}}


def plot_verification(path: Path, results: dict[str, dict]) -> Path:
    """Rank histograms (left) and reliability diagrams at each threshold (right) of named verifications."""
    plt = pyplot()

    names = list(results)
    fig, axes = plt.subplots(len(names), 2, figsize=(9, 3.2 * len(names)), squeeze=False)
    for row, name in zip(axes, names):
        result = results[name]
        ranks = result["rank_histogram"]
        row[0].bar(range(len(ranks)), ranks)
        row[0].axhline(1 / len(ranks), color="k", lw=0.8, ls="--")
        row[0].set(title=f"{name}: rank histogram", xlabel="rank of the truth", ylabel="frequency")
        row[1].plot([0, 1], [0, 1], "k--", lw=0.8)
        for threshold, forecast, observed in zip(result["thresholds"], result["reliability_forecast"],
                                                 result["reliability_observed"]):
            points = [(f, o) for f, o in zip(forecast, observed) if f >= 0]
            row[1].plot(*zip(*points), marker="o", ms=3, label=f">= {threshold:g}")
        row[1].set(title=f"{name}: reliability", xlabel="forecast probability", ylabel="observed frequency")
        row[1].legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, 80)
