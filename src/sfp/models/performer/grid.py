"""Gridded fields through the SpatioTemporal Performer: each ``p x p x C`` patch of a frame is one variable.

Frames are padded to multiples of the patch size and the output cropped back, so any ``H, W`` works; the
patches' embeddings come from a fixed 2-D encoding of their grid position through a learned linear map, so the
same weights serve every grid size. The time feature of a frame is its index divided by ``in_frames``.
Registered as the grid backbone ``"performer"`` (``sfp.models.build("performer", ...)``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from sfp.models.common import check_frames, crop, pad_to_multiple, require_positive
from sfp.models.performer.config import PerformerConfig
from sfp.models.performer.embedding import grid_encoding
from sfp.models.performer.model import PerformerEncoderDecoder
from sfp.models.registry import register


def to_patches(frames: Tensor, patch: int) -> Tensor:
    """``(B, T, C, H, W)`` with ``H, W`` multiples of ``patch`` -> ``(B, H/p * W/p, T, C*p*p)``, row-major."""
    batch, steps, channels, height, width = frames.shape
    grid = frames.reshape(batch, steps, channels, height // patch, patch, width // patch, patch)
    grid = grid.permute(0, 3, 5, 1, 2, 4, 6)
    return grid.reshape(batch, (height // patch) * (width // patch), steps, channels * patch * patch)


def from_patches(tokens: Tensor, rows: int, cols: int, channels: int, patch: int) -> Tensor:
    """Inverse of :func:`to_patches`: ``(B, rows*cols, T, C*p*p)`` -> ``(B, T, C, rows*p, cols*p)``."""
    batch, _, steps, _ = tokens.shape
    grid = tokens.reshape(batch, rows, cols, steps, channels, patch, patch).permute(0, 3, 4, 1, 5, 2, 6)
    return grid.reshape(batch, steps, channels, rows * patch, cols * patch)


@register("performer")
class PerformerGridBackbone(PerformerEncoderDecoder):
    """``(B, in_frames, channels, H, W) -> (B, out_frames, channels, H, W)`` with ``patch x patch`` tokens.

    ``model``: the token model's :class:`~sfp.models.performer.PerformerConfig` (or a mapping of it). Its random
    features are seeded from torch's global generator unless ``model.seed`` is set, like the weights, so
    ``sfp.models.build(..., seed=s)`` fixes both.
    """

    def __init__(self, in_frames: int, out_frames: int, channels: int, patch: int = 8,
                 model: PerformerConfig | Mapping[str, object] | None = None) -> None:
        require_positive(in_frames=in_frames, out_frames=out_frames, channels=channels, patch=patch)
        super().__init__(value_dim=channels * patch * patch, d_x=1, config=model)
        self.in_frames, self.out_frames, self.channels, self.patch = in_frames, out_frames, channels, patch
        d_model = self.config.d_model
        self.patch_positions = nn.Linear(d_model, d_model)

    def forward(self, frames: Tensor) -> Tensor:
        check_frames(frames, self.in_frames, self.channels, type(self).__name__)
        padded, size = pad_to_multiple(frames, self.patch)
        rows, cols = padded.shape[-2] // self.patch, padded.shape[-1] // self.patch
        context = to_patches(padded, self.patch)
        variables = self.patch_positions(grid_encoding(rows, cols, self.embedding.d_model, frames.device))
        times = torch.arange(self.in_frames + self.out_frames, device=frames.device, dtype=frames.dtype)
        time_x = (times / self.in_frames)[None, :, None].expand(frames.shape[0], -1, 1)
        target = context.new_full((*context.shape[:2], self.out_frames, context.shape[3]), torch.nan)
        out = self.forward_tokens(
            time_x[:, : self.in_frames], context, time_x[:, self.in_frames :], target, variables, variables
        )
        return crop(from_patches(out, rows, cols, self.channels, self.patch), size)
