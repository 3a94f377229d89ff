"""AdamW with a linear warm-up composed with reduce-on-plateau.

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

from sfp.errors import UserError


def check_schedule(initial_lr: float, warmup_steps: int, decay_factor: float, plateau_patience: int,
                   num_training_steps: int | None = None) -> None:
    """Raise a UserError on a schedule that cannot work."""
    if initial_lr <= 0:
        raise UserError(f"initial_lr must be positive, got {initial_lr}")
    if warmup_steps < 0:
        raise UserError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if not 0 < decay_factor < 1:
        raise UserError(f"decay_factor must lie in (0, 1), got {decay_factor}")
    if plateau_patience < 0:
        raise UserError(f"plateau_patience must be >= 0, got {plateau_patience}")
    if num_training_steps is not None and not 0 <= warmup_steps <= num_training_steps:
        raise UserError(f"warmup_steps={warmup_steps} exceeds num_training_steps={num_training_steps}")


def adamw_warmup_plateau(parameters: Iterable[torch.nn.Parameter], initial_lr: float, warmup_steps: int,
                         decay_factor: float, plateau_patience: int, monitor: str = "val/loss",
                         ) -> tuple[list[torch.optim.Optimizer], list[dict[str, Any]]]:
    """``configure_optimizers`` output: AdamW, a per-step warm-up and a per-epoch plateau cut on ``monitor``.

    The plateau scheduler is not strict: without validation (no ``monitor`` value) the rate is simply never cut.
    """
    check_schedule(initial_lr, warmup_steps, decay_factor, plateau_patience)
    optimizer = torch.optim.AdamW(parameters, lr=initial_lr, weight_decay=0.0)
    schedulers: list[dict[str, Any]] = []
    if warmup_steps > 1:
        warmup = LinearLR(optimizer, start_factor=1.0 / warmup_steps, end_factor=1.0, total_iters=warmup_steps - 1)
        schedulers.append({"scheduler": warmup, "interval": "step", "name": "warmup"})
    plateau = ReduceLROnPlateau(optimizer, mode="min", factor=decay_factor, patience=plateau_patience)
    schedulers.append({"scheduler": plateau, "interval": "epoch", "monitor": monitor, "strict": False,
                       "name": "plateau"})
    return [optimizer], schedulers
