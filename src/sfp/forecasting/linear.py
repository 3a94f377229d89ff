"""LinearForecaster: the Forecaster's linear head alone, solved by least squares on the training windows.

The linear reference for series: per variable (one map shared by all with ``linear_head.shared_weights``) or
reading every variable's window (``linear_head.cross_variable``: a vector autoregression). Nothing is trained by
gradient: the head is solved at the start of fitting and the training steps only record the metrics, so ``sfp fit``
and ``sfp test`` work as for any model. A deep model with the same head must beat this to add anything.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from sfp.forecasting.forecaster import Forecaster
from sfp.forecasting.options import LinearHeadOptions
from sfp.options import coerce


class LinearForecaster(Forecaster):
    """Forecasts ``(B, T, d_y)`` series (or fields, per pixel) with a least-squares linear map of the context.

    ``linear_head``: the head's options; its ``window`` defaults to all ``context_len`` steps and its ``fit`` is
    always ``least_squares``. ``forecaster_options`` are the other :class:`Forecaster` options and groups.
    """

    def __init__(self, d_y_context: int, d_y_target: int, context_len: int, target_len: int,
                 linear_head: LinearHeadOptions = LinearHeadOptions(), **forecaster_options: Any) -> None:
        head = coerce(LinearHeadOptions, linear_head)
        head = replace(head, window=head.window or context_len, fit="least_squares")
        super().__init__(d_y_context=d_y_context, d_y_target=d_y_target, context_len=context_len,
                         target_len=target_len, linear_head=head, **forecaster_options)
        self._save_settings()

    def forward_model_pass(self, context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y: Tensor) -> Tensor:
        return torch.zeros_like(target_y)

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        """Records the training metrics; returns no loss, so nothing is back-propagated or changed."""
        with torch.no_grad():
            self._shared_step(batch, "train")
