"""SpatioTemporalPerformerForecaster: the Forecaster around the SpatioTemporal Performer (sensor series).

Keeps the seed's constructor arguments (alias ``SpatioTemporalPerformer_Forecaster``, the seed's name). Missing
context values reach the model as "not given" tokens rather than as zeros, the model decodes any number of
target steps in one call, and the FAVOR+ features are redrawn every ``redraw_interval`` optimizer steps through
a hook that :meth:`Forecaster.configure_optimizers` puts on the optimizer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sfp.forecasting.forecaster import Forecaster
from sfp.models.performer import SpatioTemporalPerformer


class SpatioTemporalPerformerForecaster(Forecaster):
    """Forecasts ``(B, T, d_y)`` series with a :class:`~sfp.models.performer.SpatioTemporalPerformer`.

    Model arguments (the seed's): d_model, d_q_k and d_v (per head; default d_model / n_heads), n_heads,
    n_encoder_layers, n_decoder_layers, d_ff (default 4 d_model), time_emb_dim, the dropout rates,
    redraw_interval (optimizer steps between FAVOR+ redraws; 0 never redraws) and performer_attention_kernel
    (``"softmax"`` or ``"relu"``). Beyond the seed: n_features (FAVOR+ features per head), the attention kind of
    each slot (``"exact"`` or ``"favor"``), causal_decoder and feature_seed (of the random features; from torch's
    global generator when None; not ``seed``, which Lightning would confuse with the data module's ``seed`` when it
    merges both modules' hyperparameters for the logger).
    ``forecaster_options`` are the :class:`Forecaster` options (context_len, target_len, loss, l2_regul_factor,
    normalization, decomposition, linear head, autoregressive training and scheduled sampling, optimizer and
    schedule, num_training_steps).
    """

    accepts_context_mask = True

    def __init__(
        self, d_y_context: int, d_y_target: int, d_x: int, d_model: int = 128, d_q_k: int | None = None,
        d_v: int | None = None, n_heads: int = 8, n_encoder_layers: int = 4, n_decoder_layers: int = 4,
        d_ff: int | None = None, time_emb_dim: int = 6, dropout_emb: float = 0.1, dropout_qkv: float = 0.0,
        dropout_ff: float = 0.1, dropout_attn_out: float = 0.0, redraw_interval: int = 1000,
        performer_attention_kernel: str = "softmax", n_features: int | None = None, local_attention: str = "exact",
        global_attention: str = "favor", local_cross_attention: str = "exact", global_cross_attention: str = "favor",
        causal_decoder: bool = False, feature_seed: int | None = None, **forecaster_options: Any,
    ) -> None:
        super().__init__(d_y_context=d_y_context, d_y_target=d_y_target, d_x=d_x, **forecaster_options)
        self.model = SpatioTemporalPerformer(
            d_y_context, d_y_target, d_x, d_model=d_model, d_q_k=d_q_k, d_v=d_v, n_heads=n_heads,
            n_encoder_layers=n_encoder_layers, n_decoder_layers=n_decoder_layers, d_ff=d_ff,
            time_emb_dim=time_emb_dim, dropout_emb=dropout_emb, dropout_qkv=dropout_qkv, dropout_ff=dropout_ff,
            dropout_attn_out=dropout_attn_out, local_attention=local_attention, global_attention=global_attention,
            local_cross_attention=local_cross_attention, global_cross_attention=global_cross_attention,
            n_features=n_features, kernel=performer_attention_kernel, redraw_interval=redraw_interval,
            causal_decoder=causal_decoder, seed=feature_seed,
        )
        if self.linear_fit == "least_squares":  # start as the exact linear forecast; learn only what it leaves
            torch.nn.init.zeros_(self.model.readout.weight)
            torch.nn.init.zeros_(self.model.readout.bias)
        self.save_hyperparameters()

    def forward_model_pass(
        self, context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y: Tensor,
        context_mask: Tensor | None = None,
    ) -> Tensor:
        if context_mask is not None:
            context_y = context_y.masked_fill(~context_mask, torch.nan)  # NaN enters the model as "not given"
        return self.model(context_x, context_y, target_x)


SpatioTemporalPerformer_Forecaster = SpatioTemporalPerformerForecaster
