"""The field's reference nowcasts of rain rate, with the contract ``(B, T_in, C, H, W) -> (B, T_out, C, H, W)``.

- :func:`extrapolation_nowcast`: Lucas–Kanade motion and semi-Lagrangian advection of the last frame
  (:func:`sfp.models.baselines.optical_flow_forecast`).
- :func:`sprog_nowcast`: S-PROG (Seed 2003), the cascade of the dB field advected and smoothed by AR(2) per scale.
- :func:`steps_mean_nowcast`: the mean rain rate of a STEPS ensemble (Bowler et al. 2006), seeded.

Inputs and outputs are mm/h. Motion comes from the context frames only. Missing context pixels count as no rain,
and the forecasts are finite everywhere (pixels advected in from outside the tile are no rain), so every forecaster
is scored on the same pixels. S-PROG and STEPS work on ``10 log10(R)`` with rain below ``threshold`` mm/h set to
``-15`` dB, the pysteps examples' transformation.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.models.baselines import _check_context, optical_flow_forecast
from sfp.models.common import require_positive
from sfp.registry import Registry

THRESHOLD = 0.1  # mm/h: the rain/no-rain threshold of the dB transform
DRY_DB_BELOW = 5.0  # dB under the threshold's level that stands for "no rain" (-15 dB at 0.1 mm/h)
AR_FRAMES = 3  # S-PROG and STEPS fit AR(2) models, which need the last three frames


def extrapolation_nowcast(context: Tensor, out_frames: int) -> Tensor:
    """Lucas–Kanade motion of the context, the last frame advected along it (missing counted as no rain)."""
    _check_context(context)
    return optical_flow_forecast(context.nan_to_num(0.0), out_frames, method="lucaskanade").nan_to_num(0.0)


def to_db(rain: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """``10 log10(rain)`` where ``rain >= threshold``; ``DRY_DB_BELOW`` dB under the threshold's level elsewhere."""
    level = 10.0 * np.log10(threshold)
    return np.where(rain >= threshold, 10.0 * np.log10(np.maximum(rain, threshold)), level - DRY_DB_BELOW)


def from_db(db: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Back to intensities: 0 at or below the threshold's level, and where the value is missing (NaN)."""
    rain = np.where(db > 10.0 * np.log10(threshold), 10.0 ** (db / 10.0), 0.0)
    return np.nan_to_num(rain, nan=0.0)


def _per_field(context: Tensor, out_frames: int, forecast: Callable[[np.ndarray, int], np.ndarray]) -> Tensor:
    """Apply ``forecast((T, H, W) dB field, out_frames) -> (out_frames, H, W) mm/h`` to every sample and channel."""
    _check_context(context)
    require_positive(out_frames=out_frames)
    if context.shape[1] < AR_FRAMES:
        raise UserError(f"S-PROG and STEPS need at least {AR_FRAMES} context frames, got {context.shape[1]}")
    frames = to_db(context.detach().to("cpu", torch.float64).nan_to_num(0.0).numpy())
    batch, _, channels, height, width = frames.shape
    out = np.empty((batch, out_frames, channels, height, width))
    for b in range(batch):
        for c in range(channels):
            with contextlib.redirect_stdout(io.StringIO()):
                out[b, :, c] = forecast(frames[b, :, c], out_frames)
    return torch.from_numpy(out).to(dtype=context.dtype, device=context.device)


def _pysteps_nowcasts():
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from pysteps import motion, nowcasts
    except ImportError as err:
        raise UserError("S-PROG and STEPS need the nowcast extra: pip install sfp-forecast[nowcast]") from err
    return motion.get_method("lucaskanade"), nowcasts


def _levels(frames: np.ndarray) -> int:
    """Cascade levels: pysteps' 6, fewer on small tiles so the coarsest scale still spans a few pixels."""
    return int(min(6, max(2, np.log2(min(frames.shape[-2:])) - 2)))


def sprog_nowcast(context: Tensor, out_frames: int) -> Tensor:
    """S-PROG from the last three context frames, motion from all of them: ``(B, T, C, H, W) -> (B, out, C, H, W)``."""
    lucaskanade, nowcasts = _pysteps_nowcasts()

    def forecast(db: np.ndarray, steps: int) -> np.ndarray:
        velocity = lucaskanade(db, verbose=False)
        out = nowcasts.get_method("sprog")(
            db[-AR_FRAMES:], velocity, steps, n_cascade_levels=_levels(db), precip_thr=10 * np.log10(THRESHOLD),
            ar_order=2, measure_time=False)
        return from_db(out)

    return _per_field(context, out_frames, forecast)


def steps_mean_nowcast(context: Tensor, out_frames: int, members: int = 16, seed: int = 0,
                       kmperpixel: float = 2.0, timestep: float = 10.0) -> Tensor:
    """Mean rain rate of a ``members``-member STEPS ensemble seeded with ``seed`` (the same seed for every field)."""
    require_positive(members=members)
    lucaskanade, nowcasts = _pysteps_nowcasts()

    def forecast(db: np.ndarray, steps: int) -> np.ndarray:
        velocity = lucaskanade(db, verbose=False)
        ensemble = nowcasts.get_method("steps")(
            db[-AR_FRAMES:], velocity, steps, n_ens_members=members, n_cascade_levels=_levels(db),
            precip_thr=10 * np.log10(THRESHOLD), kmperpixel=kmperpixel, timestep=timestep, ar_order=2,
            noise_method="nonparametric", vel_pert_method="bps", mask_method="incremental", seed=seed,
            measure_time=False)
        return from_db(ensemble).mean(axis=0)

    return _per_field(context, out_frames, forecast)


# the contract of each: the module docstring's
NOWCASTS: Registry[Callable[[Tensor, int], Tensor]] = Registry.of("nowcast", {
    "extrapolation": extrapolation_nowcast, "sprog": sprog_nowcast, "steps_mean": steps_mean_nowcast})
