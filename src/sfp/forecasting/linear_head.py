"""A DLinear-style linear autoregressive head: a learned linear map from the last context steps to the horizon.

Each forecast step is a weighted sum of the last ``window`` context values of the same variable plus a bias. With
``shared_weights`` one map serves every variable; otherwise each variable (the channel of a field, the variable
of a series) has its own. Spatial positions of a field always share their channel's map. The weights start as a
plain average of the window, a sensible level forecast before training; :meth:`LinearHead.normal_equations` and
:meth:`LinearHead.solve` fit them by least squares instead, in one pass over the data.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sfp.errors import UserError
from sfp.forecasting.options import LinearHeadOptions


class LinearHead(nn.Module):
    """Maps ``(B, T_context, V, *rest)`` to ``(B, horizon, V, *rest)`` from the last ``window`` steps.

    With ``cross_variable`` each variable's forecast reads the last ``window`` steps of every variable (a vector
    autoregression); ``shared_weights`` does not apply then.
    """

    def __init__(self, window: int, horizon: int, num_variables: int, shared_weights: bool = False,
                 cross_variable: bool = False):
        super().__init__()
        if window < 1 or horizon < 1:
            raise UserError(f"linear head needs window >= 1 and horizon >= 1, got {window} and {horizon}")
        if shared_weights and cross_variable:
            raise UserError("a linear head is either shared by the variables or reads them all (cross_variable)")
        self.window, self.horizon, self.num_variables = window, horizon, num_variables
        self.cross_variable = cross_variable
        maps = 1 if shared_weights else num_variables
        inputs = window * num_variables if cross_variable else window
        weight = torch.full((maps, horizon, inputs), 1.0 / window)
        if cross_variable:  # each variable starts as the average of its own window
            own = torch.eye(num_variables).repeat_interleave(window, 1)  # (V, V * window)
            weight = weight * own[:, None]
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(maps, horizon))

    def _window(self, context: Tensor) -> Tensor:
        """The last ``window`` steps, checked: ``(B, window, V, *rest)``."""
        steps, variables = context.shape[1:3]
        if steps < self.window:
            raise UserError(f"linear_window={self.window} is longer than the context ({steps} steps)")
        if variables != self.num_variables:
            raise UserError(f"linear head expects {self.num_variables} variables on axis 2, got {variables}")
        return context[:, -self.window:]

    def forward(self, context: Tensor) -> Tensor:
        window = self._window(context)
        variables = window.shape[2]
        bias = self.bias.expand(variables, -1).transpose(0, 1)  # (horizon, V)
        if self.cross_variable:
            out = torch.einsum("vhi,bi...->bhv...", self.weight, window.movedim(1, 2).flatten(1, 2))
        else:
            out = torch.einsum("vhw,bwv...->bhv...", self.weight.expand(variables, -1, -1), window)
        return out + bias.view(1, self.horizon, variables, *([1] * (context.ndim - 3)))

    def normal_equations(self, context: Tensor, target: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """``(XᵀX, XᵀY)`` in float64 over the rows whose targets are all valid, one system per map.

        A row is one sample, variable and spatial position (one sample and position with ``cross_variable``):
        its inputs (the last ``window`` context values, of every variable with ``cross_variable``) and a 1 (the
        bias) against its ``horizon`` target values (of every variable). ``context (B, T, V, *rest)``; ``target``
        and ``valid`` (bool) ``(B, horizon, V, *rest)``. Sums over batches add up, so the fit can stream through
        a data loader.
        """
        if target.shape[1] != self.horizon:
            raise UserError(f"least-squares fit of the linear head needs {self.horizon} target steps, "
                            f"got {target.shape[1]}")
        window = self._window(context)

        def rows(values: Tensor) -> Tensor:  # (B, S, V, *rest) -> (V, B * prod(rest), S), or (1, ..., V * S)
            values = values.movedim(2, 0).movedim(2, -1)  # (V, B, *rest, S)
            if self.cross_variable:
                values = values.movedim(0, -2).flatten(-2)[None]  # (1, B, *rest, V * S)
            return values.reshape(values.shape[0], -1, values.shape[-1]).double()

        inputs = rows(window)
        inputs = torch.cat([inputs, torch.ones_like(inputs[..., :1])], -1)
        outputs = rows(target)
        weight = rows(valid).all(-1, keepdim=True).double()
        gram = torch.einsum("vni,vnj->vij", inputs * weight, inputs)
        moment = torch.einsum("vni,vnh->vih", inputs * weight, outputs.nan_to_num())
        if self.weight.shape[0] == 1:
            gram, moment = gram.sum(0, keepdim=True), moment.sum(0, keepdim=True)
        return gram, moment

    @torch.no_grad()
    def solve(self, gram: Tensor, moment: Tensor, ridge: float = 1e-8) -> None:
        """Set the weights and bias to the least-squares solution of summed :meth:`normal_equations`.

        ``ridge`` times the mean diagonal of each ``XᵀX`` is added to it, so a window that is constant over the data
        (or a map that saw no rows) still gives a finite solution.
        """
        scale = gram.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1.0)
        eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
        solution = torch.linalg.solve(gram + ridge * scale[:, None, None] * eye, moment)  # (maps, inputs + 1, out)
        if self.cross_variable:  # one system whose outputs are (V, horizon)
            solution = solution[0].unflatten(-1, (self.num_variables, self.horizon)).permute(1, 0, 2)
        self.weight.copy_(solution[:, :-1].transpose(1, 2))
        self.bias.copy_(solution[:, -1])


def linear_head_for(options: LinearHeadOptions, horizon: int | None, context_len: int | None,
                    variables: int) -> LinearHead | None:
    """The head ``options`` ask for over ``horizon`` steps (None for window 0), frozen when least squares fits it."""
    if options.window == 0:
        return None
    if horizon is None:
        raise UserError("linear_head.window > 0 needs target_len (the horizon of the linear head)")
    if context_len is not None and options.window > context_len:
        raise UserError(f"linear_head.window={options.window} is longer than context_len={context_len}")
    head = LinearHead(options.window, horizon, variables, options.shared_weights, options.cross_variable)
    if options.fit == "least_squares":
        head.requires_grad_(False)
    return head
