"""Combustion proxy: temperature and fuel on a periodic grid, ``(n, T, 2, H, W)`` with both channels in [0, 1].

    dT/dt = D lap(T) - w . grad(T) - h T + Q r,    dF/dt = -r,    r = A F exp(-E / T)

An Arrhenius reaction burns fuel where it is hot and releases heat, diffusion carries heat to the fresh fuel ahead
(a flame front), wind skews the spread, and heat loss cools the burnt region behind. Fires start at random places
and times. Per sub-step the fuel update is exact for the frozen temperature (so fuel never grows), and upwind
advection with explicit diffusion under the step's stability bound is monotone (so T stays in [0, 1] after the
heat release is capped). Lengths are in pixels and times in frames.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sfp.data.cache import GeneratorParams, generated_field, map_chunks
from sfp.errors import UserError

log = logging.getLogger(__name__)

_CHUNK = 32  # sequences advanced together

Range = tuple[float, float]


@dataclass(frozen=True)
class FlameParams(GeneratorParams):
    """Knobs of the combustion proxy."""

    diffusion: float = 1.0  # heat diffusivity, pixels^2 per frame
    wind: Range = (0.0, 0.6)  # wind speed, pixels per frame, with a random heading per sequence
    rate: float = 220.0  # Arrhenius pre-factor A, per frame
    activation: float = 3.0  # activation temperature E (T in [0, 1])
    heat_release: float = 2.5  # temperature gained by burning a unit of fuel
    heat_loss: float = 0.15  # per frame
    fuel_mean: float = 0.6  # mean fuel load before clipping to [0, 1]
    fuel_contrast: float = 0.45  # standard deviation of the fuel load
    fuel_scale: float = 6.0  # correlation length of the fuel load, pixels
    initial_fires: Range = (1.0, 2.0)  # fires lit at the first frame (uniform integer count)
    ignition_rate: float = 0.06  # mean number of new fires per frame (Poisson)
    ignition_radius: float = 2.0  # pixels

    def validate(self) -> None:
        super().validate()
        if self.activation <= 0 or self.ignition_radius <= 0:
            raise UserError("activation and ignition_radius must be positive")


def _fuel(rng: np.random.Generator, n: int, size: int, p: FlameParams) -> Tensor:
    """Smooth random fuel loads ``(n, size, size)`` in [0, 1]."""
    k = np.fft.fftfreq(size)
    kr = np.fft.rfftfreq(size)
    spectrum = np.exp(-2 * (np.pi * p.fuel_scale) ** 2 * (k[:, None] ** 2 + kr[None, :] ** 2))
    field = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((n, size, size))) * spectrum, s=(size, size))
    field /= field.std(axis=(-2, -1), keepdims=True)
    return torch.from_numpy(np.clip(p.fuel_mean + p.fuel_contrast * field, 0.0, 1.0)).float()


def _ignitions(rng: np.random.Generator, n: int, frames: int, p: FlameParams) -> np.ndarray:
    """Fires as rows ``(sequence, frame, x, y)``: the initial ones at frame 0, then Poisson arrivals."""
    count = rng.integers(round(p.initial_fires[0]), round(p.initial_fires[1]) + 1, n)
    later = rng.poisson(p.ignition_rate * frames, n)
    rows = [
        np.stack([np.full(c, s), np.zeros(c), rng.uniform(0, 1, c), rng.uniform(0, 1, c)], -1) for s, c in
        enumerate(count)
    ] + [
        np.stack([np.full(c, s), rng.integers(0, frames, c), rng.uniform(0, 1, c), rng.uniform(0, 1, c)], -1)
        for s, c in enumerate(later)
    ]
    return np.concatenate(rows) if rows else np.zeros((0, 4))


def _hot_spots(fires: np.ndarray, n: int, size: int, radius: float) -> Tensor:
    """Gaussian hot spots of peak 1 at the given fires, ``(n, size, size)``, overlapping ones combined by max."""
    grid = torch.arange(size, dtype=torch.float32)
    spots = torch.zeros(n, size, size)
    for sequence, _, x, y in fires:
        dx = torch.remainder(grid - x * size + size / 2, size) - size / 2  # periodic distance
        dy = torch.remainder(grid - y * size + size / 2, size) - size / 2
        bump = torch.exp(-(dy[:, None] ** 2 + dx[None, :] ** 2) / (2 * radius**2))
        spots[int(sequence)] = torch.maximum(spots[int(sequence)], bump)
    return spots


class _Combustion:
    """Sub-steps of one chunk of sequences; ``wind`` is ``(n, 2)`` in pixels per frame (x along the last axis)."""

    def __init__(self, p: FlameParams, wind: Tensor):
        self.p = p
        bound = 4 * p.diffusion + wind.abs().sum(-1).max().item()  # monotone when bound * dt <= 1
        self.substeps = max(1, math.ceil(bound / 0.9))
        self.dt = 1.0 / self.substeps
        view = (-1, 1, 1)
        self.wind_pos = [wind[:, i].clamp(min=0).view(view) for i in range(2)]
        self.wind_neg = [wind[:, i].clamp(max=0).view(view) for i in range(2)]

    def step(self, temperature: Tensor, fuel: Tensor) -> tuple[Tensor, Tensor]:
        p, dt = self.p, self.dt
        left, right = temperature.roll(1, -1), temperature.roll(-1, -1)
        down, up = temperature.roll(1, -2), temperature.roll(-1, -2)
        laplacian = left + right + down + up - 4 * temperature
        advection = (
            self.wind_pos[0] * (temperature - left) + self.wind_neg[0] * (right - temperature)
            + self.wind_pos[1] * (temperature - down) + self.wind_neg[1] * (up - temperature)
        )
        rate = p.rate * torch.exp(-p.activation / temperature.clamp(min=1e-3))
        burnt = fuel * -torch.expm1(-rate * dt)
        temperature = temperature + dt * (p.diffusion * laplacian - advection - p.heat_loss * temperature)
        return (temperature + p.heat_release * burnt).clamp_(0.0, 1.0), fuel - burnt


def simulate(fuel: Tensor, wind: Tensor, spots: Sequence[Tensor], p: FlameParams = FlameParams()) -> Tensor:
    """Burn fuel loads ``(n, H, W)`` under winds ``(n, 2)`` (pixels per frame, x along the last axis).

    ``spots[f]`` ``(n, H, W)`` in [0, 1] are the hot spots lit at frame ``f`` (the temperature becomes at least
    this). Returns ``(n, len(spots), 2, H, W)``: temperature and fuel one frame after each lighting.
    """
    model = _Combustion(p, wind)
    temperature = torch.zeros_like(fuel)
    out = torch.empty(fuel.shape[0], len(spots), 2, *fuel.shape[1:])
    for frame, lit in enumerate(spots):
        temperature = torch.maximum(temperature, lit)
        for _ in range(model.substeps):
            temperature, fuel = model.step(temperature, fuel)
        out[:, frame, 0], out[:, frame, 1] = temperature, fuel
    return out


def _build(n: int, frames: int, size: int, seed: int, p: FlameParams) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fuel = _fuel(rng, n, size, p)
    heading = rng.uniform(0, 2 * np.pi, n)
    speed = rng.uniform(p.wind[0], p.wind[1], n)
    wind = torch.from_numpy(speed[:, None] * np.stack([np.cos(heading), np.sin(heading)], -1)).float()
    fires = _ignitions(rng, n, frames, p)

    def burn(start: int) -> np.ndarray:
        stop = min(start + _CHUNK, n)
        chunk_fires = fires[(fires[:, 0] >= start) & (fires[:, 0] < stop)] - [start, 0, 0, 0]
        spots = [_hot_spots(chunk_fires[chunk_fires[:, 1] == f], stop - start, size, p.ignition_radius)
                 for f in range(frames)]
        log.info("flame: burning sequences %d-%d of %d", start, stop, n)
        return simulate(fuel[start:stop], wind[start:stop], spots, p).numpy()

    return np.concatenate(map_chunks(burn, range(0, n, _CHUNK)))


def generate(n: int, frames: int, size: int = 64, seed: int = 0, cache: bool = True, **params) -> np.ndarray:
    """Combustion sequences, float32 ``(n, frames, 2, size, size)``: channel 0 temperature, channel 1 fuel.

    Frame ``f`` is the state one frame after the fires of frame ``f`` are lit. ``params`` override
    :class:`FlameParams` fields; unknown names raise :class:`UserError`.
    """
    return generated_field("flame", FlameParams, params, _build, n=n, frames=frames, size=size, channels=2, seed=seed,
                           cache=cache)
