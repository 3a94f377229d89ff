"""SpatioTemporalPerformerForecaster: the Forecaster around the SpatioTemporal Performer (sensor series).

Missing context values reach the model as "not given" tokens rather than as zeros, and the model decodes any
number of target steps in one call. :func:`SpatioTemporalPerformer_Forecaster` (the seed's name) builds it from
the seed's flat constructor arguments.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.forecasting.forecaster import Forecaster
from sfp.forecasting.moved import group_flat
from sfp.models.performer import PerformerConfig, SpatioTemporalPerformer
from sfp.options import coerce


class SpatioTemporalPerformerForecaster(Forecaster):
    """Forecasts ``(B, T, d_y)`` series with a :class:`~sfp.models.performer.SpatioTemporalPerformer`.

    model: its :class:`~sfp.models.performer.PerformerConfig` (or a mapping of it); variables_per_token: see
    :class:`~sfp.models.performer.SpatioTemporalPerformer` (1: a token per variable and step; ``d_y_context``: a
    token per step). ``forecaster_options`` are
    the :class:`Forecaster` options and option groups. With ``linear_head.fit: least_squares`` the read-out starts
    at zero, so the forecast starts as the exact linear forecast and the model learns only what that leaves.
    """

    accepts_context_mask = True

    def __init__(self, d_y_context: int, d_y_target: int, d_x: int,
                 model: PerformerConfig = PerformerConfig(), variables_per_token: int = 1,
                 **forecaster_options: Any) -> None:
        super().__init__(d_y_context=d_y_context, d_y_target=d_y_target, d_x=d_x, **forecaster_options)
        config = coerce(PerformerConfig, model)
        self.model = SpatioTemporalPerformer(d_y_context, d_y_target, d_x, config, variables_per_token)
        if self.linear_options.fit == "least_squares":
            torch.nn.init.zeros_(self.model.readout.weight)
            torch.nn.init.zeros_(self.model.readout.bias)
        self._save_settings(model=config)

    def forward_model_pass(
        self, context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y: Tensor,
        context_mask: Tensor | None = None,
    ) -> Tensor:
        if context_mask is not None:
            context_y = context_y.masked_fill(~context_mask, torch.nan)  # NaN enters the model as "not given"
        return self.model(context_x, context_y, target_x)


SEED_DEFAULTS = {"dropout_emb": 0.1, "dropout_ff": 0.1}
"""The seed's model defaults where they differ from :class:`PerformerConfig`'s."""


def SpatioTemporalPerformer_Forecaster(**seed_arguments: Any) -> SpatioTemporalPerformerForecaster:  # noqa: N802
    """The seed's constructor: flat arguments (``d_model=128, use_revin=True, num_training_steps=30000, ...``),
    sorted into the option groups and the model config, with the seed's dropout defaults."""
    arguments = group_flat(SpatioTemporalPerformerForecaster, seed_arguments)
    arguments["model"] = {**SEED_DEFAULTS, **arguments.get("model", {})}
    try:
        return SpatioTemporalPerformerForecaster(**arguments)
    except TypeError as err:
        raise UserError(f"SpatioTemporalPerformer_Forecaster: {err}") from err
