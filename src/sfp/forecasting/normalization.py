"""Normalization of values ``(B, T, *S)``: global statistics and reversible instance normalization (RevIN).

Both act per *variable*, the first axis after time: the channel of a field ``(B, T, C, H, W)`` or the variable
of a series ``(B, T, N)``. Missing values are excluded from every statistic through a boolean ``valid`` mask.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from sfp.errors import UserError


class GlobalNorm(nn.Module):
    """``(y - mean) / std`` with statistics fit on the training split and handed over by the data module.

    The statistics are buffers, so they travel in checkpoints; they start empty and are set once with
    :meth:`set_stats` (the Forecaster does this in ``setup`` from ``datamodule.normalization_stats()``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(0))
        self.register_buffer("std", torch.zeros(0))

    @property
    def is_set(self) -> bool:
        return self.mean.numel() > 0

    def set_stats(self, mean: Tensor, std: Tensor) -> None:
        """Store ``mean`` and ``std`` (broadcastable against one time step ``*S``); a zero std becomes 1."""
        mean, std = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise UserError("normalization statistics contain NaN or infinite values")
        if (std < 0).any():
            raise UserError("normalization statistics have a negative std")
        self.mean = mean.to(self.mean.device)
        self.std = torch.where(std > 0, std, torch.ones_like(std)).to(self.std.device)

    def _stats_for(self, y: Tensor) -> tuple[Tensor, Tensor]:
        if not self.is_set:
            raise UserError("global normalization is on but no statistics are set: train or test with a data "
                            "module that provides normalization_stats(), or call set_normalization_stats()")
        step_shape = y.shape[2:]
        try:
            torch.broadcast_shapes(self.mean.shape, step_shape)
        except RuntimeError:
            raise UserError(f"normalization statistics of shape {tuple(self.mean.shape)} do not broadcast against "
                            f"one time step of shape {tuple(step_shape)}") from None
        return self.mean, self.std

    def normalize(self, y: Tensor) -> Tensor:
        mean, std = self._stats_for(y)
        return (y - mean) / std

    def denormalize(self, y: Tensor) -> Tensor:
        mean, std = self._stats_for(y)
        return y * std + mean

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # The buffers' shapes are only known once statistics exist: adopt the checkpoint's shapes before loading.
        for name in ("mean", "std"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name], device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class RevINStats(NamedTuple):
    """Per-sample, per-variable statistics of one context, shaped to broadcast against ``(B, T, *S)``."""

    mean: Tensor
    std: Tensor


class RevIN(nn.Module):
    """Reversible instance normalization (Kim et al., 2022) over the context's time axis.

    Statistics are taken per sample and per variable over time (and, for fields, over the spatial axes), and are
    DETACHED: the model is trained on the normalized problem, not through the statistics. With ``affine`` a
    learned per-variable scale and shift follow the normalization and are undone before de-normalizing.
    """

    def __init__(self, num_variables: int, affine: bool = True, eps: float = 1e-5):
        super().__init__()
        self.num_variables, self.eps = num_variables, eps
        self.weight = nn.Parameter(torch.ones(num_variables)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_variables)) if affine else None

    def _per_variable(self, param: Tensor, ndim: int) -> Tensor:
        return param.view(1, 1, -1, *([1] * (ndim - 3)))

    def statistics(self, y: Tensor, valid: Tensor) -> RevINStats:
        """Masked mean and std of ``y`` (B, T, *S) over every axis but batch and variable."""
        if y.shape[2] != self.num_variables:
            raise UserError(f"RevIN expects {self.num_variables} variables on axis 2, got shape {tuple(y.shape)}")
        dims = [1, *range(3, y.ndim)]
        weight = valid.to(y.dtype)
        count = weight.sum(dims, keepdim=True)
        filled = torch.where(valid, y, torch.zeros_like(y))
        mean = filled.sum(dims, keepdim=True) / count.clamp_min(1)
        var = (torch.where(valid, y - mean, torch.zeros_like(y)) ** 2).sum(dims, keepdim=True) / count.clamp_min(1)
        return RevINStats(mean.detach(), torch.sqrt(var + self.eps).detach())

    def normalize(self, y: Tensor, stats: RevINStats) -> Tensor:
        out = (y - stats.mean) / stats.std
        if self.weight is not None:
            out = out * self._per_variable(self.weight, y.ndim) + self._per_variable(self.bias, y.ndim)
        return out

    def denormalize(self, y: Tensor, stats: RevINStats) -> Tensor:
        if self.weight is not None:
            y = (y - self._per_variable(self.bias, y.ndim)) / (self._per_variable(self.weight, y.ndim) + self.eps**2)
        return y * stats.std + stats.mean
