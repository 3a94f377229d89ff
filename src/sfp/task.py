"""What a dataset is judged on: units, event thresholds and its headline metric.

A :class:`TaskSpec` travels from the dataset registry to the Forecaster's metrics, the rewards and the report, so
that every part agrees on units (storms: 0-255 VIL for thresholds, MSE on VIL/255 like Earthformer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sfp.registry import Registry

if TYPE_CHECKING:
    from torch import Tensor

Bounds = tuple[float | None, float | None]
SEVIR_THRESHOLDS: tuple[float, ...] = (16.0, 74.0, 133.0, 160.0, 181.0, 219.0)


@dataclass(frozen=True)
class TaskSpec:
    """Evaluation settings of one dataset family.

    value_scale: MSE and MAE are reported on ``value / value_scale`` (255 for VIL, 1 elsewhere).
    thresholds: event thresholds in original units (CSI family, FSS); empty when events make no sense.
    pools: block sizes of pooled CSI.
    fss_windows: window sizes of FSS.
    ssim, tke: whether SSIM/PSNR and the TKE spectrum error apply.
    data_range: the value range used by SSIM and PSNR, in original units.
    headline: the metric key that selects checkpoints and serves as the planning reward.
    higher_is_better: the direction of ``headline``.
    bounds: the physical range of the values (lower, upper; None: unbounded), where forecasts and ensemble
    members are kept (:func:`within`).
    heatwaves: whether marine heatwaves are scored (:mod:`sfp.metrics.heatwave_scores`); they need the data
    module's ``heatwave_windows`` (each window's context and climatology).
    """

    name: str
    value_scale: float = 1.0
    thresholds: tuple[float, ...] = ()
    pools: tuple[int, ...] = ()
    fss_windows: tuple[int, ...] = ()
    ssim: bool = False
    tke: bool = False
    data_range: float = 1.0
    headline: str = "mse"
    higher_is_better: bool = False
    bounds: Bounds = (None, None)
    heatwaves: bool = False


STORMS = TaskSpec(
    "storms", value_scale=255.0, thresholds=SEVIR_THRESHOLDS, pools=(4, 16), fss_windows=(5,), ssim=True,
    data_range=255.0, headline="csi_m", higher_is_better=True, bounds=(0.0, 255.0),
)
NAVIER_STOKES = TaskSpec("navier_stokes", tke=True, ssim=False, headline="tke_error", higher_is_better=False)
FLAME = TaskSpec("flame", ssim=True, data_range=1.0, headline="ssim", higher_is_better=True, bounds=(0.0, 1.0))
SENSORS = TaskSpec("sensors", headline="mse", higher_is_better=False)
SENSORS_KOLMOGOROV = TaskSpec("sensors_kolmogorov", headline="mse", higher_is_better=False)
# rain rate in mm/h on a 2 km grid: FSS windows of 8 and 32 km are 4 and 16 pixels
RADAR = TaskSpec("radar", thresholds=(0.5, 1.0, 2.0, 5.0, 10.0), fss_windows=(4, 16), headline="csi_m",
                 higher_is_better=True, bounds=(0.0, None))
# daily SST in °C: MSE in °C²; marine heatwaves against the climatology of the training years, the strong cores
# (category II and above) as the headline
OCEAN = TaskSpec("ocean", heatwaves=True, headline="strong_core_csi", higher_is_better=True)

TASKS: Registry[TaskSpec] = Registry.of("task", {
    t.name: t for t in (STORMS, NAVIER_STOKES, FLAME, SENSORS, SENSORS_KOLMOGOROV, RADAR, OCEAN)})


def within(values: Tensor, bounds: Bounds) -> Tensor:
    """``values`` clamped into ``bounds``. Where the truth lies inside them, this never moves a value away from it,
    so no error grows, and still regions at a bound (a burnt-out fuel field, a dry pixel) come out exact."""
    return values if bounds == (None, None) else values.clamp(*bounds)
