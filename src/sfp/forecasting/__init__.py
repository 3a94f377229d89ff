"""The Forecaster LightningModule and its parts, and the concrete forecasters (grid, DLinear, linear, LSTM, Performer).

``SpatioTemporalPerformerForecaster`` (and ``SpatioTemporalPerformer_Forecaster``, the seed's constructor) lives in
``sfp.forecasting.performer`` and is imported on first access, so this package imports without it.
"""

from __future__ import annotations

from typing import Any

from sfp.forecasting.checkpoints import load_forecaster
from sfp.forecasting.dlinear import DLinearForecaster
from sfp.forecasting.forecaster import Forecaster
from sfp.forecasting.grid import GridForecaster
from sfp.forecasting.linear import LinearForecaster
from sfp.forecasting.lstm import LSTMForecaster

_LAZY = {"SpatioTemporalPerformerForecaster", "SpatioTemporalPerformer_Forecaster"}

__all__ = ["DLinearForecaster", "Forecaster", "GridForecaster", "LSTMForecaster", "LinearForecaster", "load_forecaster",
           *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from sfp.forecasting import performer

        return getattr(performer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
