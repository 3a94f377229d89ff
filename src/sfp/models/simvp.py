"""SimVP-v2 with TAU-style translator blocks: a purely convolutional video predictor.

Each frame is encoded by a small strided CNN; the latent frames are stacked along channels and a translator of
attention blocks (large-kernel depthwise attention times squeeze-excitation channel attention, then an MLP) maps
``T_in`` latent frames to ``T_out``; a decoder mirrors the encoder, adding a skip from the encoder's first layer
(mixed over time by a learnt ``T_out x T_in`` matrix, so ``T_out != T_in`` works).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sfp.errors import UserError
from sfp.models.common import (
    check_frames,
    conv_block,
    crop,
    fold_time,
    group_norm,
    pad_to_multiple,
    require_positive,
    require_repeats,
    unfold_time,
)
from sfp.models.registry import register


class _Upsample(nn.Sequential):
    """Double the resolution by a 3x3 conv to 4x channels and a pixel shuffle."""

    def __init__(self, channels: int) -> None:
        super().__init__(
            nn.Conv2d(channels, 4 * channels, 3, padding=1), nn.PixelShuffle(2), group_norm(channels), nn.SiLU()
        )


class LargeKernelChannelAttention(nn.Module):
    """TAU attention: a ``kernel_size`` receptive field from a small depthwise conv and a dilated depthwise conv,
    multiplied by a squeeze-excitation gate over channels (the "statistical" attention across time-folded channels).
    """

    def __init__(self, dim: int, kernel_size: int = 21, dilation: int = 3, reduction: int = 16) -> None:
        super().__init__()
        local_k = 2 * dilation - 1
        wide_k = kernel_size // dilation + ((kernel_size // dilation) % 2 - 1)
        self.local = nn.Conv2d(dim, dim, local_k, padding=local_k // 2, groups=dim)
        self.wide = nn.Conv2d(dim, dim, wide_k, padding=dilation * (wide_k - 1) // 2, dilation=dilation, groups=dim)
        self.mix = nn.Conv2d(dim, dim, 1)
        squeezed = max(dim // reduction, 4)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, squeezed, 1), nn.GELU(), nn.Conv2d(squeezed, dim, 1), nn.Sigmoid()
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.mix(self.wide(self.local(x))) * self.gate(x)


class TAUBlock(nn.Module):
    """Pre-norm residual block: attention branch then MLP branch (1x1, depthwise 3x3, 1x1), each layer-scaled."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0, kernel_size: int = 21, layer_scale: float = 1e-2) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.attention = nn.Sequential(
            group_norm(dim), nn.Conv2d(dim, dim, 1), nn.GELU(),
            LargeKernelChannelAttention(dim, kernel_size), nn.Conv2d(dim, dim, 1),
        )
        self.mlp = nn.Sequential(
            group_norm(dim), nn.Conv2d(dim, hidden, 1), nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            nn.GELU(), nn.Conv2d(hidden, dim, 1),
        )
        self.scale_attention = nn.Parameter(torch.full((dim, 1, 1), layer_scale))
        self.scale_mlp = nn.Parameter(torch.full((dim, 1, 1), layer_scale))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.scale_attention * self.attention(x)
        return x + self.scale_mlp * self.mlp(x)


@register("simvp")
class SimVP(nn.Module):
    """SimVP-v2 backbone. ``spatial_layers`` conv layers, every second one stride 2; ``temporal_blocks`` TAU
    blocks of width ``hidden_temporal`` over the ``T * hidden_spatial`` time-folded latent channels."""

    def __init__(
        self,
        *,
        in_frames: int,
        out_frames: int,
        channels: int,
        hidden_spatial: int = 16,
        hidden_temporal: int = 128,
        spatial_layers: int = 4,
        temporal_blocks: int = 4,
        mlp_ratio: float = 4.0,
        kernel_size: int = 21,
    ) -> None:
        super().__init__()
        require_positive(hidden_spatial=hidden_spatial, hidden_temporal=hidden_temporal, kernel_size=kernel_size)
        require_repeats(spatial_layers=spatial_layers, temporal_blocks=temporal_blocks)
        if not mlp_ratio > 0:
            raise UserError(f"mlp_ratio must be positive, got {mlp_ratio!r}")
        self.in_frames, self.out_frames, self.channels = in_frames, out_frames, channels
        downsamples = [i % 2 == 1 for i in range(spatial_layers)]  # stride 1, 2, 1, 2, ...
        self.multiple = 2 ** sum(downsamples)

        self.encoder = nn.ModuleList(
            [conv_block(channels, hidden_spatial)]
            + [conv_block(hidden_spatial, hidden_spatial, stride=2 if down else 1) for down in downsamples[1:]]
        )
        self.translator = nn.Sequential(
            nn.Conv2d(in_frames * hidden_spatial, hidden_temporal, 1),
            *[TAUBlock(hidden_temporal, mlp_ratio, kernel_size) for _ in range(temporal_blocks)],
            nn.Conv2d(hidden_temporal, out_frames * hidden_spatial, 1),
        )
        self.decoder = nn.ModuleList(
            _Upsample(hidden_spatial) if down else conv_block(hidden_spatial, hidden_spatial)
            for down in reversed(downsamples)
        )
        skip_mix = torch.zeros(out_frames, in_frames)
        skip_mix[:, -1] = 1.0  # start from the last context frame's features
        self.skip_mix = nn.Parameter(skip_mix)
        self.readout = nn.Conv2d(hidden_spatial, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        check_frames(x, self.in_frames, self.channels, "simvp")
        x, size = pad_to_multiple(x, self.multiple)
        batch = x.shape[0]

        h = x.flatten(0, 1)
        skip = h = self.encoder[0](h)
        for layer in self.encoder[1:]:
            h = layer(h)

        latent = self.translator(fold_time(h.unflatten(0, (batch, self.in_frames))))
        h = unfold_time(latent, self.out_frames).flatten(0, 1)

        skip = torch.einsum("oi,bichw->bochw", self.skip_mix, skip.unflatten(0, (batch, self.in_frames)))
        for layer in self.decoder[:-1]:
            h = layer(h)
        h = self.decoder[-1](h + skip.flatten(0, 1))
        y = self.readout(h).unflatten(0, (batch, self.out_frames))
        return crop(y, size)
