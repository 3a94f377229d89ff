"""LSTMForecaster: the recurrent baseline, an LSTM encoder–decoder (sequence to sequence) as a Forecaster.

The encoder reads the context step by step; the decoder starts from its final state and the last context value
and unrolls one step at a time, feeding its own forecast back, as in spacetimeformer's LSTM comparison. Each
decoder step predicts the change from the previous value through a head that starts at zero, so the untrained
model is persistence.
Time features are not used.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from sfp.errors import UserError
from sfp.forecasting.forecaster import Forecaster


class LSTMForecaster(Forecaster):
    """Forecasts ``(B, T, d_y)`` series with an LSTM encoder–decoder of ``num_layers`` layers of ``hidden_size``.

    ``dropout`` acts between stacked layers. ``forecaster_options`` are the :class:`Forecaster` options and option
    groups (a least-squares linear head makes the LSTM learn what a linear forecast leaves).
    """

    def __init__(self, d_y_context: int, d_y_target: int, context_len: int | None = None,
                 target_len: int | None = None, hidden_size: int = 128, num_layers: int = 2, dropout: float = 0.0,
                 **forecaster_options: Any) -> None:
        super().__init__(d_y_context=d_y_context, d_y_target=d_y_target, context_len=context_len,
                         target_len=target_len, **forecaster_options)
        if hidden_size < 1 or num_layers < 1 or not 0 <= dropout < 1:
            raise UserError(f"need hidden_size >= 1, num_layers >= 1 and 0 <= dropout < 1; got {hidden_size}, "
                            f"{num_layers}, {dropout}")
        layers = {"hidden_size": hidden_size, "num_layers": num_layers, "batch_first": True,
                  "dropout": dropout if num_layers > 1 else 0.0}
        self.encoder = nn.LSTM(d_y_context, **layers)
        self.decoder = nn.LSTM(d_y_context, **layers)
        self.head = nn.Linear(hidden_size, d_y_context)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self._save_settings()

    def forward_model_pass(self, context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y: Tensor) -> Tensor:
        if context_y.ndim != 3:
            raise UserError(f"LSTMForecaster forecasts series (B, T, d_y), got a batch of shape "
                            f"{tuple(context_y.shape)}")
        _, state = self.encoder(context_y)
        value, steps = context_y[:, -1:], []
        for _ in range(target_y.shape[1]):
            out, state = self.decoder(value, state)
            value = value + self.head(out)
            steps.append(value)
        return torch.cat(steps, 1)
