"""Differentiable stand-ins for the headline metrics: the loss a reviewer would train on instead of planning.

- CSI-M (storms, radar): soft CSI — a pixel counts as a forecast event with probability
  ``sigmoid((pred - t) / (SOFT_CSI_WIDTH * t))`` at each threshold ``t``; hits, misses and false alarms are summed
  over the batch (valid pixels only) and the loss is ``1 - mean over thresholds of hits / (hits + misses + false
  alarms)``. As the width goes to 0 it is 1 - CSI-M. On block maxima (``pool``) it stands in for object CSI.
- TKE spectrum error (navier_stokes): the mean squared log10 ratio of the forecast's and the truth's shell
  energies over the de-aliased band (differentiable wherever the energies are positive).
- SSIM (flame): ``1 - SSIM``.
- SAL's ``|S| + |A| + L`` (a reward, :mod:`sfp.metrics.sal`): soft SAL, each term without its objects — A exactly
  (domain means), L1 exactly (centres of mass), and, on the pixels above the threshold softly
  (``sigmoid((value - R*) / (width R*))``, R* the paper's ``threshold_factor`` times the field's wet ``quantile``),
  the whole wet area taken as one object: its scaled volume (mass over its maximum) for S, the mass-weighted
  distance of its pixels from the centre of mass for L2.
- The vortex census (navier_stokes, :mod:`sfp.metrics.vortices`): soft vortex CSI — the Okubo–Weiss field computed
  differentiably (spectrally, on the torus), a pixel a core of each sign with probability
  ``sigmoid((-W / σ_W - level) / width) · sigmoid(±ω / (width σ_ω))``, soft CSI against the truth's cores on
  ``pool``-block maxima (a core displaced within a block still hits, as cores within the radius match).
- Strong-core CSI (ocean): soft CSI of the day being a category II core, ``sigmoid((pred - level) / (width *
  (level - seas)))`` with ``level = seas + 2 (thresh - seas)``, against the truth's cores (found with the duration
  rule after the context); the forecast side has no duration rule, which is what a gradient cannot see. Needs each
  batch's window: bind with :func:`~sfp.metrics.heatwave_scores.bind_window`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.metrics._common import check_thresholds, positive_float, positive_int
from sfp.metrics.functional import ssim
from sfp.metrics.heatwave_scores import Window, classify, day_classes
from sfp.metrics.sal import PAPER_THRESHOLD_FACTOR
from sfp.metrics.spectrum import log_spectrum_distance
from sfp.metrics.vortices import OKUBO_WEISS_LEVEL
from sfp.registry import Registry
from sfp.task import TaskSpec

SOFT_CSI_WIDTH = 0.1  # of each threshold: the sigmoid's scale
Surrogate = Callable[[Tensor, Tensor, Tensor], Tensor]  # (forecast, truth, valid) in data units -> loss


def _block_maxima(pred: Tensor, truth: Tensor, valid: Tensor, pool: int) -> tuple[Tensor, Tensor, Tensor]:
    """Each frame's ``pool x pool`` block maxima of the valid pixels (a block with none is left out)."""
    def blocks(values: Tensor) -> Tensor:
        frames = torch.where(valid, values, -torch.inf).reshape(-1, 1, *values.shape[-2:])
        return torch.nn.functional.max_pool2d(frames, pool, ceil_mode=True)

    pooled_pred, pooled_truth = blocks(pred), blocks(truth)
    seen = torch.isfinite(pooled_truth)
    return torch.where(seen, pooled_pred, 0.0), torch.where(seen, pooled_truth, 0.0), seen


def _soft_csi_loss(forecast: Tensor, observed: Tensor, keep: Tensor) -> Tensor:
    """``1 - hits / (hits + misses + false alarms)`` of event probabilities ``forecast`` against events
    ``observed`` (0 or 1), summed where ``keep`` is 1."""
    hits = (forecast * observed).sum()
    misses = ((keep - forecast) * observed).sum()
    false_alarms = (forecast * (keep - observed)).sum()
    return 1.0 - hits / (hits + misses + false_alarms).clamp_min(1e-6)


def soft_csi_loss(pred: Tensor, truth: Tensor, valid: Tensor, thresholds: tuple[float, ...],
                  width: float = SOFT_CSI_WIDTH, pool: int = 1) -> Tensor:
    """``1 -`` the mean over ``thresholds`` (all > 0) of the soft CSI of ``pred`` against ``truth`` events; with
    ``pool > 1`` of the frames' ``pool x pool`` block maxima: an event anywhere in a block counts for the block, so
    a cell displaced within it still hits (the differentiable neighbour of object CSI, whose cells match within a
    radius)."""
    if pool > 1:
        pred, truth, valid = _block_maxima(pred, truth, valid, pool)
    losses = []
    keep = valid.to(pred.dtype)
    for threshold in thresholds:
        forecast = torch.sigmoid((pred - threshold) / (width * threshold)) * keep
        observed = (truth >= threshold).to(pred.dtype) * keep
        losses.append(_soft_csi_loss(forecast, observed, keep))
    return torch.stack(losses).mean()


def soft_core_loss(pred: Tensor, truth: Tensor, valid: Tensor, context: Tensor, seas: Tensor, thresh: Tensor,
                   level: float = 2.0, width: float = SOFT_CSI_WIDTH) -> Tensor:
    """``1 -`` the soft CSI of heatwave days of at least category ``level`` (module docstring); ``context``,
    ``seas`` and ``thresh`` as :data:`~sfp.metrics.heatwave_scores.Window`."""
    days = slice(context.shape[1], None)
    keep = valid.to(pred.dtype)
    excess = (thresh[:, days] - seas[:, days]).clamp_min(1e-3)
    forecast = torch.sigmoid((pred - seas[:, days] - level * excess) / (width * level * excess)) * keep
    truth = torch.where(valid, truth, torch.nan)
    observed = (day_classes(classify(context, truth, seas, thresh)) >= level).to(pred.dtype) * keep
    return _soft_csi_loss(forecast, observed, keep)


class HeatwaveSurrogate:
    """:func:`soft_core_loss` at ``level``; :meth:`given` binds a batch's window and returns the surrogate."""

    def __init__(self, level: float) -> None:
        self.level = level

    def __repr__(self) -> str:
        return f"HeatwaveSurrogate(level={self.level:g})"

    def given(self, window: Window) -> Surrogate:
        """The surrogate of the full batch of ``window`` (forecasts and truths in its order)."""
        return partial(soft_core_loss, context=window.context, seas=window.seas, thresh=window.thresh,
                       level=self.level)


def spectrum_loss(pred: Tensor, truth: Tensor, valid: Tensor) -> Tensor:
    """Mean log-spectral distance of the frames (:func:`~sfp.metrics.spectrum.log_spectrum_distance`)."""
    return log_spectrum_distance(pred, torch.where(valid, truth, torch.zeros_like(truth))).mean()


def soft_csi_surrogate(thresholds: Sequence[float], pool: int = 1, width: float = SOFT_CSI_WIDTH) -> Surrogate:
    """Soft CSI at ``thresholds`` on ``pool``-block maxima (:func:`soft_csi_loss`), checked: the stand-in a
    pipeline's ``surrogate_loss: {name: soft_csi, ...}`` puts in place of the task's (e.g. at an object reward's
    thresholds)."""
    levels = check_thresholds(thresholds)
    pool, width = positive_int("pool", pool), positive_float("width", width)
    if min(levels) <= 0:
        raise UserError(f"soft CSI thresholds must be > 0, got {list(levels)}")
    return partial(soft_csi_loss, thresholds=levels, width=width, pool=pool)


def _normalized_difference(forecast: Tensor, truth: Tensor) -> Tensor:
    return (forecast - truth) / (0.5 * (forecast + truth)).clamp_min(1e-6)


def soft_sal_loss(pred: Tensor, truth: Tensor, valid: Tensor, threshold_factor: float = PAPER_THRESHOLD_FACTOR,
                  quantile: float = 0.95, width: float = SOFT_CSI_WIDTH) -> Tensor:
    """The mean over frames of soft ``|S| + |A| + L`` (module docstring) of ``pred`` against ``truth``
    ``(..., H, W)``, missing truth as no rain on both sides."""
    keep = valid.to(pred.dtype)
    pred = (pred.clamp_min(0.0) * keep).reshape(-1, *pred.shape[-2:])
    truth = (torch.nan_to_num(truth).clamp_min(0.0) * keep).reshape(-1, *truth.shape[-2:])
    height, width_px = truth.shape[-2:]
    diagonal = (height**2 + width_px**2) ** 0.5
    rows = torch.arange(height, dtype=pred.dtype, device=pred.device)[:, None].expand(height, width_px)
    columns = torch.arange(width_px, dtype=pred.dtype, device=pred.device)[None, :].expand(height, width_px)

    def summary(field: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        wet = torch.where(field > 0, field, torch.nan).flatten(1).detach()
        level = (threshold_factor * torch.nanquantile(wet, quantile, dim=1).nan_to_num(1.0)).clamp_min(1e-6)
        level = level[:, None, None]
        mass = field.sum((-2, -1)).clamp_min(1e-6)
        centre = torch.stack([(field * rows).sum((-2, -1)), (field * columns).sum((-2, -1))], -1) / mass[:, None]
        inside = field * torch.sigmoid((field - level) / (width * level))
        inside_mass = inside.sum((-2, -1)).clamp_min(1e-6)
        peak = inside.flatten(1).amax(1).clamp_min(1e-6)
        distance = torch.hypot(rows - centre[:, None, None, 0], columns - centre[:, None, None, 1])
        spread = (inside * distance).sum((-2, -1)) / inside_mass
        return field.mean((-2, -1)), inside_mass / peak, centre, spread

    f_mean, f_volume, f_centre, f_spread = summary(pred)
    t_mean, t_volume, t_centre, t_spread = summary(truth)
    amplitude = _normalized_difference(f_mean, t_mean).abs()
    structure = _normalized_difference(f_volume, t_volume).abs()
    location = ((f_centre - t_centre).norm(dim=-1) + 2 * (f_spread - t_spread).abs()) / diagonal
    return (structure + amplitude + location).mean()


def soft_sal_surrogate(threshold_factor: float = PAPER_THRESHOLD_FACTOR, quantile: float = 0.95,
                       width: float = SOFT_CSI_WIDTH) -> Surrogate:
    """Soft SAL (:func:`soft_sal_loss`) at these options, checked."""
    positive_float("threshold_factor", threshold_factor)
    positive_float("width", width)
    if not 0 < quantile <= 1:
        raise UserError(f"quantile must be in (0, 1], got {quantile!r}")
    return partial(soft_sal_loss, threshold_factor=threshold_factor, quantile=quantile, width=width)


def _okubo_weiss(vorticity: Tensor) -> Tensor:
    """:func:`sfp.metrics.vortices.okubo_weiss` in torch, differentiable: ``W`` of periodic fields ``(..., H, W)``."""
    height, width = vorticity.shape[-2:]
    kx = (2 * torch.pi * torch.fft.fftfreq(height, device=vorticity.device))[:, None]
    ky = (2 * torch.pi * torch.fft.fftfreq(width, device=vorticity.device))[None, :]
    squared = kx**2 + ky**2
    squared[0, 0] = 1.0
    mean_free = torch.ones_like(squared)
    mean_free[0, 0] = 0.0  # a periodic streamfunction carries no mean vorticity
    streamfunction = torch.fft.fft2(vorticity) / squared * mean_free

    def second_derivative(factor: Tensor) -> Tensor:
        return torch.fft.ifft2(-factor * streamfunction).real

    psi_xx, psi_yy, psi_xy = (second_derivative(f) for f in (kx**2, ky**2, kx * ky))
    return (2 * psi_xy) ** 2 + (psi_yy - psi_xx) ** 2 - (psi_xx + psi_yy) ** 2


def _periodic_block_maxima(values: Tensor, pool: int) -> Tensor:
    """``pool x pool`` block maxima of frames ``(N, H, W)`` (the last blocks cut short at the edges)."""
    return torch.nn.functional.max_pool2d(values[:, None], pool, ceil_mode=True)[:, 0]


def soft_vortex_loss(pred: Tensor, truth: Tensor, valid: Tensor, level: float = OKUBO_WEISS_LEVEL,
                     pool: int = 4, width: float = SOFT_CSI_WIDTH) -> Tensor:
    """``1 -`` the mean over the two signs of the soft CSI of vortex cores (module docstring) of vorticity ``pred``
    against ``truth`` ``(..., H, W)``, on ``pool``-block maxima."""
    pred = pred.reshape(-1, *pred.shape[-2:])
    truth = torch.where(valid, truth, 0.0).reshape(-1, *truth.shape[-2:])
    losses = []
    for sign in (1.0, -1.0):
        fields = []
        for field, soft in ((pred, True), (truth, False)):
            weiss = _okubo_weiss(field)
            scale = weiss.std((-2, -1), keepdim=True).clamp_min(1e-12)
            if soft:
                spin = field.std((-2, -1), keepdim=True).clamp_min(1e-12)
                core = torch.sigmoid((-weiss / scale - level) / width) * torch.sigmoid(sign * field / (width * spin))
            else:
                core = ((weiss < -level * scale) & (sign * field > 0)).to(pred.dtype)
            fields.append(_periodic_block_maxima(core, pool))
        forecast, observed = fields
        losses.append(_soft_csi_loss(forecast, observed, torch.ones_like(observed)))
    return torch.stack(losses).mean()


def soft_vortex_surrogate(level: float = OKUBO_WEISS_LEVEL, pool: int = 4, width: float = SOFT_CSI_WIDTH
                          ) -> Surrogate:
    """Soft vortex CSI (:func:`soft_vortex_loss`) at these options, checked."""
    return partial(soft_vortex_loss, level=positive_float("level", level), pool=positive_int("pool", pool),
                   width=positive_float("width", width))


SURROGATES: Registry[Callable[..., Surrogate]] = Registry.of("surrogate", {
    "soft_csi": soft_csi_surrogate, "soft_sal": soft_sal_surrogate, "soft_vortices": soft_vortex_surrogate})


def get_surrogate(spec: Mapping[str, Any]) -> Surrogate:
    """The surrogate ``{"name": ..., **options}`` names (:data:`SURROGATES`), its options checked: one line for an
    unknown name or option."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise UserError(f"a surrogate loss is {{name: {' | '.join(SURROGATES.names())}, ...its options}}; got "
                        f"{spec!r}"[:300])
    factory = SURROGATES.get(spec["name"])
    options = {key: value for key, value in spec.items() if key != "name"}
    try:
        return factory(**options)
    except TypeError as err:
        raise UserError(f"surrogate {spec['name']!r}: {err}") from None


def surrogate_for_task(task: TaskSpec) -> Surrogate | HeatwaveSurrogate:
    """The differentiable stand-in for ``task``'s headline metric (heatwave tasks: a :class:`HeatwaveSurrogate`,
    to bind to each batch's window)."""
    if task.heatwaves and task.headline in ("strong_core_csi", "mhw_csi"):
        return HeatwaveSurrogate(2.0 if task.headline == "strong_core_csi" else 1.0)
    if task.headline == "csi_m" and task.thresholds:
        return lambda pred, truth, valid: soft_csi_loss(pred, truth, valid, tuple(task.thresholds))
    if task.headline == "tke_error":
        return spectrum_loss
    if task.headline == "ssim":
        return lambda pred, truth, valid: 1.0 - ssim(pred, torch.where(valid, truth, pred.detach()),
                                                     task.data_range)
    raise UserError(f"no differentiable surrogate for the {task.name} task's headline metric {task.headline!r}")
