"""DLinearForecaster: the DLinear baseline (Zeng et al., "Are Transformers Effective for Time Series
Forecasting?", 2023) as a Forecaster.

The context is split by a moving average into trend and seasonal parts; one linear map over the time axis
forecasts each part and the two forecasts are added. The maps are per variable, or shared by all variables with
``shared_weights``. Time features are not used. A cheap, strong reference that a deep model on the same series
must beat.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from sfp.forecasting.decomposition import check_kernel_size, decompose
from sfp.forecasting.forecaster import Forecaster
from sfp.forecasting.linear_head import LinearHead


class DLinearForecaster(Forecaster):
    """Forecasts ``(B, T, d_y)`` series (or ``(B, T, C, H, W)`` fields, per channel) with two linear maps.

    Each map reads all ``context_len`` steps and writes the native output (``target_len`` steps, or
    ``rollout.ar_step`` in autoregressive mode). ``kernel_size`` is the (odd) width of the trend's moving
    average. ``forecaster_options`` are the :class:`Forecaster` options and option groups.
    """

    def __init__(self, d_y_context: int, d_y_target: int, context_len: int, target_len: int,
                 kernel_size: int = 25, shared_weights: bool = False, **forecaster_options: Any) -> None:
        super().__init__(d_y_context=d_y_context, d_y_target=d_y_target, context_len=context_len,
                         target_len=target_len, **forecaster_options)
        check_kernel_size(kernel_size)
        self.kernel_size = kernel_size
        self.seasonal = LinearHead(context_len, self.step_len, d_y_context, shared_weights)
        self.trend = LinearHead(context_len, self.step_len, d_y_context, shared_weights)
        self._save_settings()

    def forward_model_pass(self, context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y: Tensor) -> Tensor:
        seasonal, trend = decompose(context_y, self.kernel_size)
        return self.seasonal(seasonal) + self.trend(trend)
