"""Pieces every model shares: input checks, padding to a multiple, a batch-independent norm, step counting.

Backbones accept any ``H, W``; those that downsample pad the input up to a multiple of their total stride and crop
the output back, so the padding logic lives here once. A module with a ``note_optimizer_step()`` method (FAVOR+
attention redraws its random features every so many steps) is told of every optimizer step through
:func:`notify_optimizer_steps`, whoever trains it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from sfp.errors import UserError

MAX_REPEATS = 256
"""The most layers or blocks of one kind a backbone stacks: each is built one by one, so a mistyped 10**12 would
loop until the memory runs out."""


def require_positive(**values: int) -> None:
    """Raise UserError naming the first argument that is not a positive integer."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{name} must be a positive integer, got {value!r}")


def require_repeats(**counts: int) -> None:
    """Raise UserError naming the first count of stacked layers that is not an integer in 1..MAX_REPEATS."""
    require_positive(**counts)
    for name, value in counts.items():
        if value > MAX_REPEATS:
            raise UserError(f"{name} must be at most {MAX_REPEATS} (layers are built one by one), got {value}")


def check_frames(x: Tensor, frames: int, channels: int, who: str) -> None:
    """Raise UserError unless ``x`` is ``(B, frames, channels, H, W)``."""
    if x.ndim != 5 or x.shape[1] != frames or x.shape[2] != channels:
        raise UserError(
            f"{who} expects input of shape (B, {frames}, {channels}, H, W), got {tuple(x.shape)}"
        )


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Pad the last two dims of ``x`` (right and bottom, by reflection where possible) up to a multiple.

    Returns the padded tensor and the original ``(H, W)`` for :func:`crop`.
    """
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        padded = F.pad(x.reshape(-1, *x.shape[-3:]), (0, pad_w, 0, pad_h), mode=mode)
        x = padded.reshape(*x.shape[:-2], height + pad_h, width + pad_w)
    return x, (height, width)


def crop(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Undo :func:`pad_to_multiple`: keep the top-left ``size`` of the last two dims."""
    return x[..., : size[0], : size[1]]


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups: statistics per sample, so training and inference behave alike at any batch."""
    return nn.GroupNorm(math.gcd(channels, 8), channels)


def conv_block(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution, GroupNorm, SiLU: the basic unit of the convolutional backbones."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1),
        group_norm(out_channels),
        nn.SiLU(),
    )


def fold_time(x: Tensor) -> Tensor:
    """``(B, T, C, H, W) -> (B, T*C, H, W)``: frames become channels for 2-D backbones."""
    return x.flatten(1, 2)


def unfold_time(x: Tensor, frames: int) -> Tensor:
    """``(B, T*C, H, W) -> (B, T, C, H, W)``, the inverse of :func:`fold_time`."""
    return x.unflatten(1, (frames, -1))


def note_optimizer_step(model: nn.Module) -> None:
    """Tell every submodule of ``model`` that counts optimizer steps that one happened."""
    for module in model.modules():
        if callable(getattr(module, "note_optimizer_step", None)):
            module.note_optimizer_step()


def notify_optimizer_steps(model: nn.Module, optimizer: torch.optim.Optimizer) -> RemovableHandle | None:
    """Count ``optimizer``'s steps for ``model``'s step-counting submodules (a post-step hook, removable with the
    returned handle; None when no submodule counts steps)."""
    if not any(callable(getattr(module, "note_optimizer_step", None)) for module in model.modules()):
        return None
    return optimizer.register_step_post_hook(lambda *_: note_optimizer_step(model))
