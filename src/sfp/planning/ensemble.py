"""Probabilistic nowcasts: K futures imagined by the world model around the agent's forecast.

The imagination needs no truth, only the context and the agent's forecast (the action). A member is either the
imagined future itself, or, centred, ``forecast + (imagined − reconstruction of the forecast)``: the decoder's
blur then cancels and only the imagined departures from the forecast remain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

import torch
from torch import Tensor

from sfp.forecasting.forecaster import Forecaster
from sfp.planning.options import Imagination
from sfp.planning.world_model import WorldModel

# Chosen on storms' validation split by ``python -m benchmarks ensemble`` (docs/experiments.md, 2026-11-29)
CALIBRATED = {"temperature": 10.0, "candidates": 192, "centred": False}


class EnsembleForecast(NamedTuple):
    """The deterministic forecast ``(B, T, C, H, W)`` and the members ``(B, K, T, C, H, W)``, original units."""

    forecast: Tensor
    members: Tensor


def imagine_members(world_model: WorldModel, context: Tensor, forecast: Tensor, imagination: Imagination,
                    generator: torch.Generator | None = None, centred: bool = True) -> Tensor:
    """``imagination.samples`` members ``(B, K, T, C, H, W)`` imagined around ``forecast`` (see the module doc);
    candidates are capped at the codebook size."""
    imagination = replace(imagination, candidates=min(imagination.candidates, world_model.codebook_size))
    imagined = world_model.imagine(context, forecast, imagination, generator)
    if not centred:
        return imagined
    return forecast.unsqueeze(1) + imagined - world_model.reconstruct(forecast, context).unsqueeze(1)


@torch.no_grad()
def forecast_ensemble(agent: Forecaster, world_model: WorldModel, batch: Sequence[Tensor],
                      imagination: Imagination, generator: torch.Generator | None = None,
                      centred: bool = True) -> EnsembleForecast:
    """The agent's forecast of a ``(context_x, context_y, target_x, ...)`` batch and ``imagination.samples``
    members imagined around it."""
    context_x, context, target_x = batch[:3]
    forecast = agent.forecast(context_x, context, target_x)
    return EnsembleForecast(forecast, imagine_members(world_model, context, forecast, imagination, generator,
                                                      centred))
