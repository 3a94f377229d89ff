"""How a forecast's skill changes with lead time, the views papers of each field show.

Tasks with event thresholds: CSI per threshold and lead, from contingency counts summed over the set. Tasks judged
on SSIM: SSIM per lead (mean over samples and channels). Tasks judged on the TKE spectrum: the kinetic-energy
spectrum E(k), mean over samples and lead times, for the truth and each forecast (the log-log plot of turbulence
papers). ``lead_accumulators`` makes them for :func:`sfp.report.scoring.accumulate` (the test split's evaluation,
:func:`sfp.report.evaluation.evaluate_checkpoints`, fills them in the same pass as the task metrics);
``plot_lead_curves`` draws the result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sfp.metrics.functional import ssim
from sfp.metrics.modules import ContingencyScores
from sfp.metrics.spectrum import tke_spectrum
from sfp.metrics.task_metrics import threshold_key
from sfp.report.figures import pyplot, save_figure
from sfp.report.scoring import Forecast
from sfp.task import TaskSpec


class LeadCurves:
    """Accumulates one forecaster's per-lead views of ``task`` over a set (see the module docstring)."""

    def __init__(self, task: TaskSpec, target_len: int) -> None:
        self.task, self.target_len = task, target_len
        self.csi = [ContingencyScores(task.thresholds) for _ in range(target_len)] if task.thresholds else []
        self.ssim_sum, self.spectrum_sum, self.samples = torch.zeros(target_len, dtype=torch.float64), None, 0

    def update(self, pred: Tensor, target: Tensor) -> None:
        for lead, metric in enumerate(self.csi):
            metric.update(pred[:, lead:lead + 1], target[:, lead:lead + 1])
        if self.task.ssim:
            for lead in range(self.target_len):
                self.ssim_sum[lead] += ssim(pred[:, lead], target[:, lead].nan_to_num(0.0), self.task.data_range,
                                            reduction="none").double().sum()
        if self.task.tke:
            spectrum = tke_spectrum(pred.double()).flatten(0, -2).sum(0)
            self.spectrum_sum = spectrum if self.spectrum_sum is None else self.spectrum_sum + spectrum
        self.samples += pred.shape[0]

    def compute(self) -> dict[str, Any]:
        curves: dict[str, Any] = {}
        if self.csi:
            per_lead = [metric.compute()["csi"].reshape(-1) for metric in self.csi]
            curves["csi_per_lead"] = {threshold_key(t): [float(c[k]) for c in per_lead]
                                      for k, t in enumerate(self.task.thresholds)}
        if self.task.ssim:
            curves["ssim_per_lead"] = (self.ssim_sum / max(self.samples, 1)).tolist()
        if self.task.tke and self.spectrum_sum is not None:
            frames = self.samples * self.target_len
            curves["spectrum"] = (self.spectrum_sum / frames).tolist()
        return curves


TRUTH = "truth"  # the per-lead entry of the truth itself (its spectrum), for spectral tasks


def with_truth(forecasts: dict[str, Forecast], task: TaskSpec) -> dict[str, Forecast]:
    """``forecasts``, plus the truth as a forecaster where the views show the truth's own spectrum."""
    return {**forecasts, TRUTH: lambda batch: batch[3]} if task.tke else forecasts


def lead_accumulators(task: TaskSpec, target_len: int) -> Callable[[str], LeadCurves]:
    """The per-lead views of a forecaster, by name: for :data:`TRUTH`, its spectrum alone."""
    spectrum_only = TaskSpec(task.name, tke=True, ssim=False)
    return lambda name: LeadCurves(spectrum_only if name == TRUTH else task, target_len)


def plot_lead_curves(path: Path, curves: dict[str, dict[str, Any]], title: str, step: str = "step") -> Path | None:
    """CSI per threshold against lead (one panel each), SSIM against lead, or E(k) on log-log axes."""
    plt = pyplot()

    first = next(iter(curves.values()))
    panels = [("csi", t) for t in first.get("csi_per_lead", {})] + [("ssim", None)] * ("ssim_per_lead" in first)
    panels += [("spectrum", None)] * ("spectrum" in first)
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), squeeze=False)
    for axis, (kind, threshold) in zip(axes[0], panels):
        for name, curve in curves.items():
            if kind == "spectrum":
                energy = curve["spectrum"]
                axis.loglog(range(1, len(energy)), energy[1:], label=name)
            elif kind == "ssim" and "ssim_per_lead" in curve:
                axis.plot(range(1, len(curve["ssim_per_lead"]) + 1), curve["ssim_per_lead"], marker="o", label=name)
            elif kind == "csi" and "csi_per_lead" in curve:
                values = curve["csi_per_lead"][threshold]
                axis.plot(range(1, len(values) + 1), values, marker="o", label=name)
        axis.set_title({"csi": f"CSI >= {threshold}", "ssim": "SSIM", "spectrum": "E(k)"}[kind])
        axis.set_xlabel("wavenumber k" if kind == "spectrum" else f"lead ({step})")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
