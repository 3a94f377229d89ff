"""2-D UNet over time-folded channels: ``T_in * C`` in, ``T_out * C`` out.

Each level halves the resolution (max-pool) and doubles the width; the way up upsamples bilinearly and
concatenates the skip of the same level. Inputs are padded to a multiple of ``2**depth`` and cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfp.models.common import (
    check_frames,
    conv_block,
    crop,
    fold_time,
    pad_to_multiple,
    require_positive,
    require_repeats,
    unfold_time,
)
from sfp.models.registry import register


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(conv_block(in_channels, out_channels), conv_block(out_channels, out_channels))


@register("unet")
class UNet(nn.Module):
    """UNet with ``depth`` down/up levels, ``width * 2**level`` channels at each level."""

    def __init__(self, *, in_frames: int, out_frames: int, channels: int, width: int = 32, depth: int = 3) -> None:
        super().__init__()
        require_positive(width=width)
        require_repeats(depth=depth)
        self.in_frames, self.out_frames, self.channels = in_frames, out_frames, channels
        self.multiple = 2**depth
        widths = [width * 2**level for level in range(depth + 1)]
        self.stem = _double_conv(in_frames * channels, width)
        self.down = nn.ModuleList(_double_conv(widths[k], widths[k + 1]) for k in range(depth))
        self.up = nn.ModuleList(_double_conv(widths[k + 1] + widths[k], widths[k]) for k in reversed(range(depth)))
        self.head = nn.Conv2d(width, out_frames * channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        check_frames(x, self.in_frames, self.channels, "unet")
        x, size = pad_to_multiple(x, self.multiple)
        h = self.stem(fold_time(x))
        skips = []
        for block in self.down:
            skips.append(h)
            h = block(F.max_pool2d(h, 2))
        for block, skip in zip(self.up, reversed(skips)):
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = block(torch.cat([h, skip], dim=1))
        return crop(unfold_time(self.head(h), self.out_frames), size)
