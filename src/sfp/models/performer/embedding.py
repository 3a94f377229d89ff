"""Token embedding of the SpatioTemporal Performer: each (variable, time step) becomes one ``d_model`` vector.

token = value embedding (with the "given" indicator as one more input, which adds a learned vector to given
tokens: the indicator embedding) + Time2Vec of the step's time features + sinusoidal position of the step
+ the variable's embedding. Values that are missing (NaN) or unknown (the targets) enter as 0; a token is "given"
when all its values are.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Time2Vec(nn.Module):
    """Time2Vec (Kazemi et al., 2019): one linear and ``dim - 1`` periodic features of the time features."""

    def __init__(self, d_x: int, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d_x, dim)

    def forward(self, x: Tensor) -> Tensor:
        z = self.linear(x)
        return torch.cat([z[..., :1], torch.sin(z[..., 1:])], dim=-1)


def sinusoidal_encoding(positions: Tensor, dim: int) -> Tensor:
    """The transformer's fixed ``sin``/``cos`` encoding of (possibly fractional) positions: ``(..., dim)``."""
    half = (dim + 1) // 2
    frequencies = torch.exp(-math.log(10_000.0) * torch.arange(half, device=positions.device) / half)
    angles = positions.float()[..., None] * frequencies
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)[..., :dim]


def grid_encoding(rows: int, cols: int, dim: int, device: torch.device | None = None) -> Tensor:
    """Fixed 2-D encoding of the cells of a ``rows x cols`` grid, row-major: ``(rows * cols, dim)``."""
    row_dim = dim // 2
    row = sinusoidal_encoding(torch.arange(rows, device=device), row_dim)
    col = sinusoidal_encoding(torch.arange(cols, device=device), dim - row_dim)
    return torch.cat([row[:, None].expand(-1, cols, -1), col[None].expand(rows, -1, -1)], dim=-1).flatten(0, 1)


class TokenEmbedding(nn.Module):
    """Embeds values ``(B, N, T, v)`` (NaN = not given) at time features ``(B, T, d_x)`` -> ``(B, N, T, d)``."""

    def __init__(self, value_dim: int, d_x: int, d_model: int, time_emb_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.d_model = d_model
        self.value = nn.Linear(value_dim + 1, d_model)
        self.time = nn.Sequential(Time2Vec(d_x, time_emb_dim), nn.Linear(time_emb_dim, d_model, bias=False))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, values: Tensor, variables: Tensor, first_step: int = 0) -> Tensor:
        """``variables`` ``(N, d)`` are the variables' embeddings; steps are numbered from ``first_step``."""
        given = torch.isfinite(values).all(dim=-1, keepdim=True)
        inputs = torch.cat([torch.where(torch.isfinite(values), values, 0.0), given.to(values.dtype)], dim=-1)
        steps = torch.arange(first_step, first_step + x.shape[1], device=x.device)
        per_step = self.time(x) + sinusoidal_encoding(steps, self.d_model).to(x.dtype)
        return self.dropout(self.value(inputs) + per_step[:, None] + variables[:, None])
