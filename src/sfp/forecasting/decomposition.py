"""Moving-average seasonal/trend decomposition along the time axis (Autoformer, DLinear).

The trend is a centred moving average with the series' first and last values repeated at the ends (replicate
padding), so a linear trend is reproduced exactly away from the ends and a component whose period divides the
kernel size averages to zero. The seasonal part is what remains.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sfp.errors import UserError


def check_kernel_size(kernel_size: int) -> None:
    """A centred average needs an odd, positive kernel."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise UserError(f"decomposition kernel size must be a positive odd integer, got {kernel_size}")


def moving_average(y: Tensor, kernel_size: int) -> Tensor:
    """Centred moving average of ``y`` (B, T, *S) over time with replicate padding; same shape as ``y``
    (``kernel_size`` odd: see :func:`check_kernel_size`, which its owners call once)."""
    half = kernel_size // 2
    padded = torch.cat([y[:, :1].expand(-1, half, *y.shape[2:]), y, y[:, -1:].expand(-1, half, *y.shape[2:])], 1)
    return padded.unfold(1, kernel_size, 1).mean(-1)


def decompose(y: Tensor, kernel_size: int) -> tuple[Tensor, Tensor]:
    """Split ``y`` into ``(seasonal, trend)`` with ``seasonal + trend == y``."""
    trend = moving_average(y, kernel_size)
    return y - trend, trend
