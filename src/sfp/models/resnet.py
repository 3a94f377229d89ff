"""Residual convolution stack at full resolution over time-folded channels: ``T_in * C`` in, ``T_out * C`` out."""

from __future__ import annotations

from torch import Tensor, nn

from sfp.models.common import check_frames, fold_time, group_norm, require_positive, require_repeats, unfold_time
from sfp.models.registry import register


class ResidualBlock(nn.Module):
    """Pre-activation residual block: ``x + conv(act(norm(conv(act(norm(x))))))``."""

    def __init__(self, width: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            group_norm(width), nn.SiLU(), nn.Conv2d(width, width, kernel_size, padding=kernel_size // 2),
            group_norm(width), nn.SiLU(), nn.Conv2d(width, width, kernel_size, padding=kernel_size // 2),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


@register("resnet")
class ResNet(nn.Module):
    """``blocks`` residual blocks of ``width`` channels between a 3x3 stem and a 3x3 head."""

    def __init__(
        self, *, in_frames: int, out_frames: int, channels: int, width: int = 32, blocks: int = 4, kernel_size: int = 3
    ) -> None:
        super().__init__()
        require_positive(width=width, kernel_size=kernel_size)
        require_repeats(blocks=blocks)
        self.in_frames, self.out_frames, self.channels = in_frames, out_frames, channels
        pad = kernel_size // 2
        self.net = nn.Sequential(
            nn.Conv2d(in_frames * channels, width, kernel_size, padding=pad),
            *[ResidualBlock(width, kernel_size) for _ in range(blocks)],
            group_norm(width), nn.SiLU(), nn.Conv2d(width, out_frames * channels, kernel_size, padding=pad),
        )

    def forward(self, x: Tensor) -> Tensor:
        check_frames(x, self.in_frames, self.channels, "resnet")
        return unfold_time(self.net(fold_time(x)), self.out_frames)
