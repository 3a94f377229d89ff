"""The embedded datasets by name: generator, evaluation task, channel count and the standard dataset's arguments."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from sfp.data import flame, navier_stokes, ocean, sensors, storms
from sfp.registry import Registry
from sfp.task import TASKS, TaskSpec


@dataclass(frozen=True)
class DatasetSpec:
    """One embedded dataset.

    kind: ``"field"`` (generate returns ``(n, T, C, H, W)``) or ``"series"`` (``(T, N)``, one long series).
    channels: C for fields, N for series.
    defaults: keyword arguments of ``generate`` for the standard dataset (read-only; ``seed`` and ``cache`` are
        left to the caller).
    """

    name: str
    kind: str
    task: TaskSpec
    generate: Callable[..., np.ndarray]
    channels: int
    defaults: Mapping[str, object]

    def __reduce__(self) -> tuple[Callable[[str], DatasetSpec], tuple[str]]:
        """Pickled by name (its defaults are a read-only view): data modules travel to spawned processes."""
        return get_dataset, (self.name,)


def _spec(name: str, kind: str, generate: Callable[..., np.ndarray], channels: int, **defaults: object) -> DatasetSpec:
    return DatasetSpec(name, kind, TASKS[name], generate, channels, MappingProxyType(defaults))


DATASETS: Registry[DatasetSpec] = Registry("dataset")
for _dataset in (
    _spec("storms", "field", storms.generate, 1, n=256, frames=25, size=64),
    _spec("navier_stokes", "field", navier_stokes.generate, 1, n=256, frames=20, size=64, viscosity=1e-4),
    _spec("flame", "field", flame.generate, 2, n=256, frames=25, size=64),
    # 20 years of daily SST, one sequence per year, so that splits take whole years
    _spec("ocean", "field", ocean.generate, 1, n=20, frames=365, size=64),
    _spec("sensors", "series", sensors.generate, sensors.LATTICE**2, length=20000, size=32, viscosity=1e-3,
          dt_sample=0.05),
    # weakly chaotic Kolmogorov flow (forcing wavenumber 2, Re 32: nu = 1 / (2 pi Re)), where a linear map of the
    # probes' past no longer predicts 16 steps ahead (docs/experiments.md, "Sensors")
    _spec("sensors_kolmogorov", "series", sensors.generate, sensors.LATTICE**2, length=60000, size=32,
          viscosity=1 / (64 * math.pi), dt_sample=0.05, spin_up=50.0, forcing="kolmogorov", drag=0.2 * math.pi),
):
    DATASETS.add(_dataset.name, _dataset)


def get_dataset(name: str) -> DatasetSpec:
    """The embedded dataset called ``name``; an unknown name raises :class:`UserError` listing the known ones."""
    return DATASETS.get(name)
