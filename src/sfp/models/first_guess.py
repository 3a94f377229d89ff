"""A backbone that corrects a first guess given in its input: the guess plus a gated residual.

A radar window with a first guess (:mod:`sfp.data.radar.first_guess`) ends its context with a reference nowcast of
the lead times to forecast (S-PROG on the whole composite, say). This backbone returns those last ``out_frames``
input frames plus a residual read by an inner backbone from every input frame (the observed ones and the guess),
scaled by a gate that starts at 0: the model starts as the reference and learns only what it gets wrong (growth,
decay, intensity, the blur of S-PROG's cascade). Registered as the grid backbone ``"first_guess"``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from sfp.errors import UserError
from sfp.models.common import check_frames, require_positive
from sfp.models.registry import build, register


@register("first_guess")
class FirstGuessResidual(nn.Module):
    """``(B, in_frames, C, H, W) -> (B, out_frames, C, H, W)``: the input's last ``out_frames`` frames (the first
    guess) plus a gated residual of the inner backbone (``backbone``, ``backbone_kwargs``), which reads all
    ``in_frames``; ``in_frames`` must exceed ``out_frames`` (observed frames come first)."""

    def __init__(self, in_frames: int, out_frames: int, channels: int, backbone: str = "simvp",
                 backbone_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        require_positive(in_frames=in_frames, out_frames=out_frames, channels=channels)
        if in_frames <= out_frames:
            raise UserError(f"first_guess: the input holds observed frames and then the {out_frames}-frame guess, "
                            f"so in_frames must exceed out_frames={out_frames}, got {in_frames}")
        self.in_frames, self.out_frames, self.channels = in_frames, out_frames, channels
        self.inner = build(backbone, in_frames=in_frames, out_frames=out_frames, channels=channels,
                           **(backbone_kwargs or {}))
        self.gate = nn.Parameter(torch.zeros(()))

    def forward(self, frames: Tensor) -> Tensor:
        check_frames(frames, self.in_frames, self.channels, type(self).__name__)
        return frames[:, -self.out_frames:] + self.gate * self.inner(frames)
