"""Fourier Neural Operator in 2-D (Li et al., 2021), the "FNO-2D time" variant.

The ``T_in`` context frames (and two grid-coordinate channels) are lifted to ``width`` channels; each Fourier layer
adds a learnt linear map on the lowest ``modes`` frequencies of each axis to a pointwise linear map; a pointwise
projection gives the ``T_out`` frames. Works on any grid: with fewer than ``modes`` frequencies on an axis, the
layer uses what the grid has.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfp.models.common import check_frames, fold_time, require_positive, require_repeats, unfold_time
from sfp.models.registry import register


class SpectralConv2d(nn.Module):
    """Multiply the low-frequency Fourier coefficients by learnt complex matrices (``in -> out`` channels).

    ``rfft2`` keeps non-negative frequencies along W, so along H both the lowest positive and the lowest negative
    frequencies are kept, each band with its own weights; a grid with fewer frequencies uses the ones it has.
    Weights are stored as real pairs (``view_as_complex``) so optimizers and all-reduce only see real tensors.
    """

    def __init__(self, in_channels: int, out_channels: int, modes_h: int, modes_w: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        scale = 1.0 / (in_channels * out_channels)
        self.weight = nn.Parameter(scale * torch.rand(2, in_channels, out_channels, modes_h, modes_w, 2))

    def forward(self, x: Tensor) -> Tensor:
        batch, _, height, width = x.shape
        spectrum = torch.fft.rfft2(x, norm="ortho")
        weight = torch.view_as_complex(self.weight)
        modes_h, modes_w = weight.shape[-2], min(weight.shape[-1], width // 2 + 1)
        positive = min(modes_h, (height + 1) // 2)  # frequencies 0 .. positive-1 along H
        negative = min(modes_h, height // 2)  # frequencies -negative .. -1, weights aligned so -1 is always last
        out = spectrum.new_zeros(batch, self.out_channels, height, width // 2 + 1)
        bands = (
            (slice(0, positive), weight[0, :, :, :positive, :modes_w]),
            (slice(height - negative, height), weight[1, :, :, modes_h - negative :, :modes_w]),
        )
        for rows, band_weight in bands:
            out[:, :, rows, :modes_w] = torch.einsum("bixy,ioxy->boxy", spectrum[:, :, rows, :modes_w], band_weight)
        return torch.fft.irfft2(out, s=(height, width), norm="ortho")


class FourierLayer(nn.Module):
    """Spectral convolution plus a pointwise (1x1) convolution, as in every FNO layer."""

    def __init__(self, width: int, modes: int) -> None:
        super().__init__()
        self.spectral = SpectralConv2d(width, width, modes, modes)
        self.pointwise = nn.Conv2d(width, width, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.spectral(x) + self.pointwise(x)


@register("fno")
class FNO2d(nn.Module):
    """FNO-2D over ``(H, W)`` with the context frames as input channels plus ``(y, x)`` grid coordinates."""

    def __init__(
        self,
        *,
        in_frames: int,
        out_frames: int,
        channels: int,
        modes: int = 12,
        width: int = 32,
        layers: int = 4,
        projection: int = 128,
    ) -> None:
        super().__init__()
        require_positive(modes=modes, width=width, projection=projection)
        require_repeats(layers=layers)
        self.in_frames, self.out_frames, self.channels = in_frames, out_frames, channels
        self.lift = nn.Conv2d(in_frames * channels + 2, width, 1)
        self.layers = nn.ModuleList(FourierLayer(width, modes) for _ in range(layers))
        self.project = nn.Sequential(
            nn.Conv2d(width, projection, 1), nn.GELU(), nn.Conv2d(projection, out_frames * channels, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        check_frames(x, self.in_frames, self.channels, "fno")
        h = fold_time(x)
        batch, _, height, width = h.shape
        ys = torch.linspace(0.0, 1.0, height, dtype=h.dtype, device=h.device)
        xs = torch.linspace(0.0, 1.0, width, dtype=h.dtype, device=h.device)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")).expand(batch, -1, -1, -1)
        h = self.lift(torch.cat([h, grid], dim=1))
        for k, layer in enumerate(self.layers):
            h = layer(h)
            if k < len(self.layers) - 1:
                h = F.gelu(h)
        return unfold_time(self.project(h), self.out_frames)
