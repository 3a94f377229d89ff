"""Encoder-forecaster ConvLSTM (Shi et al., 2015) on patch-folded frames.

Frames are folded into ``patch x patch`` patches (a lossless space-to-depth, as in PredRNN) so the recurrent cells
run at ``1/patch`` resolution. An encoder stack of ConvLSTM cells reads the context; its states initialise a
separate forecaster stack that rolls out ``T_out`` steps, each fed the previous frame (the last context frame,
then its own prediction).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sfp.models.common import check_frames, crop, pad_to_multiple, require_positive, require_repeats
from sfp.models.registry import register

State = tuple[Tensor, Tensor]


class ConvLSTMCell(nn.Module):
    """One ConvLSTM cell: all four gates from a single convolution over ``[input, hidden]``."""

    def __init__(self, in_channels: int, hidden: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel_size, padding=kernel_size // 2)
        with torch.no_grad():
            self.gates.bias[hidden : 2 * hidden].fill_(1.0)  # forget gate open at the start: long memory

    def forward(self, x: Tensor, state: State) -> State:
        h, c = state
        i, f, g, o = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class _Stack(nn.Module):
    """Stacked cells; the hidden state of each layer is the input of the next."""

    def __init__(self, in_channels: int, hidden: int, layers: int, kernel_size: int) -> None:
        super().__init__()
        self.cells = nn.ModuleList(
            ConvLSTMCell(in_channels if k == 0 else hidden, hidden, kernel_size) for k in range(layers)
        )

    def forward(self, x: Tensor, states: list[State]) -> list[State]:
        new_states = []
        for cell, state in zip(self.cells, states):
            x, c = cell(x, state)
            new_states.append((x, c))
        return new_states


@register("convlstm")
class ConvLSTM(nn.Module):
    """Encoder-forecaster ConvLSTM with ``layers`` cells of ``hidden`` channels per stack."""

    def __init__(
        self,
        *,
        in_frames: int,
        out_frames: int,
        channels: int,
        hidden: int = 32,
        layers: int = 2,
        patch: int = 4,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        require_positive(hidden=hidden, patch=patch, kernel_size=kernel_size)
        require_repeats(layers=layers)
        self.in_frames, self.out_frames, self.channels = in_frames, out_frames, channels
        self.patch, self.hidden, self.layers = patch, hidden, layers
        folded = channels * patch * patch
        self.embed = nn.Sequential(nn.PixelUnshuffle(patch), nn.Conv2d(folded, hidden, 3, padding=1), nn.SiLU())
        self.encoder = _Stack(hidden, hidden, layers, kernel_size)
        self.forecaster = _Stack(hidden, hidden, layers, kernel_size)
        self.unembed = nn.Sequential(nn.Conv2d(hidden, folded, 1), nn.PixelShuffle(patch))

    def forward(self, x: Tensor) -> Tensor:
        check_frames(x, self.in_frames, self.channels, "convlstm")
        x, size = pad_to_multiple(x, self.patch)
        batch, _, _, height, width = x.shape
        zeros = x.new_zeros(batch, self.hidden, height // self.patch, width // self.patch)
        states = [(zeros, zeros)] * self.layers

        embedded = self.embed(x.flatten(0, 1)).unflatten(0, (batch, self.in_frames))
        for t in range(self.in_frames):
            states = self.encoder(embedded[:, t], states)

        frame, outputs = x[:, -1], []
        for _ in range(self.out_frames):
            states = self.forecaster(self.embed(frame), states)
            frame = self.unembed(states[-1][0])
            outputs.append(frame)
        return crop(torch.stack(outputs, dim=1), size)
