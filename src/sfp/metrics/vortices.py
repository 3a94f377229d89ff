"""Vortex census of 2-D vorticity fields on a periodic domain (the Navier–Stokes task's channel).

Two-dimensional turbulence organizes itself into long-lived coherent vortices whose number, positions, signs and
strengths carry its dynamics (merging, the inverse cascade). No loss asks for them: MSE is content to blur a
misplaced vortex away (the double penalty), and the TKE spectrum error is blind to where vortices are, so a
forecast with every vortex in the wrong place can score a perfect spectrum. The census counts the vortices a
forecast gets right.

Cores by the Okubo–Weiss criterion (Okubo 1970, Weiss 1991): ``W = s_n² + s_s² − ω²`` with the normal and shear
strains ``s_n = ∂u/∂x − ∂v/∂y``, ``s_s = ∂v/∂x + ∂u/∂y``; rotation dominates strain where W < 0, and a core is a
connected region (8-connected, joined across the periodic edges) where ``W < −level · σ_W``, σ_W the standard
deviation of W over the frame (level 0.2, as in Isern-Fontanet et al. 2003), split by the sign of ω. The velocity
comes from the streamfunction (``−Δψ = ω``), spectrally on the torus; W is in units of ω², so the grid spacing
does not matter. A core's position is its plain centroid, its strength the peak |ω| inside it.

Truth and forecast cores of the same sign are matched as in :mod:`sfp.metrics.objects` (distances the short way
round the torus): hits, misses, false alarms and the matched pairs' summed distances and peak-|ω| errors, summed
over both signs and all frames per sample, read by :func:`sfp.metrics.objects.object_scores`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from sfp.metrics._common import check_pair, positive_float, positive_int
from sfp.metrics.objects import COUNT_NAMES, Objects, frames, label_regions, pair_counts, region_objects

OKUBO_WEISS_LEVEL = 0.2


def okubo_weiss(vorticity: np.ndarray) -> np.ndarray:
    """The Okubo–Weiss field ``(..., H, W)`` of periodic vorticity fields ``(..., H, W)`` (mean vorticity removed,
    as a periodic streamfunction cannot carry it)."""
    height, width = vorticity.shape[-2:]
    kx = 2 * np.pi * np.fft.fftfreq(height)[:, None]
    ky = 2 * np.pi * np.fft.fftfreq(width)[None, :]
    squared = kx**2 + ky**2
    squared[0, 0] = 1.0
    streamfunction = np.fft.fft2(vorticity) / squared
    streamfunction[..., 0, 0] = 0.0

    def second_derivative(factor: np.ndarray) -> np.ndarray:
        return np.fft.ifft2(-factor * streamfunction).real

    psi_xx, psi_yy, psi_xy = (second_derivative(f) for f in (kx**2, ky**2, kx * ky))
    # u = ∂ψ/∂y, v = −∂ψ/∂x: s_n = 2 ψ_xy, s_s = ψ_yy − ψ_xx, ω = −(ψ_xx + ψ_yy)
    return (2 * psi_xy) ** 2 + (psi_yy - psi_xx) ** 2 - (psi_xx + psi_yy) ** 2


def find_vortices(vorticity: np.ndarray, level: float = OKUBO_WEISS_LEVEL, min_size: int = 1,
                  weiss: np.ndarray | None = None) -> tuple[Objects, Objects]:
    """The positive and the negative vortex cores of one periodic 2-D vorticity frame; ``weiss`` is its
    Okubo–Weiss field where already computed (one batched FFT for many frames is faster)."""
    weiss = okubo_weiss(vorticity) if weiss is None else weiss
    core = weiss < -level * weiss.std()
    strength = np.abs(vorticity)
    cores = []
    for sign in (vorticity > 0, vorticity < 0):
        labels, count = label_regions(core & sign, periodic=True, min_size=min_size)
        cores.append(region_objects(strength, labels, count, periodic=True))
    return cores[0], cores[1]


def vortex_counts(pred: Tensor, target: Tensor, radius: float, level: float = OKUBO_WEISS_LEVEL,
                  min_size: int = 1) -> Tensor:
    """Per-sample sums over all frames and both signs of :data:`~sfp.metrics.objects.COUNT_NAMES`: ``(N, 5)``
    float64, for vorticity forecasts and truth ``(N, ..., H, W)``."""
    check_pair(pred, target, min_dims=3)
    radius = positive_float("radius", radius)
    level = positive_float("level", level)
    min_size = positive_int("min_size", min_size)
    forecast, truth = frames(pred), frames(target)
    forecast_weiss, true_weiss = okubo_weiss(forecast), okubo_weiss(truth)
    period = truth.shape[-2:]
    counts = np.zeros((forecast.shape[0], len(COUNT_NAMES)))
    for sample in range(forecast.shape[0]):
        for frame in range(forecast.shape[1]):
            true_cores = find_vortices(truth[sample, frame], level, min_size, true_weiss[sample, frame])
            forecast_cores = find_vortices(forecast[sample, frame], level, min_size, forecast_weiss[sample, frame])
            for true_sign, forecast_sign in zip(true_cores, forecast_cores):
                counts[sample] += pair_counts(true_sign, forecast_sign, radius, period)
    return torch.from_numpy(counts)
