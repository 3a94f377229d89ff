"""SEVIR-like synthetic storms: vertically integrated liquid (VIL) on the 0-255 scale, ``(n, T, 1, H, W)``.

Convective cells are born, grow, and decay; each is a rotated elliptic Gaussian (stratiform body) holding an
intense core, carried by a steering flow with smooth divergence-free perturbations. The field is modulated by a
multiplicative log-normal texture moving with the flow and saturated softly below 255. Births at random times and
places and random surges of core intensity make the future only partly predictable from the past, which is what
makes an MSE-trained forecaster blur the cores.

Units: positions and lengths are fractions of the domain side, times are frames, intensities are VIL (0-255).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sfp.data.cache import GeneratorParams, generated_field, map_chunks
from sfp.errors import UserError

log = logging.getLogger(__name__)

Range = tuple[float, float]

_CHUNK = 32  # sequences rendered together


@dataclass(frozen=True)
class StormParams(GeneratorParams):
    """Knobs of the storm generator; ranges are sampled uniformly per cell or per sequence."""

    initial_cells: float = 7.0  # mean number of cells alive at the first frame (Poisson)
    birth_rate: float = 0.45  # mean number of cells born per frame (Poisson)
    max_cells: int = 24  # cap on the cells of one sequence
    lifetime: Range = (12.0, 36.0)  # frames from birth to death
    radius: Range = (0.07, 0.16)  # standard deviation along the major axis at maturity
    aspect: Range = (1.3, 2.8)  # major / minor axis
    peak: Range = (80.0, 200.0)  # body intensity at maturity, before texture and saturation
    core_peak: Range = (130.0, 380.0)  # core intensity at maturity
    core_radius: Range = (0.35, 0.6)  # core standard deviation relative to the cell's minor axis
    surge_probability: float = 0.5  # chance that a core surges once during its life
    surge_gain: Range = (0.5, 1.5)  # extra core intensity at the surge's height, relative
    speed: Range = (0.004, 0.02)  # steering speed per frame
    perturbation: float = 0.5  # flow perturbation speed relative to the steering speed
    rotation: float = 0.03  # standard deviation of each cell's rotation rate, radians per frame
    texture: float = 0.5  # standard deviation of the log of the multiplicative texture
    texture_scale: float = 0.035  # correlation length of the texture

    def validate(self) -> None:
        super().validate()
        if self.lifetime[0] <= 0 or self.radius[0] <= 0 or self.aspect[0] < 1:
            raise UserError("storm lifetime and radius must be positive and aspect at least 1")
        if not isinstance(self.max_cells, int) or self.max_cells < 1:
            raise UserError(f"max_cells must be a positive integer, got {self.max_cells!r}")
        if self.surge_probability > 1:
            raise UserError(f"surge_probability must be at most 1, got {self.surge_probability}")


@dataclass(frozen=True)
class Cells:
    """Cell tracks of ``n`` sequences with ``K`` cell slots over ``T`` frames (unused slots never become active)."""

    birth: np.ndarray  # (n, K) frame of birth (negative: already alive at the first frame)
    lifetime: np.ndarray  # (n, K) frames
    active: np.ndarray  # (n, K) whether the slot holds a cell
    position: np.ndarray  # (n, T, K, 2) centre (x, y)
    body: np.ndarray  # (n, T, K) body amplitude (0 outside the cell's life)
    core: np.ndarray  # (n, T, K) core amplitude
    sigma: np.ndarray  # (n, T, K, 2) major and minor standard deviations
    angle: np.ndarray  # (n, T, K) orientation of the major axis
    core_offset: np.ndarray  # (n, K, 2) core centre in the cell's (major, minor) frame, in minor-axis units
    core_radius: np.ndarray  # (n, K) core standard deviation in minor-axis units
    drift: np.ndarray  # (n, 2) steering velocity per frame

    def select(self, sequences: slice) -> Cells:
        """The cells of some of the sequences."""
        return Cells(**{f.name: getattr(self, f.name)[sequences] for f in dataclasses.fields(self)})


def life_envelope(frame: np.ndarray, birth: np.ndarray, lifetime: np.ndarray) -> np.ndarray:
    """``sin^2(pi s)`` of the life phase ``s = (frame - birth) / lifetime``; zero before birth and after death."""
    phase = (frame - birth) / lifetime
    return np.where((phase > 0) & (phase < 1), np.sin(np.pi * np.clip(phase, 0, 1)) ** 2, 0.0)


def _uniform(rng: np.random.Generator, bounds: Range, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(bounds[0], bounds[1], shape)


def _steering(
    rng: np.random.Generator, n: int, p: StormParams
) -> tuple[np.ndarray, Callable[[np.ndarray, int], np.ndarray]]:
    """Per sequence: a drift vector and a velocity field ``(position (n,K,2), frame) -> (n,K,2)`` around it."""
    heading = rng.uniform(0, 2 * np.pi, n)
    drift = _uniform(rng, p.speed, (n,))[:, None] * np.stack([np.cos(heading), np.sin(heading)], -1)
    modes = 3
    wavevector = rng.integers(-2, 3, (n, modes, 2))
    wavevector[(wavevector == 0).all(-1)] = (1, 0)
    norm = np.linalg.norm(wavevector, axis=-1)
    amplitude = p.perturbation * np.linalg.norm(drift, axis=-1)[:, None] / (2 * np.pi * norm * math.sqrt(modes))
    frequency = rng.uniform(-0.1, 0.1, (n, modes))
    phase = rng.uniform(0, 2 * np.pi, (n, modes))

    def velocity(position: np.ndarray, frame: int) -> np.ndarray:
        # stream function sum_m a_m sin(2 pi k_m . x + w_m t + phi_m); velocity (d psi/dy, -d psi/dx)
        argument = 2 * np.pi * np.einsum("nkd,nmd->nkm", position, wavevector) + (frequency * frame + phase)[:, None]
        slope = (2 * np.pi * amplitude)[:, None] * np.cos(argument)  # (n, K, modes)
        gradient = np.einsum("nkm,nmd->nkd", slope, wavevector)
        return drift[:, None] + np.stack([gradient[..., 1], -gradient[..., 0]], -1)

    return drift, velocity


def sample_cells(n: int, frames: int, rng: np.random.Generator, p: StormParams) -> Cells:
    """Draw the cells of ``n`` sequences: counts, life cycles, tracks, shapes and core surges."""
    k = p.max_cells
    initial = rng.poisson(p.initial_cells, n)
    born = rng.poisson(p.birth_rate * frames, n)
    slot = np.arange(k)[None]
    active = slot < np.minimum(initial + born, k)[:, None]
    lifetime = _uniform(rng, p.lifetime, (n, k))
    already_alive = slot < initial[:, None]
    birth = np.where(already_alive, -rng.uniform(0.1, 0.8, (n, k)) * lifetime, rng.uniform(0, frames, (n, k)))

    drift, velocity = _steering(rng, n, p)
    position = np.empty((n, frames, k, 2))
    position[:, 0] = rng.uniform(-0.15, 1.15, (n, k, 2))
    for frame in range(1, frames):
        position[:, frame] = position[:, frame - 1] + velocity(position[:, frame - 1], frame - 1)

    t = np.arange(frames)[None, :, None]
    envelope = life_envelope(t, birth[:, None], lifetime[:, None]) * active[:, None]
    surge_time = birth + rng.uniform(0.3, 0.8, (n, k)) * lifetime
    surge_gain = _uniform(rng, p.surge_gain, (n, k)) * (rng.random((n, k)) < p.surge_probability)
    surge = surge_gain[:, None] * np.exp(-(((t - surge_time[:, None]) / (0.1 * lifetime[:, None])) ** 2))
    major = _uniform(rng, p.radius, (n, k))[:, None] * (0.7 + 0.3 * envelope)
    minor = major / _uniform(rng, p.aspect, (n, k))[:, None]
    angle = rng.uniform(0, np.pi, (n, k))[:, None] + rng.normal(0, p.rotation, (n, k))[:, None] * t
    return Cells(
        birth=birth, lifetime=lifetime, active=active, position=position,
        body=_uniform(rng, p.peak, (n, k))[:, None] * envelope,
        core=_uniform(rng, p.core_peak, (n, k))[:, None] * envelope**1.5 * (1 + surge),
        sigma=np.stack([major, minor], -1), angle=angle,
        core_offset=rng.uniform(-0.6, 0.6, (n, k, 2)), core_radius=_uniform(rng, p.core_radius, (n, k)),
        drift=drift,
    )


def _gaussians(centre: Tensor, sigma: Tensor, angle: Tensor, amplitude: Tensor, grid: Tensor) -> Tensor:
    """``amplitude * exp(-q/2)`` of rotated elliptic Gaussians, ``(M, H, W)`` from per-cell ``(M, ...)`` values.

    ``q`` is split into a column term, a row term and their cross term so only one product is formed on the grid.
    """
    cos, sin = torch.cos(angle), torch.sin(angle)
    inv_major, inv_minor = sigma[:, 0] ** -2, sigma[:, 1] ** -2
    a = cos**2 * inv_major + sin**2 * inv_minor  # coefficient of dx^2
    b = cos * sin * (inv_major - inv_minor)  # of dx dy (halved)
    c = sin**2 * inv_major + cos**2 * inv_minor  # of dy^2
    dx = grid[None] - centre[:, 0, None]  # (M, W): x runs along the last axis
    dy = grid[None] - centre[:, 1, None]  # (M, H)
    column = -0.5 * a[:, None] * dx**2
    row = -0.5 * c[:, None] * dy**2 + torch.log(amplitude.clamp_min(1e-30))[:, None]
    cross = (-b[:, None] * dx)[:, None, :] * dy[:, :, None]
    return torch.exp((cross + column[:, None, :] + row[:, :, None]).clamp_(min=-60.0))  # no slow subnormals


def _render(cells: Cells, frame: int, size: int) -> Tensor:
    """The un-textured intensity of every sequence at ``frame``: ``(n, size, size)``, summed over live cells."""
    n = cells.body.shape[0]
    seq, slot = np.nonzero(cells.body[:, frame] > 0)
    field = torch.zeros(n, size, size, dtype=torch.float32)
    if seq.size == 0:
        return field
    grid = (torch.arange(size, dtype=torch.float32) + 0.5) / size

    def per_cell(array: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(array[seq, frame, slot])).float()

    centre, sigma, angle = per_cell(cells.position), per_cell(cells.sigma), per_cell(cells.angle)
    body = _gaussians(centre, sigma, angle, per_cell(cells.body), grid)
    # the core sits inside the body at an offset fixed in the cell's own frame, and rotates with it
    offset = torch.from_numpy(cells.core_offset[seq, slot]).float() * sigma[:, 1:]
    cos, sin = torch.cos(angle), torch.sin(angle)
    core_centre = centre + torch.stack(
        [cos * offset[:, 0] - sin * offset[:, 1], sin * offset[:, 0] + cos * offset[:, 1]], -1
    )
    elongation = torch.tensor([1.5, 1.0])  # the core is stretched along the cell's major axis
    core_sigma = torch.from_numpy(cells.core_radius[seq, slot]).float()[:, None] * sigma[:, 1:] * elongation
    core = _gaussians(core_centre, core_sigma, angle, per_cell(cells.core), grid)
    return field.index_add_(0, torch.from_numpy(seq), body + core)


def _texture_noise(rng: np.random.Generator, n: int, size: int, p: StormParams) -> tuple[Tensor, np.ndarray]:
    """Two smooth unit-variance noise fields per sequence (rfft2 layout) and the rate at which they are mixed."""
    k = np.fft.fftfreq(size, 1.0 / size)
    kr = np.fft.rfftfreq(size, 1.0 / size)
    spectrum = np.exp(-2 * (np.pi * p.texture_scale) ** 2 * (k[:, None] ** 2 + kr[None, :] ** 2))
    noise = np.fft.rfft2(rng.standard_normal((2, n, size, size))) * spectrum
    noise /= np.sqrt((np.fft.irfft2(noise, s=(size, size)) ** 2).mean(axis=(-2, -1), keepdims=True))
    evolution = rng.uniform(0.02, 0.06, n)  # radians per frame: the texture slowly changes as it moves
    return torch.from_numpy(noise.astype(np.complex64)), evolution


def _texture(noise: Tensor, evolution: np.ndarray, drift: np.ndarray, frame: int, p: StormParams) -> Tensor:
    """The multiplicative log-normal texture ``(n, size, size)`` at ``frame``, carried along by the drift."""
    size = noise.shape[-2]
    ky = torch.fft.fftfreq(size, 1.0 / size)[:, None]
    kx = torch.fft.rfftfreq(size, 1.0 / size)[None, :]
    shift = torch.from_numpy(drift * frame).float()  # (n, 2) in domain units, x along the last axis
    phase = torch.exp(-2j * math.pi * (shift[:, 0, None, None] * kx + shift[:, 1, None, None] * ky))
    turn = torch.from_numpy(evolution * frame).float()[:, None, None]
    mixed = torch.cos(turn) * noise[0] + torch.sin(turn) * noise[1]
    field = torch.fft.irfft2(mixed * phase, s=(size, size))
    return torch.exp(p.texture * field - 0.5 * p.texture**2)


def _build(n: int, frames: int, size: int, seed: int, p: StormParams) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cells = sample_cells(n, frames, rng, p)
    noise, evolution = _texture_noise(rng, n, size, p)

    def render(start: int) -> np.ndarray:
        part = slice(start, min(start + _CHUNK, n))
        chunk = cells.select(part)
        out = np.empty((len(chunk.drift), frames, 1, size, size), dtype=np.float32)
        for frame in range(frames):
            intensity = _render(chunk, frame, size) * _texture(noise[:, part], evolution[part], chunk.drift, frame, p)
            out[:, frame, 0] = (255.0 * torch.tanh(intensity / 255.0)).numpy()
        log.info("storms: rendered sequences %d-%d of %d", part.start, part.stop, n)
        return out

    return np.concatenate(map_chunks(render, range(0, n, _CHUNK)))


def generate(n: int, frames: int, size: int = 64, seed: int = 0, cache: bool = True, **params) -> np.ndarray:
    """Synthetic VIL storms, float32 ``(n, frames, 1, size, size)`` on the 0-255 scale.

    ``params`` override :class:`StormParams` fields; unknown names raise :class:`UserError`.
    """
    return generated_field("storms", StormParams, params, _build, n=n, frames=frames, size=size, channels=1, seed=seed,
                           cache=cache)
