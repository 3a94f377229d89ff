"""What a Forecaster reads: a batch's shapes checked against the model, time features extended past a short horizon.

A batch is ``(context_x (B, T, d_x), context_y (B, T, *S), target_x (B, H, d_x)[, target_y (B, H, *S)])`` with the
variables (or channels) on axis 2 of the values (:mod:`sfp.data.datamodules`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from sfp.errors import UserError


def check_batch(context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y: Tensor | None, *, d_y: int,
                d_x: int | None, context_len: int | None) -> None:
    """A batch a forecaster with ``d_y`` variables, ``d_x`` time features (None: any) and a ``context_len``-step
    context (None: any) can read, else a one-line UserError naming the tensor and its shape."""
    if context_y.ndim < 3:
        raise UserError(f"values must be (B, T, *S) with a variable axis, got context_y of shape "
                        f"{tuple(context_y.shape)}")
    if context_y.shape[2] != d_y:
        raise UserError(f"expected {d_y} variables/channels on axis 2 of context_y, got shape "
                        f"{tuple(context_y.shape)}")
    batch, steps = context_y.shape[:2]
    for name, x in (("context_x", context_x), ("target_x", target_x)):
        if x.ndim != 3 or x.shape[0] != batch:
            raise UserError(f"{name} must be (B={batch}, T, d_x), got shape {tuple(x.shape)}")
        if d_x is not None and x.shape[2] != d_x:
            raise UserError(f"{name} has {x.shape[2]} time features, the model expects d_x={d_x}")
    if context_x.shape[1] != steps:
        raise UserError(f"context_x has {context_x.shape[1]} steps but context_y has {steps}")
    if context_len is not None and steps != context_len:
        raise UserError(f"the context has {steps} steps, the model expects context_len={context_len}")
    if target_y is not None and target_y.shape != (batch, target_x.shape[1], *context_y.shape[2:]):
        raise UserError(f"target_y of shape {tuple(target_y.shape)} does not match target_x "
                        f"{tuple(target_x.shape)} and samples of shape {tuple(context_y.shape[2:])}")


def extend_time_features(context_x: Tensor, target_x: Tensor, length: int) -> Tensor:
    """Extrapolate ``target_x`` linearly to ``length`` steps (for horizons shorter than one native chunk)."""
    previous = target_x[:, -2] if target_x.shape[1] > 1 else context_x[:, -1]
    delta = target_x[:, -1] - previous
    ahead = torch.arange(1, length - target_x.shape[1] + 1, device=target_x.device, dtype=target_x.dtype)
    return torch.cat([target_x, target_x[:, -1:] + delta[:, None] * ahead[None, :, None]], 1)
