"""Differentiable stand-ins for the headline metrics: the loss a reviewer would train on instead of planning.

- CSI-M (storms, radar): soft CSI — a pixel counts as a forecast event with probability
  ``sigmoid((pred - t) / (SOFT_CSI_WIDTH * t))`` at each threshold ``t``; hits, misses and false alarms are summed
  over the batch (valid pixels only) and the loss is ``1 - mean over thresholds of hits / (hits + misses + false
  alarms)``. As the width goes to 0 it is 1 - CSI-M.
- TKE spectrum error (navier_stokes): the mean squared log10 ratio of the forecast's and the truth's shell
  energies over the de-aliased band (differentiable wherever the energies are positive).
- SSIM (flame): ``1 - SSIM``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.metrics.functional import ssim
from sfp.metrics.spectrum import log_spectrum_distance
from sfp.task import TaskSpec

SOFT_CSI_WIDTH = 0.1  # of each threshold: the sigmoid's scale
Surrogate = Callable[[Tensor, Tensor, Tensor], Tensor]  # (forecast, truth, valid) in data units -> loss


def soft_csi_loss(pred: Tensor, truth: Tensor, valid: Tensor, thresholds: tuple[float, ...],
                  width: float = SOFT_CSI_WIDTH) -> Tensor:
    """``1 -`` the mean over ``thresholds`` (all > 0) of the soft CSI of ``pred`` against ``truth`` events."""
    losses = []
    keep = valid.to(pred.dtype)
    for threshold in thresholds:
        forecast = torch.sigmoid((pred - threshold) / (width * threshold)) * keep
        observed = (truth >= threshold).to(pred.dtype) * keep
        hits = (forecast * observed).sum()
        misses = ((keep - forecast) * observed).sum()
        false_alarms = (forecast * (keep - observed)).sum()
        losses.append(1.0 - hits / (hits + misses + false_alarms).clamp_min(1e-6))
    return torch.stack(losses).mean()


def spectrum_loss(pred: Tensor, truth: Tensor, valid: Tensor) -> Tensor:
    """Mean log-spectral distance of the frames (:func:`~sfp.metrics.spectrum.log_spectrum_distance`)."""
    return log_spectrum_distance(pred, torch.where(valid, truth, torch.zeros_like(truth))).mean()


def surrogate_for_task(task: TaskSpec) -> Surrogate:
    """The differentiable stand-in for ``task``'s headline metric."""
    if task.headline == "csi_m" and task.thresholds:
        return lambda pred, truth, valid: soft_csi_loss(pred, truth, valid, tuple(task.thresholds))
    if task.headline == "tke_error":
        return spectrum_loss
    if task.headline == "ssim":
        return lambda pred, truth, valid: 1.0 - ssim(pred, torch.where(valid, truth, pred.detach()),
                                                     task.data_range)
    raise UserError(f"no differentiable surrogate for the {task.name} task's headline metric {task.headline!r}")
