"""Probabilistic nowcasts: K futures imagined by the world model around the agent's forecast.

The imagination needs no truth, only the context and the agent's forecast (the action). How members are made from
the imagined futures (``centring``): ``none``, the imagined futures themselves; ``reconstruction``,
``forecast + (imagined − reconstruction of the forecast)``, so that the decoder's blur cancels; ``mean``,
``forecast + (imagined − their mean)``, so that the members' mean is the forecast and only the imagined departures
remain. A :class:`SpreadLaw` then widens or narrows the departures lead by lead (the imagination's spread does not
grow with the lead time as forecast errors do); with a ``wet`` threshold, departures apply only where the forecast
reaches it (a world model that imagines drizzle leaves the dry pixels as the forecast has them); members are kept
inside the task's physical value range (``bounds``: VIL 0–255, rain rate ≥ 0). A :class:`Calibration` holds one
task's choice of all of these, made on its validation split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import NamedTuple

import torch
import yaml
from torch import Tensor

from sfp.errors import UserError
from sfp.forecasting.forecaster import Forecaster
from sfp.planning.centring import CENTRINGS
from sfp.planning.options import Imagination
from sfp.planning.world_model import WorldModel
from sfp.task import Bounds, within


class SpreadLaw(NamedTuple):
    """Departures from the centre at lead ``t`` (1, 2, ...) scaled by ``first * t ** growth``."""

    first: float = 1.0
    growth: float = 0.0

    def factors(self, leads: int) -> Tensor:
        """The ``(leads,)`` scale factors."""
        return self.first * torch.arange(1, leads + 1, dtype=torch.float64).pow(self.growth)

    @classmethod
    def fit(cls, spread_skill: Sequence[float]) -> SpreadLaw:
        """The law that brings a spread–skill ratio ``r_t ≈ a t^b`` (per lead, fit by least squares in logs) to 1:
        ``first = 1/a``, ``growth = -b``."""
        ratios = torch.as_tensor(spread_skill, dtype=torch.float64)
        if ratios.ndim != 1 or len(ratios) < 2 or not (ratios > 0).all():
            raise ValueError(f"need two or more positive spread-skill ratios, got {spread_skill!r}")
        log_t = torch.arange(1, len(ratios) + 1, dtype=torch.float64).log()
        design = torch.stack([torch.ones_like(log_t), log_t], dim=1)
        intercept, slope = torch.linalg.lstsq(design, ratios.log()[:, None]).solution[:, 0].tolist()
        return cls(math.exp(-intercept), -slope)


KEEP_SPREAD = SpreadLaw()  # departures as imagined


class Calibration(NamedTuple):
    """How members are made for one task: the imagination's ``temperature`` and ``candidates``, the ``centring``
    (one of :data:`~sfp.planning.centring.CENTRINGS`, no default: each calibration names its own), the ``spread``
    law and the ``wet`` threshold (None: departures everywhere)."""

    temperature: float
    candidates: int
    centring: str
    spread: SpreadLaw = KEEP_SPREAD
    wet: float | None = None


CALIBRATIONS = Path(__file__).with_name("calibrations.yaml")
"""The calibrations a benchmark chose, per task, with their dates (a file, not code: measured, not designed)."""


@cache
def calibrations() -> dict[str, Calibration]:
    """The shipped calibrations by task name."""
    rows = yaml.safe_load(CALIBRATIONS.read_text())
    return {task: Calibration(**{**row, "spread": SpreadLaw(**row["spread"])}) for task, row in rows.items()}


def calibration(task: str | None) -> Calibration:
    """The calibration of ``task`` (a task name); where it has none, storms' without its wet threshold (a value in
    storms' units)."""
    chosen = calibrations()
    return chosen[task] if task in chosen else chosen["storms"]._replace(wet=None)


class EnsembleForecast(NamedTuple):
    """The deterministic forecast ``(B, T, C, H, W)`` and the members ``(B, K, T, C, H, W)``, original units."""

    forecast: Tensor
    members: Tensor


def centre_members(imagined: Tensor, forecast: Tensor, centring: str, reconstruction: Tensor | None = None,
                   bounds: Bounds = (None, None), spread: SpreadLaw = KEEP_SPREAD, wet: float | None = None) -> Tensor:
    """Members ``(B, K, T, C, H, W)`` from imagined futures, by ``centring`` (see the module doc), their departures
    scaled by ``spread`` and kept where ``forecast >= wet``, inside ``bounds``; ``reconstruction`` (the world
    model's decode of the forecast) is needed by ``reconstruction``."""
    centre = CENTRINGS.get(centring)(imagined, reconstruction)
    if centre is None:
        if spread != KEEP_SPREAD or wet is not None:
            raise UserError("a spread law and a wet threshold act on departures from a centre: choose centring "
                            "'mean' or 'reconstruction'")
    else:
        imagined = departures_around(forecast, imagined, centre, spread.factors(imagined.shape[2]), wet)
    return within(imagined, bounds)


def departures_around(forecast: Tensor, imagined: Tensor, centre: Tensor, factors: Tensor | None = None,
                      wet: float | None = None) -> Tensor:
    """``forecast (B, T, ...)`` plus the departures of ``imagined (B, K, T, ...)`` from ``centre (B, T, ...)``,
    scaled per lead time by ``factors (T,)`` and kept where ``forecast >= wet``."""
    departures = imagined - centre.unsqueeze(1)
    if factors is not None:
        departures = departures * factors.to(imagined).reshape(1, 1, -1, *[1] * (imagined.ndim - 3))
    if wet is not None:
        departures = departures * (forecast >= wet).unsqueeze(1)
    return forecast.unsqueeze(1) + departures


def imagine_members(world_model: WorldModel, context: Tensor, forecast: Tensor, imagination: Imagination,
                    generator: torch.Generator | None = None, centring: str = "mean",
                    bounds: Bounds = (None, None), spread: SpreadLaw = KEEP_SPREAD,
                    wet: float | None = None) -> Tensor:
    """``imagination.samples`` members ``(B, K, T, C, H, W)`` imagined around ``forecast`` (see the module doc);
    candidates are capped at the codebook size."""
    imagination = replace(imagination, candidates=min(imagination.candidates, world_model.codebook_size))
    imagined = world_model.imagine(context, forecast, imagination, generator)
    reconstruction = world_model.reconstruct(forecast, context) if centring == "reconstruction" else None
    return centre_members(imagined, forecast, centring, reconstruction, bounds, spread, wet)


@torch.no_grad()
def forecast_ensemble(agent: Forecaster, world_model: WorldModel, batch: Sequence[Tensor],
                      imagination: Imagination, generator: torch.Generator | None = None,
                      centring: str = "mean", bounds: Bounds = (None, None),
                      spread: SpreadLaw = KEEP_SPREAD, wet: float | None = None) -> EnsembleForecast:
    """The agent's forecast of a ``(context_x, context_y, target_x, ...)`` batch and ``imagination.samples``
    members imagined around it."""
    context_x, context, target_x = batch[:3]
    forecast = agent.forecast(context_x, context, target_x)
    return EnsembleForecast(forecast, imagine_members(world_model, context, forecast, imagination, generator,
                                                      centring, bounds, spread, wet))
