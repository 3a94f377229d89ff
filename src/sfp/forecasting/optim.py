"""AdamW (fused) and the Forecaster's schedule: a linear warm-up composed with reduce-on-plateau.

Both schedules act MULTIPLICATIVELY on the optimizer's current rate: the warm-up is torch's chainable
``LinearLR`` (each step scales the current rate by the ratio of consecutive warm-up factors, so the rate at step
``s < warmup_steps`` is ``initial_lr * (s + 1) / warmup_steps``) and ``ReduceLROnPlateau`` multiplies the current
rate by ``decay_factor`` after ``plateau_patience`` epochs without improvement of the monitored loss. Neither
overwrites the other, so a plateau cut always lowers the rate, even during warm-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.optim.lr_scheduler import LinearLR, ReduceLROnPlateau

FUSED_DEVICES = ("cpu", "cuda")  # where torch ships a fused AdamW kernel


def adamw(parameters: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel (one pass over each parameter for the whole update instead of some ten) where
    the parameters' device has one, else the per-parameter loop; the two give the same steps to float rounding.
    The single owner of the optimizer of every sfp training module."""
    parameters = list(parameters)
    fused = bool(parameters) and all(p.device.type in FUSED_DEVICES for p in parameters)
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, fused=fused or None)


def adamw_warmup_plateau(parameters: Iterable[torch.nn.Parameter], initial_lr: float, warmup_steps: int,
                         decay_factor: float, plateau_patience: int, monitor: str = "val/loss",
                         ) -> tuple[list[torch.optim.Optimizer], list[dict[str, Any]]]:
    """``configure_optimizers`` output: AdamW, a per-step warm-up and a per-epoch plateau cut on ``monitor``.

    The plateau scheduler is not strict: without validation (no ``monitor`` value) the rate is simply never cut.
    """
    optimizer = adamw(parameters, initial_lr)
    schedulers: list[dict[str, Any]] = []
    if warmup_steps > 1:
        warmup = LinearLR(optimizer, start_factor=1.0 / warmup_steps, end_factor=1.0, total_iters=warmup_steps - 1)
        schedulers.append({"scheduler": warmup, "interval": "step", "name": "warmup"})
    plateau = ReduceLROnPlateau(optimizer, mode="min", factor=decay_factor, patience=plateau_patience)
    schedulers.append({"scheduler": plateau, "interval": "epoch", "monitor": monitor, "strict": False,
                       "name": "plateau"})
    return [optimizer], schedulers
