"""Losses of the published peers SFP is compared with at matched MSE (Table 1's peer rows), added to the MSE like
the differentiable surrogate (:mod:`sfp.metrics.surrogates`).

- Balanced MSE (Shi et al. 2017, "Deep learning for precipitation nowcasting: a benchmark and a new model"): each
  pixel's squared error weighted by the intensity bin of its truth.
- FACL (Yan et al. 2024, "Fourier Amplitude and Correlation Loss: Beyond Using L2 Loss for Skillful Precipitation
  Nowcasting"): the Fourier amplitude loss (FAL) or the Fourier correlation loss (FCL), one of them per training
  step, drawn by the paper's schedule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.metrics._common import check_pair
from sfp.metrics.surrogates import Surrogate, get_surrogate, surrogate_for_task
from sfp.options import require_finite
from sfp.task import TaskSpec

FIRST_BIN_WEIGHT = 2.0  # Shi et al.: rain at or above their first edge (2 mm/h) weighs 2, below it 1
FACL_ALPHA = 0.1  # FACL's last fraction of training on FAL alone (the authors' SEVIR setting)


def balanced_mse(pred: Tensor, target: Tensor, edges: Sequence[float], weights: Sequence[float],
                 valid: Tensor | None = None, scale: float = 1.0) -> Tensor:
    """Mean over the valid pixels of ``w(target) * ((pred - target) / scale) ** 2``.

    ``edges`` ascending, in the target's units; ``weights`` one more than ``edges``: ``weights[0]`` below
    ``edges[0]``, ``weights[i]`` for ``edges[i-1] <= target < edges[i]``, ``weights[-1]`` at or above the last edge.
    """
    check_pair(pred, target)
    if len(weights) != len(edges) + 1 or list(edges) != sorted(edges):
        raise UserError(f"balanced MSE needs ascending edges and one weight more: {list(edges)}, {list(weights)}")
    boundaries = torch.as_tensor(edges, dtype=target.dtype, device=target.device)
    weight = torch.as_tensor(weights, dtype=pred.dtype, device=pred.device)[
        torch.bucketize(target, boundaries, right=True)]
    keep = torch.ones_like(target, dtype=torch.bool) if valid is None else valid
    squared = torch.where(keep, weight * ((pred - target) / scale) ** 2, torch.zeros_like(pred))
    return squared.sum() / keep.sum().clamp_min(1)


def balanced_mse_bins(task: TaskSpec) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The bins of ``task``: its event thresholds as edges, each bin weighing in proportion to its lower edge, the
    first edge ``FIRST_BIN_WEIGHT`` and values below it 1. On Shi et al.'s edges (2, 5, 10, 30 mm/h) that is their
    1, 2, 5, 10, 30; storms (VIL 16 ... 219) get 1, 2, 9.25, 16.6, 20, 22.6, 27.4."""
    if not task.thresholds:
        raise UserError(f"balanced MSE bins intensities by event thresholds; the {task.name} task has none")
    edges = tuple(sorted(task.thresholds))
    return edges, (1.0, *(FIRST_BIN_WEIGHT * edge / edges[0] for edge in edges))


def balanced_mse_for_task(task: TaskSpec) -> Surrogate:
    """Balanced MSE on ``task``'s bins, errors on ``value / task.value_scale`` (the scale its MSE is reported on)."""
    edges, weights = balanced_mse_bins(task)
    return lambda pred, truth, valid: balanced_mse(pred, truth, edges, weights, valid, task.value_scale)


def _spectra(pred: Tensor, truth: Tensor, valid: Tensor | None, scale: float) -> tuple[Tensor, Tensor]:
    """Orthonormal 2-D FFTs over the last two axes of both fields, invalid pixels set to 0 in both."""
    check_pair(pred, truth, min_dims=2)
    if valid is not None:
        pred, truth = (torch.where(valid, field, torch.zeros_like(field)) for field in (pred, truth))
    return (torch.fft.fft2(field / scale, norm="ortho") for field in (pred, truth))


def fourier_amplitude_loss(pred: Tensor, truth: Tensor, valid: Tensor | None = None, scale: float = 1.0) -> Tensor:
    """FAL: the mean squared difference of the two fields' Fourier amplitudes (orthonormal 2-D FFT of each
    ``H × W`` frame). Blind to phase: 0 between a periodic field and any shift of it."""
    pred_spectrum, truth_spectrum = _spectra(pred, truth, valid, scale)
    return (pred_spectrum.abs() - truth_spectrum.abs()).pow(2).mean()


def fourier_correlation_loss(pred: Tensor, truth: Tensor, valid: Tensor | None = None,
                             scale: float = 1.0) -> Tensor:
    """FCL: ``1 - Re Σ conj(P) T / sqrt(Σ |P|² Σ |T|²)`` over every Fourier coefficient of the batch (one
    correlation for the batch, as the paper); 0 for identical fields, 1 when either field is all zero."""
    pred_spectrum, truth_spectrum = _spectra(pred, truth, valid, scale)
    inner = (pred_spectrum.conj() * truth_spectrum).sum().real
    norms = (pred_spectrum.abs().pow(2).sum() * truth_spectrum.abs().pow(2).sum()).sqrt()
    return 1.0 - inner / norms.clamp_min(1e-12)


def facl_amplitude_probability(step: int, total_steps: int, alpha: float = FACL_ALPHA) -> float:
    """The chance that FACL's step ``step`` (from 0) of ``total_steps`` trains on FAL rather than FCL: rising
    linearly from 0 to 1 over the first ``1 - alpha`` of training, then 1 (the paper's random scheduling)."""
    require_finite("alpha", alpha, minimum=0.0)
    ramp = (1.0 - alpha) * total_steps
    return 1.0 if ramp <= 0 else min(1.0, step / ramp)


def facl_uses_amplitude(step: int, total_steps: int, alpha: float = FACL_ALPHA, seed: int = 0) -> bool:
    """Whether step ``step`` trains on FAL: one uniform draw seeded by ``(seed, step)`` against
    :func:`facl_amplitude_probability`, so a resumed run draws what the interrupted one did."""
    return float(np.random.default_rng([seed, step]).random()) < facl_amplitude_probability(step, total_steps, alpha)


def facl_loss(pred: Tensor, truth: Tensor, amplitude: bool, valid: Tensor | None = None,
              scale: float = 1.0) -> Tensor:
    """FACL at one step: ``sqrt(H W)`` times FAL (``amplitude``) or FCL, the paper's scaling of both terms.
    ``amplitude`` comes from :func:`facl_uses_amplitude`; values are divided by ``scale`` (the paper's fields lie in
    [0, 1]: use the task's ``value_scale``)."""
    term = fourier_amplitude_loss if amplitude else fourier_correlation_loss
    return math.sqrt(pred.shape[-2] * pred.shape[-1]) * term(pred, truth, valid, scale)


class ScheduledFACL:
    """FACL on ``task``'s fields, its term drawn per training step (:func:`facl_uses_amplitude`): bind a step with
    :meth:`at` to get the loss of that step."""

    def __init__(self, task: TaskSpec, seed: int = 0):
        self.scale, self.seed = task.value_scale, seed

    def at(self, step: int, total_steps: int) -> Surrogate:
        amplitude = facl_uses_amplitude(step, total_steps, seed=self.seed)
        return lambda pred, truth, valid: facl_loss(pred, truth, amplitude, valid, self.scale)


PEER_LOSSES = ("surrogate", "balanced_mse", "facl")  # what SFPModule's ``peer`` may add to the MSE


def peer_loss(name: str, task: TaskSpec, seed: int = 0, surrogate: Mapping[str, Any] | None = None) -> Any:
    """The differentiable loss ``name`` (:data:`PEER_LOSSES`) on ``task``: the headline metric's stand-in
    (:func:`~sfp.metrics.surrogates.surrogate_for_task`; with ``surrogate``, the one it names,
    :func:`~sfp.metrics.surrogates.get_surrogate`), balanced MSE, or FACL (a :class:`ScheduledFACL`)."""
    if name == "surrogate":
        return get_surrogate(surrogate) if surrogate is not None else surrogate_for_task(task)
    if name == "balanced_mse":
        return balanced_mse_for_task(task)
    if name == "facl":
        return ScheduledFACL(task, seed)
    raise UserError(f"unknown peer loss {name!r}; known: {', '.join(PEER_LOSSES)}")


def bind_step(loss: Any, step: int, total_steps: int) -> Any:
    """A per-step loss (:class:`ScheduledFACL`) at ``step`` of ``total_steps``; any other loss as it is."""
    return loss.at(step, total_steps) if isinstance(loss, ScheduledFACL) else loss
