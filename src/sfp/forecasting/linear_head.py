"""A DLinear-style linear autoregressive head: a learned linear map from the last context steps to the horizon.

Each forecast step is a weighted sum of the last ``window`` context values of the same variable plus a bias. With
``shared_weights`` one map serves every variable; otherwise each variable (the channel of a field, the variable
of a series) has its own. Spatial positions of a field always share their channel's map. The weights start as a
plain average of the window, a sensible level forecast before training.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sfp.errors import UserError


class LinearHead(nn.Module):
    """Maps ``(B, T_context, V, *rest)`` to ``(B, horizon, V, *rest)`` from the last ``window`` steps."""

    def __init__(self, window: int, horizon: int, num_variables: int, shared_weights: bool = False):
        super().__init__()
        if window < 1 or horizon < 1:
            raise UserError(f"linear head needs window >= 1 and horizon >= 1, got {window} and {horizon}")
        maps = 1 if shared_weights else num_variables
        self.window, self.horizon, self.num_variables = window, horizon, num_variables
        self.weight = nn.Parameter(torch.full((maps, horizon, window), 1.0 / window))
        self.bias = nn.Parameter(torch.zeros(maps, horizon))

    def forward(self, context: Tensor) -> Tensor:
        batch, steps, variables = context.shape[:3]
        if steps < self.window:
            raise UserError(f"linear_window={self.window} is longer than the context ({steps} steps)")
        if variables != self.num_variables:
            raise UserError(f"linear head expects {self.num_variables} variables on axis 2, got {variables}")
        weight = self.weight.expand(variables, -1, -1)
        bias = self.bias.expand(variables, -1).transpose(0, 1)  # (horizon, V)
        out = torch.einsum("vhw,bwv...->bhv...", weight, context[:, -self.window:])
        return out + bias.view(1, self.horizon, variables, *([1] * (context.ndim - 3)))
