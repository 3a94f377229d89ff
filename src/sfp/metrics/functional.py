"""Metrics as pure torch functions: per sample with ``reduction="none"`` (the planner's rewards), scalar with "mean".

This module holds the continuous scores (MSE, MAE, PSNR, SSIM, CRPS) and re-exports the event scores
(:mod:`sfp.metrics.events`) and the spectra (:mod:`sfp.metrics.spectrum`), so that every pure metric function can
be imported from here. Missing target values are NaN and are left out of MSE, MAE, PSNR and CRPS.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sfp.errors import UserError
from sfp.metrics._common import (
    as_float,
    check_pair,
    check_reduction,
    masked_mean,
    positive_float,
    reduce_samples,
    separable_filter,
)
from sfp.metrics.events import contingency, csi, csi_m, fss, fss_sums, scores
from sfp.metrics.spectrum import scalar_spectrum, tke_spectrum, tke_spectrum_error

__all__ = [
    "mse", "mae", "psnr", "ssim", "crps", "masked_errors", "crps_elements",
    "contingency", "scores", "csi", "csi_m", "fss", "fss_sums",
    "tke_spectrum", "scalar_spectrum", "tke_spectrum_error",
]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def masked_errors(pred: Tensor, target: Tensor, power: int) -> tuple[Tensor, Tensor]:
    """Elementwise ``|pred - target| ** power``, zero where the target is NaN, and the mask of valid entries."""
    check_pair(pred, target)
    pred, target = as_float(pred, target)
    valid = ~torch.isnan(target)
    error = (pred - target).abs().pow(power)
    return torch.where(valid, error, 0.0), valid


def mse(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error over the non-NaN targets; "none" gives ``(B,)`` (NaN for a sample with no valid value)."""
    check_reduction(reduction)
    return masked_mean(*masked_errors(pred, target, 2), reduction)


def mae(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean absolute error over the non-NaN targets; "none" gives ``(B,)``."""
    check_reduction(reduction)
    return masked_mean(*masked_errors(pred, target, 1), reduction)


def psnr(pred: Tensor, target: Tensor, data_range: float, reduction: str = "mean") -> Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range² / MSE)``, with the MSE of each sample.

    "none" gives ``(B,)``; "mean" is the mean of the per-sample values. A perfect sample scores +inf.
    """
    check_reduction(reduction)
    positive_float("data_range", data_range)
    per_sample = 10.0 * torch.log10(data_range**2 / mse(pred, target, reduction="none"))
    return reduce_samples(per_sample, reduction)


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> Tensor:
    """The normalized 1-D Gaussian of SSIM (11 taps, σ = 1.5); the 2-D window is its outer product."""
    offsets = torch.arange(SSIM_WINDOW, dtype=dtype, device=device) - (SSIM_WINDOW - 1) / 2
    weights = torch.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    return weights / weights.sum()


def _gaussian_blur(images: Tensor) -> Tensor:
    """Gaussian-weighted local means of ``(F, H, W)`` images, same size, with reflected borders."""
    pad = SSIM_WINDOW // 2
    padded = F.pad(images[None], (pad, pad, pad, pad), mode="reflect")[0]
    return separable_filter(padded, _gaussian_window(images.dtype, images.device))


def ssim(pred: Tensor, target: Tensor, data_range: float, reduction: str = "mean") -> Tensor:
    """Structural similarity (Wang et al. 2004) per frame and channel, averaged; inputs ``(B, ..., H, W)``.

    Gaussian window of 11 taps with σ = 1.5, ``C1 = (0.01 R)²``, ``C2 = (0.03 R)²`` with ``R = data_range``;
    local statistics are taken over reflect-padded images and the SSIM map is averaged over every pixel, which is
    the convention of torchmetrics' ``StructuralSimilarityIndexMeasure``. "none" gives ``(B,)``, the mean over all
    frames and channels of each sample; "mean" the mean over samples.
    """
    check_reduction(reduction)
    check_pair(pred, target, min_dims=3)
    positive_float("data_range", data_range)
    height, width = pred.shape[-2:]
    if min(height, width) <= SSIM_WINDOW // 2:
        raise UserError(f"SSIM needs frames larger than {SSIM_WINDOW // 2} pixels, got {height}x{width}")
    pred, target = as_float(pred, target)
    x = pred.reshape(-1, height, width)
    y = target.reshape(-1, height, width)
    stats = _gaussian_blur(torch.cat([x, y, x * x, y * y, x * y])).chunk(5)
    mu_x, mu_y, xx, yy, xy = stats
    var_x = (xx - mu_x**2).clamp(min=0)
    var_y = (yy - mu_y**2).clamp(min=0)
    cov = xy - mu_x * mu_y
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    per_sample = ssim_map.reshape(pred.shape[0], -1).mean(1)
    return reduce_samples(per_sample, reduction)


def crps_elements(ensemble: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Elementwise ensemble CRPS ``E|X − y| − ½ E|X − X'|`` of ``(B, M, ...)`` members against ``(B, ...)`` truth.

    ``E|X − X'|`` runs over all M² ordered member pairs (the energy form, which reduces to ``|x − y|`` for M = 1),
    computed in O(M log M) from the sorted members: ``Σ_{m,m'} |x_m − x_m'| = 2 Σ_i (2i − M − 1) x_(i)``. Returns
    the values (zero where the target is NaN) and the mask of valid entries.
    """
    if ensemble.dim() < 2 or ensemble.shape[0] != target.shape[0] or ensemble.shape[2:] != target.shape[1:]:
        raise UserError(
            f"ensemble must be (B, M, ...) matching target (B, ...); got {tuple(ensemble.shape)} "
            f"and {tuple(target.shape)}"
        )
    ensemble, target = as_float(ensemble, target)
    members = ensemble.shape[1]
    valid = ~torch.isnan(target)
    skill = (ensemble - target.unsqueeze(1)).abs().mean(1)
    rank = torch.arange(1, members + 1, dtype=ensemble.dtype, device=ensemble.device)
    weights = ((2 * rank - members - 1) / members**2).view(1, members, *([1] * (ensemble.dim() - 2)))
    half_spread = (ensemble.sort(dim=1).values * weights).sum(1)
    value = skill - half_spread
    return torch.where(valid, value, 0.0), valid


def crps(ensemble: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Continuous ranked probability score of an ensemble ``(B, M, ...)`` against ``(B, ...)``; lower is better.

    Averaged over the non-NaN target entries, per sample with "none". Equals the MAE when M = 1.
    """
    check_reduction(reduction)
    return masked_mean(*crps_elements(ensemble, target), reduction)
