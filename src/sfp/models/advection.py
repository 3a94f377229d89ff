"""A backbone that learns what extrapolation leaves: the last frame moved along the context's motion, plus a residual.

Nowcasts of rain are hard to beat at short leads because rain mostly moves (pysteps' extrapolation). Here the motion
is a field: the cross-correlation displacement of overlapping blocks of the last context frames, each block pulled
toward the whole frame's displacement where it holds little rain (a dry block has nothing to track), interpolated
to every pixel. Frame ``k`` ahead is the last context frame carried ``k`` steps along that steady field
(semi-Lagrangian, bilinear); what flows in from outside repeats the border values, as in pysteps' extrapolation
(rain at the edge keeps coming). An inner backbone reads the context and this extrapolation and adds a residual
scaled by a gate that starts at 0, so the model starts as the extrapolation and learns only what the motion does
not explain (growth, decay, deformation). Registered as the grid backbone ``"advection"``.
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


BLOCK, STRIDE = 32, 16  # motion blocks of 32 px, 16 px apart (3 x 3 blocks on a 64 x 64 tile)


def motion_field(frames: Tensor, block: int = BLOCK, stride: int = STRIDE) -> Tensor:
    """Displacement per pixel ``(B, 2, H, W)`` (rows, columns; pixels per frame) of ``(B, T, C, H, W)`` frames.

    Each ``block x block`` block (Hann-windowed, ``stride`` apart; the whole frame where it is smaller) gets
    :func:`cross_correlation_motion`, blended with the whole frames' motion by the weight ``e / (e + E)``, ``e`` the
    block's mean square and ``E`` the frames', both above the frames' minimum (the dry level; so normalized frames
    give the field of the raw ones): a block holding little rain follows the whole. The block vectors sit at the
    blocks' centres and are interpolated bilinearly between them (held constant beyond).
    """
    batch, steps, channels, height, width = frames.shape
    frames = frames - frames.amin(dim=(1, 2, 3, 4), keepdim=True)
    block = min(block, height, width)
    stride = min(stride, block)
    whole = cross_correlation_motion(frames)
    blocks = frames.flatten(1, 2).unfold(2, block, stride).unfold(3, block, stride)  # (B, T·C, nh, nw, s, s)
    rows, cols = blocks.shape[2:4]
    blocks = blocks.permute(0, 2, 3, 1, 4, 5).reshape(batch * rows * cols, steps, channels, block, block)
    hann = torch.hann_window(block, periodic=False, dtype=frames.dtype, device=frames.device)
    local = cross_correlation_motion(blocks * (hann[:, None] * hann[None, :])).reshape(batch, rows, cols, 2)
    energy = blocks.square().mean(dim=(1, 2, 3, 4)).reshape(batch, rows, cols, 1)
    total = frames.square().mean(dim=(1, 2, 3, 4))[:, None, None, None]
    weight = energy / (energy + total).clamp_min(torch.finfo(frames.dtype).tiny)
    coarse = (weight * local + (1 - weight) * whole[:, None, None]).permute(0, 3, 1, 2)  # (B, 2, nh, nw)

    def centres(size: int, count: int) -> Tensor:  # pixel -> the coarse grid's normalized coordinate
        position = (torch.arange(size, dtype=frames.dtype, device=frames.device) - (block - 1) / 2) / stride
        return 2 * position / max(count - 1, 1) - 1 if count > 1 else torch.zeros_like(position)

    grid = torch.stack(torch.meshgrid(centres(width, cols), centres(height, rows), indexing="xy"), dim=-1)
    return F.grid_sample(coarse, grid.expand(batch, -1, -1, -1), mode="bilinear", padding_mode="border",
                         align_corners=True)


def advect(frame: Tensor, field: Tensor, steps: int) -> Tensor:
    """``(B, C, H, W)`` carried ``1 .. steps`` steps along a steady ``(B, 2, H, W)`` displacement field ->
    ``(B, steps, C, H, W)``: step k takes the value at the point reached by tracing back k times (``x <- x - v(x)``,
    bilinear); what flows in from outside repeats the border values."""
    height, width = frame.shape[-2:]
    rows = torch.linspace(-1, 1, height, dtype=frame.dtype, device=frame.device)
    cols = torch.linspace(-1, 1, width, dtype=frame.dtype, device=frame.device)
    position = torch.stack(torch.meshgrid(cols, rows, indexing="xy"), dim=-1).expand(len(frame), -1, -1, -1)
    scale = torch.tensor([2 / max(width - 1, 1), 2 / max(height - 1, 1)], dtype=frame.dtype, device=frame.device)
    velocity = field.flip(1) * scale[:, None, None]  # (B, 2, H, W) as (x, y) in grid units
    moved = []
    for _ in range(steps):
        position = position - F.grid_sample(velocity, position, mode="bilinear", padding_mode="border",
                                            align_corners=True).permute(0, 2, 3, 1)
        moved.append(F.grid_sample(frame, position, mode="bilinear", padding_mode="border", align_corners=True))
    return torch.stack(moved, dim=1)


def extrapolate(context: Tensor, out_frames: int, motion_frames: int) -> Tensor:
    """The last of ``(B, T, C, H, W)`` frames carried ``1 .. out_frames`` steps along the motion field of the last
    ``motion_frames`` frames."""
    return advect(context[:, -1], motion_field(context[:, -motion_frames:]), out_frames)


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
