"""LinearForecaster: the Forecaster's linear head alone, solved by least squares on the training windows.

The linear reference for series: per variable (one map shared by all with ``shared_weights``) or reading every
variable's window (``cross_variable``: a vector autoregression). Nothing is trained by gradient: the head is solved
at the start of fitting and the training steps only record the metrics, so ``sfp fit`` and ``sfp test`` work as for any
model. A deep model with the same head must beat this to add anything.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sfp.forecasting.forecaster import Forecaster


class LinearForecaster(Forecaster):
    """Forecasts ``(B, T, d_y)`` series (or fields, per pixel) with a least-squares linear map of the context.

    ``window``: context steps read (default: all ``context_len``). ``forecaster_options`` are the
    :class:`Forecaster` options (normalization, loss, ...; the linear-head options are set here).
    """

    def __init__(self, d_y_context: int, d_y_target: int, context_len: int, target_len: int,
                 window: int | None = None, shared_weights: bool = False, cross_variable: bool = False,
                 **forecaster_options: Any) -> None:
        super().__init__(d_y_context=d_y_context, d_y_target=d_y_target, context_len=context_len,
                         target_len=target_len, linear_window=window or context_len,
                         linear_shared_weights=shared_weights, linear_cross_variable=cross_variable,
                         linear_fit="least_squares", **forecaster_options)
        self.save_hyperparameters()

    def forward_model_pass(self, context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y: Tensor) -> Tensor:
        return torch.zeros_like(target_y)

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        """Records the training metrics; returns no loss, so nothing is back-propagated or changed."""
        with torch.no_grad():
            self._shared_step(batch, "train")
