"""Synthetic daily sea-surface temperature (SST, °C) with marine heatwaves, ``(years, days, 1, H, W)``.

One continuous daily series, cut into calendar years of ``days`` days (365: no leap days), so that a data module
can deal whole years into train/val/test. The field is the sum of

- a climatology: a mean falling with latitude (row index: south to north), and a seasonal cycle whose amplitude
  grows northward and whose warmest day varies in space;
- mesoscale anomalies: a first-order autoregressive field, advected by a steady current and damped, whose
  standard deviation varies in space (so each pixel has its own 90th percentile);
- heatwave events: warm Gaussian patches born at random days and places, which grow, peak at one to several °C,
  drift and decay over days to weeks.

What a forecaster can know from the past: the climatology, the anomalies' persistence and drift, an event's
drift and its growth or decay once it has begun. What it cannot: the anomalies' fresh noise, and where and when
the next event is born. Optionally a coast (``coast > 0``): land pixels are NaN, as in OISST.

Units: positions and lengths are fractions of the domain side, times are days, temperatures °C.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sfp.data.cache import GeneratorParams, generated_field
from sfp.errors import UserError

log = logging.getLogger(__name__)

Range = tuple[float, float]

YEAR = 365.0  # days of the seasonal cycle


@dataclass(frozen=True)
class OceanParams(GeneratorParams):
    """Knobs of the SST generator; ranges are sampled uniformly per event."""

    south_sst: float = 28.0  # annual mean at the southern edge
    north_sst: float = 14.0  # annual mean at the northern edge
    seasonal_amplitude: Range = (1.5, 5.0)  # half the seasonal range at the southern and the northern edge
    warmest_day: float = 225.0  # day of the year of the seasonal maximum, on average over the domain
    phase_spread: float = 25.0  # how many days the warmest day varies across the domain
    anomaly_std: Range = (0.4, 0.9)  # standard deviation of the mesoscale anomalies, west to east
    anomaly_memory: float = 20.0  # e-folding time of the anomalies, days
    anomaly_scale: float = 0.06  # correlation length of the anomalies
    current: float = 0.004  # speed of the steady current that carries the anomalies, per day
    events_per_year: float = 8.0  # heatwaves born per year over the domain (Poisson)
    lifetime: Range = (10.0, 60.0)  # days from birth to death
    growth: Range = (0.2, 0.5)  # fraction of the life spent growing to the peak
    peak: Range = (1.5, 5.0)  # peak warming at the patch centre, °C
    radius: Range = (0.06, 0.16)  # standard deviation of the patch at its peak
    drift: float = 0.006  # largest drift speed of a patch, per day
    coast: float = 0.0  # fraction of the domain's width that is land along the eastern edge (NaN pixels)

    def validate(self) -> None:
        super().validate()
        if self.lifetime[0] <= 0 or self.radius[0] <= 0 or self.anomaly_memory <= 0 or self.anomaly_scale <= 0:
            raise UserError("ocean lifetime, radius, anomaly_memory and anomaly_scale must be positive")
        if self.coast >= 1:
            raise UserError(f"coast must be a fraction of the domain below 1, got {self.coast}")
        if not 0 < self.growth[0] <= self.growth[1] < 1:
            raise UserError(f"growth must be fractions of the life strictly between 0 and 1, got {self.growth}")


@dataclass(frozen=True)
class Heatwaves:
    """Heatwave patches of the whole series: one entry per event."""

    birth: np.ndarray  # first day (index into the continuous series)
    lifetime: np.ndarray  # days
    growth: np.ndarray  # fraction of the life spent growing
    peak: np.ndarray  # °C at the centre at the peak
    radius: np.ndarray  # standard deviation at the peak
    start: np.ndarray  # (E, 2) centre (x, y) at birth
    velocity: np.ndarray  # (E, 2) drift per day


def heatwave_envelope(age: np.ndarray, lifetime: np.ndarray, growth: np.ndarray) -> np.ndarray:
    """Amplitude relative to the peak at ``age`` days after birth: ``sin²`` rise over the growth fraction of the
    life, ``cos²`` decay over the rest, zero outside the life."""
    phase = age / lifetime
    rising = np.sin(0.5 * np.pi * np.clip(phase / growth, 0, 1)) ** 2
    falling = np.cos(0.5 * np.pi * np.clip((phase - growth) / (1 - growth), 0, 1)) ** 2
    return np.where((phase > 0) & (phase < 1), np.where(phase < growth, rising, falling), 0.0)


def climatology(days: np.ndarray, size: int, p: OceanParams) -> np.ndarray:
    """The generator's own mean SST ``(len(days), size, size)`` on the given days (0 = 1 January)."""
    y = (np.arange(size) + 0.5) / size
    north, east = y[:, None], y[None, :]
    mean = p.south_sst + (p.north_sst - p.south_sst) * north
    amplitude = p.seasonal_amplitude[0] + (p.seasonal_amplitude[1] - p.seasonal_amplitude[0]) * north
    warmest = p.warmest_day + p.phase_spread * np.sin(np.pi * (east - 0.3)) * np.cos(np.pi * north)
    cycle = np.cos(2 * np.pi * (np.asarray(days, dtype=np.float64)[:, None, None] - warmest) / YEAR)
    return mean + amplitude * cycle


def _anomalies(rng: np.random.Generator, total_days: int, size: int, p: OceanParams) -> np.ndarray:
    """Unit-variance AR(1) anomalies carried by the current, ``(total_days, size, size)`` float32, spectral in space."""
    k = np.fft.fftfreq(size, 1.0 / size)[:, None]  # along rows (y)
    kx = np.fft.rfftfreq(size, 1.0 / size)[None, :]
    spectrum = np.exp(-((np.pi * p.anomaly_scale) ** 2) * (k**2 + kx**2))
    spectrum[0, 0] = 0.0
    heading = rng.uniform(0, 2 * np.pi)
    shift = p.current * np.array([np.cos(heading), np.sin(heading)])
    memory = np.exp(-1.0 / p.anomaly_memory)
    step = memory * np.exp(-2j * np.pi * (kx * shift[0] + k * shift[1]))
    noise_scale = np.sqrt(1 - memory**2) * spectrum
    state = spectrum * (rng.standard_normal(spectrum.shape) + 1j * rng.standard_normal(spectrum.shape))
    out = np.empty((total_days, size, size), dtype=np.float32)
    block = 365
    for first in range(0, total_days, block):
        count = min(block, total_days - first)
        draws = rng.standard_normal((2, count, *spectrum.shape))
        coefficients = np.empty((count, *spectrum.shape), dtype=np.complex128)
        for day in range(count):
            state = step * state + noise_scale * (draws[0, day] + 1j * draws[1, day])
            coefficients[day] = state
        out[first:first + count] = np.fft.irfft2(coefficients, s=(size, size))
    return out / out.std()  # the initial state is drawn stationary, so one scale fits the whole series


def sample_heatwaves(rng: np.random.Generator, total_days: int, p: OceanParams) -> Heatwaves:
    """Draw the heatwave patches of a series of ``total_days`` days."""
    count = int(rng.poisson(p.events_per_year * total_days / YEAR))

    def uniform(bounds: Range, shape: tuple[int, ...] = (count,)) -> np.ndarray:
        return rng.uniform(bounds[0], bounds[1], shape)

    heading = rng.uniform(0, 2 * np.pi, count)
    speed = rng.uniform(0, p.drift, count)
    return Heatwaves(
        birth=rng.uniform(-p.lifetime[1], total_days, count), lifetime=uniform(p.lifetime),
        growth=uniform(p.growth), peak=uniform(p.peak), radius=uniform(p.radius),
        start=uniform((0.05, 0.95), (count, 2)),
        velocity=speed[:, None] * np.stack([np.cos(heading), np.sin(heading)], -1),
    )


def _add_heatwaves(field: np.ndarray, events: Heatwaves) -> None:
    """Add every patch to ``field`` (total_days, H, W) in place, over the days of its life."""
    total_days, size = field.shape[0], field.shape[-1]
    grid = (np.arange(size) + 0.5) / size
    for e in range(len(events.birth)):
        first = max(0, int(np.ceil(events.birth[e])))
        last = min(total_days, int(np.floor(events.birth[e] + events.lifetime[e])) + 1)
        if first >= last:
            continue
        days = np.arange(first, last)
        age = days - events.birth[e]
        envelope = heatwave_envelope(age, events.lifetime[e], events.growth[e])
        centre = events.start[e] + age[:, None] * events.velocity[e]
        radius = events.radius[e] * (0.6 + 0.4 * envelope)  # a patch spreads as it grows
        column = np.exp(-0.5 * ((grid[None] - centre[:, :1]) / radius[:, None]) ** 2)
        row = np.exp(-0.5 * ((grid[None] - centre[:, 1:]) / radius[:, None]) ** 2)
        field[first:last] += ((events.peak[e] * envelope)[:, None, None] * row[:, :, None] * column[:, None, :])


def land_mask(size: int, coast: float) -> np.ndarray:
    """True on land: east of a wavy coast that leaves about ``1 - coast`` of the domain's width to the sea."""
    grid = (np.arange(size) + 0.5) / size
    return grid[None, :] > 1 - coast + 0.3 * coast * np.sin(2 * np.pi * grid[:, None])


def _build(years: int, days: int, size: int, seed: int, p: OceanParams) -> np.ndarray:
    rng = np.random.default_rng(seed)
    total = years * days
    east = (np.arange(size) + 0.5) / size
    std = (p.anomaly_std[0] + (p.anomaly_std[1] - p.anomaly_std[0]) * east)[None, None, :]
    field = _anomalies(rng, total, size, p) * std.astype(np.float32)
    _add_heatwaves(field, sample_heatwaves(rng, total, p))
    day_of_year = np.arange(total) % days
    for first in range(0, total, days):  # a year at a time: the climatology in float64 is large
        field[first:first + days] += climatology(day_of_year[first:first + days], size, p).astype(np.float32)
    if p.coast > 0:
        field[:, land_mask(size, p.coast)] = np.nan
    log.info("ocean: generated %d years of %d days on a %dx%d grid", years, days, size, size)
    return field.reshape(years, days, 1, size, size)


def generate(n: int, frames: int = 365, size: int = 64, seed: int = 0, cache: bool = True, **params) -> np.ndarray:
    """Synthetic daily SST in °C, float32 ``(n, frames, 1, size, size)``: ``n`` consecutive years of ``frames``
    days (a year of the seasonal cycle is 365 days whatever ``frames`` is).

    ``params`` override :class:`OceanParams` fields; unknown names raise :class:`UserError`.
    """
    return generated_field("ocean", OceanParams, params, _build, n=n, frames=frames, size=size, channels=1, seed=seed,
                           cache=cache)
