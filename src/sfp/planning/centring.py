"""Centrings: where the departures of imagined futures are measured from, one registry (``CENTRINGS.get(name)``).

A centring maps the imagined futures ``(B, K, T, ...)`` and the world model's decode of the forecast (its
reconstruction, ``(B, T, ...)`` or None) to a centre ``(B, T, ...)``, or to None: the futures are used as decoded.
Members (:func:`sfp.planning.ensemble.centre_members`) and the mean-centred planner add the departures from it to
the forecast.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from sfp.registry import Registry

Centring = Callable[[Tensor, Tensor | None], Tensor | None]


def _none(imagined: Tensor, reconstruction: Tensor | None) -> None:
    return None


def _mean(imagined: Tensor, reconstruction: Tensor | None) -> Tensor:
    return imagined.mean(1)


def _reconstruction(imagined: Tensor, reconstruction: Tensor | None) -> Tensor:
    if reconstruction is None:
        raise ValueError("centring 'reconstruction' needs the reconstruction of the forecast")
    return reconstruction


CENTRINGS: Registry[Centring] = Registry.of("centring", {"none": _none, "mean": _mean,
                                                         "reconstruction": _reconstruction})
