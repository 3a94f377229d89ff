"""Bring composites of different networks to one grid spacing and one time step.

Space: block means of the valid pixels over ``factor x factor`` blocks (a block with fewer than half of its pixels
valid is missing, so missing stays missing and is never averaged into zero rain). Time: the frames whose times lie
on the step (minute of the day a multiple of ``step_minutes``), which must follow each other without a gap.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from sfp.errors import UserError


def block_factor(pixel_m: float, spacing_km: float) -> int:
    """How many source pixels of ``pixel_m`` metres make one target pixel of ``spacing_km``; a whole number."""
    factor = spacing_km * 1000.0 / pixel_m
    if not np.isfinite(factor) or factor < 1 or abs(factor - round(factor)) > 1e-6:
        raise UserError(f"a {pixel_m:g} m grid cannot be block-averaged to {spacing_km:g} km")
    return int(round(factor))


def block_mean(field: np.ndarray, factor: int, min_valid: float = 0.5) -> np.ndarray:
    """Mean of the finite values of each ``factor x factor`` block of ``(..., H, W)`` (edges cropped).

    A block with fewer than ``min_valid`` of its pixels finite is NaN.
    """
    height, width = (side // factor * factor for side in field.shape[-2:])
    blocks = field[..., :height, :width].reshape(*field.shape[:-2], height // factor, factor, width // factor, factor)
    valid = np.isfinite(blocks)
    counts = valid.sum(axis=(-3, -1))
    sums = np.where(valid, blocks, 0.0).sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return np.where(counts >= min_valid * factor * factor, means, np.nan).astype(np.float32)


def on_step(times: list[datetime], step_minutes: int) -> list[int]:
    """Indices of the times on the step grid; a UserError when they do not follow each other by one step."""
    keep = [i for i, t in enumerate(times) if (t.hour * 60 + t.minute) % step_minutes == 0 and t.second == 0]
    step = timedelta(minutes=step_minutes)
    for a, b in zip(keep, keep[1:]):
        if times[b] - times[a] != step:
            raise UserError(f"frames at {times[a]:%Y-%m-%d %H:%M} and {times[b]:%H:%M} are not {step_minutes} min "
                            "apart")
    return keep
