"""What sfp keeps in a checkpoint beside Lightning's own keys: the forecaster's class, the physical range its forecasts
are kept in, and, in a self-training checkpoint, the agent's class and constructor arguments (read by
:mod:`sfp.forecasting.checkpoints`, written by the Forecaster and :class:`~sfp.planning.SFPModule`)."""

from __future__ import annotations

from typing import Any

from sfp.task import Bounds

CLASS_KEY = "sfp_forecaster_class"
"""Where a Forecaster checkpoint keeps its class name."""
BOUNDS_KEY = "sfp_bounds"
"""Where a checkpoint keeps the physical range its forecasts are kept in (the task's, from training)."""


def read_bounds(checkpoint: dict[str, Any]) -> Bounds:
    """The forecasts' physical range a checkpoint was trained with (none for checkpoints older than bounds)."""
    low, high = checkpoint.get(BOUNDS_KEY, (None, None))
    return low, high


AGENT_CLASS_KEY = "sfp_agent_class"
"""Where a self-training checkpoint keeps its agent's class name."""
AGENT_SETTINGS_KEY = "agent_hyper_parameters"
"""Where a self-training checkpoint keeps its agent's constructor arguments."""
AGENT_PREFIX = "agent."
"""The prefix of the agent's weights in a self-training checkpoint's state dict."""
