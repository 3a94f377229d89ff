"""Input checks and reductions shared by the metric functions.

Every metric takes the sample axis first (``(B, T, C, H, W)`` fields, ``(N, C, H, W)`` images, ``(B, T, N)``
series); ``reduction="none"`` returns one value per sample along that axis and ``"mean"`` one scalar.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from sfp.errors import UserError


def check_reduction(reduction: str, allowed: tuple[str, ...] = ("mean", "none")) -> None:
    """Reject an unknown reduction name."""
    if reduction not in allowed:
        raise UserError(f"unknown reduction {reduction!r}; expected one of {', '.join(allowed)}")


def check_pair(pred: Tensor, target: Tensor, min_dims: int = 1) -> None:
    """Reject predictions and targets of different shapes, or with fewer than ``min_dims`` axes."""
    if pred.shape != target.shape:
        raise UserError(f"prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
    if pred.dim() < min_dims:
        raise UserError(f"expected at least {min_dims} axes (sample axis first), got shape {tuple(pred.shape)}")


def check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    """Event thresholds as a non-empty tuple of floats (no NaN)."""
    try:
        values = tuple(float(t) for t in thresholds)
    except (TypeError, ValueError):
        values = ()
    if not values or any(math.isnan(t) for t in values):
        raise UserError(f"thresholds must be a non-empty sequence of numbers, got {thresholds!r}")
    return values


def positive_int(name: str, value: int) -> int:
    """Return ``value`` if it is a positive integer (window, pool or sequence length), else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise UserError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def positive_float(name: str, value: float) -> float:
    """Return ``value`` as a float if it is positive and finite (data range, value scale), else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
        raise UserError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def as_float(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Promote integer inputs (e.g. uint8 VIL) to a common floating dtype, at least float32."""
    dtype = torch.promote_types(torch.float32, tensors[0].dtype)
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return tuple(t.to(dtype) for t in tensors)


def per_sample_sum(values: Tensor) -> Tensor:
    """Sum of everything but the first (sample) axis: ``(B, ...) -> (B,)``."""
    return values.reshape(values.shape[0], -1).sum(1)


def masked_mean(values: Tensor, valid: Tensor, reduction: str) -> Tensor:
    """Mean of ``values`` over the entries where ``valid`` holds (``values`` is already zero elsewhere).

    "mean" averages over every valid entry of the batch; "none" per sample. No valid entry gives NaN (0/0).
    """
    if reduction == "mean":
        return values.sum() / valid.sum()
    return per_sample_sum(values) / per_sample_sum(valid)


def reduce_samples(per_sample: Tensor, reduction: str) -> Tensor:
    """Return per-sample values as they are ("none") or their mean over samples ("mean")."""
    return per_sample.mean() if reduction == "mean" else per_sample


def separable_filter(images: Tensor, taps: Tensor) -> Tensor:
    """Correlate the last two axes of ``(..., H, W)`` with the outer product of the 1-D ``taps`` ('valid' size).

    The images become the channels of one depthwise (grouped) convolution per axis, which on CPU is an order of
    magnitude faster than a batch of single-channel images.
    """
    *lead, height, width = images.shape
    channels = images.reshape(1, -1, height, width)
    count, size = channels.shape[1], taps.numel()
    channels = F.conv2d(channels, taps.view(1, 1, size, 1).repeat(count, 1, 1, 1), groups=count)
    channels = F.conv2d(channels, taps.view(1, 1, 1, size).repeat(count, 1, 1, 1), groups=count)
    return channels.reshape(*lead, *channels.shape[-2:])
