"""A backbone that learns what extrapolation leaves: the last frame moved along the context's motion, plus a residual.

Nowcasts of rain are hard to beat at short leads because rain mostly moves (pysteps' extrapolation). Here the motion
is one displacement per sample, from the cross-correlation of consecutive context frames (summed over pairs, the
peak refined to a fraction of a pixel), and frame ``k`` ahead is the last context frame moved ``k`` times that
displacement (bilinear; what enters from outside is the frame's minimum, i.e. dry). An inner backbone
reads the context and this extrapolation and adds a residual scaled by a gate that starts at 0, so the model
starts as the extrapolation and learns only what the motion does not explain (growth, decay, deformation).
Registered as the grid backbone ``"advection"``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfp.errors import UserError
from sfp.models.common import check_frames, require_positive
from sfp.models.registry import build, register


def cross_correlation_motion(frames: Tensor) -> Tensor:
    """Mean displacement ``(B, 2)`` (rows, columns; pixels per frame) of ``(B, T, C, H, W)`` frames, ``T >= 2``.

    The circular cross-correlations of every consecutive pair and channel (means removed) are summed; the sum
    peaks at the displacement, refined by a parabola through the peak's neighbours. Unwhitened, so the large rain
    structures that carry the motion dominate.
    """
    height, width = frames.shape[-2:]
    spectra = torch.fft.rfft2(frames - frames.mean(dim=(-2, -1), keepdim=True))
    cross = (spectra[:, 1:] * spectra[:, :-1].conj()).sum(dim=(1, 2))
    surface = torch.fft.irfft2(cross, s=(height, width))  # (B, H, W), peak at the displacement (mod size)
    peak = surface.flatten(1).argmax(dim=1)
    rows, cols = peak // width, peak % width
    batch = torch.arange(len(frames), device=frames.device)

    def refine(index: Tensor, size: int, along_rows: bool) -> Tensor:
        def at(offset: int) -> Tensor:
            moved = (index + offset) % size
            return surface[batch, moved, cols] if along_rows else surface[batch, rows, moved]

        left, centre, right = at(-1), at(0), at(1)
        curvature = left - 2 * centre + right
        offset = torch.where(curvature < 0, 0.5 * (left - right) / curvature.clamp_max(-1e-12), 0.0)
        shift = index.to(frames.dtype) + offset.clamp(-0.5, 0.5)
        return torch.where(shift > size / 2, shift - size, shift)

    return torch.stack([refine(rows, height, True), refine(cols, width, False)], dim=1)


def shift_frames(frame: Tensor, displacements: Tensor) -> Tensor:
    """``(B, C, H, W)`` moved by each of ``(B, K, 2)`` displacements -> ``(B, K, C, H, W)``; what enters from
    outside is the frame's minimum."""
    batch, channels, height, width = frame.shape
    steps = displacements.shape[1]
    floor = frame.amin(dim=(-3, -2, -1), keepdim=True)
    rows = torch.linspace(-1, 1, height, dtype=frame.dtype, device=frame.device)
    cols = torch.linspace(-1, 1, width, dtype=frame.dtype, device=frame.device)
    grid = torch.stack(torch.meshgrid(cols, rows, indexing="xy"), dim=-1)  # (H, W, 2) as (x, y)
    scale = torch.tensor([2 / max(width - 1, 1), 2 / max(height - 1, 1)], dtype=frame.dtype, device=frame.device)
    source = grid - (displacements.flip(-1) * scale)[:, :, None, None]  # (B, K, H, W, 2): where each pixel comes from
    moved = F.grid_sample((frame - floor).repeat_interleave(steps, 0), source.flatten(0, 1), mode="bilinear",
                          padding_mode="zeros", align_corners=True)
    return moved.unflatten(0, (batch, steps)) + floor[:, None]


def extrapolate(context: Tensor, out_frames: int, motion_frames: int) -> Tensor:
    """The last of ``(B, T, C, H, W)`` frames moved ``1 .. out_frames`` times the motion of the last
    ``motion_frames`` frames."""
    velocity = cross_correlation_motion(context[:, -motion_frames:])
    leads = torch.arange(1, out_frames + 1, dtype=context.dtype, device=context.device)
    return shift_frames(context[:, -1], leads[None, :, None] * velocity[:, None])


@register("advection")
class AdvectionResidual(nn.Module):
    """``(B, in_frames, C, H, W) -> (B, out_frames, C, H, W)``: the extrapolation plus a gated residual.

    backbone, backbone_kwargs: the inner backbone (any registered name), which reads the ``in_frames`` context
    frames followed by the ``out_frames`` extrapolated ones; motion_frames: the last context frames the motion
    is estimated from (at least 2; default up to 3).
    """

    def __init__(self, in_frames: int, out_frames: int, channels: int, backbone: str = "simvp",
                 backbone_kwargs: dict[str, Any] | None = None, motion_frames: int | None = None) -> None:
        super().__init__()
        require_positive(in_frames=in_frames, out_frames=out_frames, channels=channels)
        motion_frames = min(3, in_frames) if motion_frames is None else motion_frames
        if not 2 <= motion_frames <= in_frames:
            raise UserError(f"advection: motion_frames must lie in [2, in_frames={in_frames}], got {motion_frames}")
        self.in_frames, self.out_frames, self.channels = in_frames, out_frames, channels
        self.motion_frames = motion_frames
        self.inner = build(backbone, in_frames=in_frames + out_frames, out_frames=out_frames, channels=channels,
                           **(backbone_kwargs or {}))
        self.gate = nn.Parameter(torch.zeros(()))

    def forward(self, frames: Tensor) -> Tensor:
        check_frames(frames, self.in_frames, self.channels, type(self).__name__)
        with torch.no_grad():
            prior = extrapolate(frames, self.out_frames, self.motion_frames)
        return prior + self.gate * self.inner(torch.cat([frames, prior], dim=1))
