"""Point-forecast losses with a mask of missing values, and the L2 penalty.

Missing values (NaN or the data's null value) are removed with ``torch.where`` BEFORE any arithmetic, so neither
their value nor a NaN can reach the loss or a gradient. The masked loss is the mean over valid elements only,
i.e. exactly the loss on the unmasked subset.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LOSSES = ("mse", "mae", "huber")


def valid_mask(y: Tensor, null_value: float | None = None) -> Tensor:
    """True where ``y`` holds an observation: not NaN and not equal to ``null_value``."""
    valid = ~torch.isnan(y)
    if null_value is not None:
        valid &= y != null_value
    return valid


def masked_loss(pred: Tensor, target: Tensor, valid: Tensor, kind: str = "mse", huber_delta: float = 1.0) -> Tensor:
    """Mean elementwise loss over the elements where ``valid`` is True (0 when there are none)."""
    target = torch.where(valid, target, pred.detach())  # missing targets: zero residual, no NaN anywhere
    if kind == "mse":
        per_element = F.mse_loss(pred, target, reduction="none")
    elif kind == "mae":
        per_element = F.l1_loss(pred, target, reduction="none")
    elif kind == "huber":
        per_element = F.huber_loss(pred, target, reduction="none", delta=huber_delta)
    else:
        raise ValueError(f"masked_loss: unknown kind {kind!r}; one of {LOSSES}")
    per_element = torch.where(valid, per_element, torch.zeros_like(per_element))
    return per_element.sum() / valid.sum().clamp_min(1)


def l2_penalty(parameters: Iterable[nn.Parameter]) -> Tensor:
    """Sum of squares of the trainable parameters."""
    return sum((p.pow(2).sum() for p in parameters if p.requires_grad), torch.zeros(()))
