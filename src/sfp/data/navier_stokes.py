"""2-D incompressible Navier–Stokes in vorticity form on the unit torus, the FNO benchmark's data.

    dw/dt + u . grad(w) = nu * lap(w) + f,    u = (d psi/dy, -d psi/dx),    -lap(psi) = w

Pseudo-spectral in space with the 2/3 de-aliasing rule; in time the low-storage Runge–Kutta/Crank–Nicolson
scheme of Spalart, Moser & Rogers (1991): three explicit stages for advection and forcing, Crank–Nicolson for
viscosity in each stage. The step follows a CFL bound on the current velocity, re-checked after every step, and is
sized so that records land exactly on their times. Arrays are indexed ``w[..., i, j]`` at ``x = i / N``, ``y = j / N``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sfp.data.cache import cached_array, check_field_sizes, map_chunks
from sfp.errors import UserError

log = logging.getLogger(__name__)

# Spalart–Moser–Rogers coefficients: explicit weights on this stage's and the previous stage's nonlinear term, and
# the Crank–Nicolson split of the viscous term (alpha explicit, beta implicit); alpha + beta = gamma + zeta.
_GAMMA = (8 / 15, 5 / 12, 3 / 4)
_ZETA = (0.0, -17 / 60, -5 / 12)
_ALPHA = (4 / 15, 1 / 15, 1 / 6)
_BETA = (4 / 15, 1 / 15, 1 / 6)
# CFL number dt * max(|u| + |v|) * N. RK3 is stable for dt * max|2 pi k . u| <= sqrt(3), which with the de-aliased
# |k_x|, |k_y| <= N/3 means a CFL number up to 3 sqrt(3) / (2 pi) = 0.83.
_CFL = 0.75
_MAX_DT = 0.1  # accuracy cap on the step where the flow is too slow for the CFL bound to matter
_CHUNK = 32  # samples solved together: larger batches gain nothing on CPU and cost memory traffic


def grf(n: int, size: int, alpha: float = 2.5, tau: float = 7.0, seed: int = 0) -> Tensor:
    """Gaussian random fields ``(n, size, size)`` (float64) with covariance ``(-lap + tau^2)^-alpha``, as in FNO.

    The Fourier coefficient of wavenumber k is complex normal with standard deviation
    ``sqrt(2) * tau^(alpha-1) * (4 pi^2 |k|^2 + tau^2)^(-alpha/2)``; the mean (k = 0) is zero and the real part of
    the inverse transform is kept.
    """
    if n < 1 or size < 2:
        raise UserError(f"grf needs n >= 1 and size >= 2, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(size, 1.0 / size)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    sigma = tau ** (alpha - 1.0)
    amplitude = size**2 * math.sqrt(2.0) * sigma * (4 * math.pi**2 * k2 + tau**2) ** (-alpha / 2)
    amplitude[0, 0] = 0.0
    noise = rng.standard_normal((2, n, size, size))
    coefficients = (noise[0] + 1j * noise[1]) * amplitude
    return torch.from_numpy(np.fft.ifft2(coefficients).real.copy())


def fno_forcing(size: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """The FNO forcing ``0.1 * (sin 2pi(x+y) + cos 2pi(x+y))`` on a ``size x size`` grid."""
    x = torch.arange(size, dtype=dtype) / size
    phase = 2 * math.pi * (x[:, None] + x[None, :])
    return 0.1 * (torch.sin(phase) + torch.cos(phase))


def kolmogorov_forcing(size: int, wavenumber: int = 2, dtype: torch.dtype = torch.float64) -> Tensor:
    """Kolmogorov forcing of the vorticity on the unit square, ``n (2 pi)^2 cos(2 pi n y)`` with ``n = wavenumber``
    (y along the last axis): the curl of a body force ``sin(2 pi n y)`` along x, in the time unit where that force's
    amplitude is one on a ``2 pi`` domain (Kochkov et al. 2021 use n = 4 there)."""
    y = torch.arange(size, dtype=dtype) / size
    return (wavenumber * (2 * math.pi) ** 2 * torch.cos(2 * math.pi * wavenumber * y)).expand(size, size).clone()


@dataclass(frozen=True)
class _Spectral:
    """Fourier-space operators of one grid, in the rfft2 layout ``(N, N//2 + 1)``.

    The advection term uses Basdevant's (1983) form for 2-D incompressible flow,
    ``u . grad(w) = d_xy(v^2 - u^2) + (d_xx - d_yy)(u v)``, which needs two inverse and two forward transforms per
    evaluation instead of five.
    """

    size: int
    laplacian: Tensor  # -(2 pi |k|)^2
    dealias: Tensor  # 1 where |k_x|, |k_y| <= N/3
    velocity: Tensor  # (2, N, N//2+1) complex: w_hat -> (u_hat, v_hat), de-aliased
    products_to_advection: Tensor  # (2, N, N//2+1): (hat(v^2 - u^2), hat(u v)) -> -hat(u . grad w), de-aliased

    @classmethod
    def build(cls, size: int, dtype: torch.dtype) -> _Spectral:
        kx = torch.fft.fftfreq(size, 1.0 / size, dtype=dtype)[:, None]
        ky = torch.fft.rfftfreq(size, 1.0 / size, dtype=dtype)[None, :]
        laplacian = -4 * math.pi**2 * (kx**2 + ky**2)
        inverse = torch.where(laplacian < 0, -1.0 / laplacian.clamp(max=-1e-30), torch.zeros_like(laplacian))
        dealias = ((kx.abs() <= size / 3) & (ky.abs() <= size / 3)).to(dtype)
        velocity = torch.stack([2j * math.pi * ky * inverse, -2j * math.pi * kx * inverse]) * dealias
        advection = 4 * math.pi**2 * torch.stack([kx * ky + 0 * kx, kx**2 - ky**2]) * dealias
        return cls(size, laplacian, dealias, velocity, advection.to(velocity.dtype))

    def advection(self, w_hat: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``-hat(u . grad w)`` and the velocity components ``u``, ``v`` on the grid."""
        u, v = torch.fft.irfft2(w_hat.unsqueeze(-3) * self.velocity, s=(self.size, self.size)).unbind(-3)
        products = torch.stack([(v - u) * (v + u), u * v], dim=-3)
        return (torch.fft.rfft2(products) * self.products_to_advection).sum(-3), u, v


def _max_speed(u: Tensor, v: Tensor) -> float:
    """``max(|u| + |v|)``: with a square de-aliased spectrum, the advection CFL number is dt * this * N / dx."""
    return (u.abs() + v.abs()).amax().item()


class _Stepper:
    """One RK3/Crank–Nicolson step of a batch, with the stage coefficients cached for the current step size.

    Stage s solves ``(1 - beta_s h L) w' = (1 + alpha_s h L) w + h (gamma_s N + zeta_s N_prev + (gamma_s + zeta_s) f)``
    with ``L`` the (diagonal) linear operator ``nu * lap - drag``, ``N`` the advection term and ``f`` the forcing.
    """

    def __init__(self, ops: _Spectral, viscosity: float, forcing_hat: Tensor | None, drag: float = 0.0):
        self.ops, self.forcing_hat = ops, forcing_hat
        self.viscous = viscosity * ops.laplacian - drag
        self._h: float | None = None
        self._stages: list[tuple[Tensor, Tensor, Tensor, Tensor | None]] = []

    def _coefficients(self, h: float) -> list[tuple[Tensor, Tensor, Tensor, Tensor | None]]:
        """Per stage, with the implicit solve folded in: factors on the state, on N, on N_prev; the forcing term."""
        if h != self._h:
            self._h, self._stages = h, []
            complex_dtype = self.ops.velocity.dtype  # stored complex: no type conversion in every stage
            for alpha, beta, gamma, zeta in zip(_ALPHA, _BETA, _GAMMA, _ZETA):
                solve = 1.0 / (1.0 - beta * h * self.viscous)
                forcing = None if self.forcing_hat is None else (gamma + zeta) * h * solve * self.forcing_hat
                factors = ((1.0 + alpha * h * self.viscous) * solve, gamma * h * solve, zeta * h * solve)
                self._stages.append((*(f.to(complex_dtype) for f in factors), forcing))
        return self._stages

    def step(self, w_hat: Tensor, h: float) -> tuple[Tensor, float]:
        """Advance ``w_hat`` by ``h``; also returns ``max(|u| + |v|)`` at the start of the step."""
        previous, speed = None, 0.0
        for state, on_current, on_previous, forcing in self._coefficients(h):
            current, u, v = self.ops.advection(w_hat)
            if previous is None:
                speed = _max_speed(u, v)
            new = state * w_hat if forcing is None else torch.addcmul(forcing, state, w_hat)
            new.addcmul_(on_current, current)
            if previous is not None:
                new.addcmul_(on_previous, previous)
            w_hat, previous = new, current
        return w_hat, speed


FORCINGS = {"fno": fno_forcing, "kolmogorov": kolmogorov_forcing}


def _forcing(forcing: str | Tensor | None, size: int, dtype: torch.dtype) -> Tensor | None:
    if forcing is None:
        return None
    if isinstance(forcing, str):
        if forcing not in FORCINGS:
            raise UserError(f"unknown forcing {forcing!r}; use {', '.join(map(repr, FORCINGS))}, None or a (H, W) "
                            "tensor")
        return FORCINGS[forcing](size, dtype=dtype)
    if tuple(forcing.shape) != (size, size):
        raise UserError(f"forcing must have shape ({size}, {size}), got {tuple(forcing.shape)}")
    return forcing.to(dtype)


def _record_count(t_final: float, record_every: float) -> int:
    if record_every <= 0 or t_final <= 0:
        raise UserError(f"t_final and record_every must be positive, got {t_final} and {record_every}")
    count = round(t_final / record_every)
    if count < 1 or abs(count * record_every - t_final) > 1e-9 * max(1.0, t_final):
        raise UserError(f"t_final={t_final} is not a whole multiple of record_every={record_every}")
    return count


def _check_initial(w0: Tensor) -> None:
    if w0.ndim != 3 or w0.shape[-1] != w0.shape[-2] or w0.shape[-1] % 2:
        raise UserError(f"w0 must be (B, N, N) with an even N, got shape {tuple(w0.shape)}")
    if not w0.is_floating_point():
        raise UserError(f"w0 must be a floating-point tensor, got {w0.dtype}")


def trajectory(
    w0: Tensor, viscosity: float, t_final: float, record_every: float, forcing: str | Tensor | None = "fno",
    dt: float | None = None, drag: float = 0.0,
) -> Iterator[Tensor]:
    """Yield the vorticity ``(B, N, N)`` at ``record_every, 2 * record_every, ..., t_final`` (see :func:`solve`).

    For long runs where only part of each state is kept (probes), so the whole history never sits in memory.
    """
    _check_initial(w0)
    if viscosity < 0 or drag < 0:
        raise UserError(f"viscosity and drag must be >= 0, got {viscosity} and {drag}")
    if dt is not None and dt <= 0:
        raise UserError(f"dt must be positive, got {dt}")
    records = _record_count(t_final, record_every)
    size = w0.shape[-1]
    ops = _Spectral.build(size, w0.dtype)
    force = _forcing(forcing, size, w0.dtype)
    stepper = _Stepper(ops, viscosity, None if force is None else torch.fft.rfft2(force) * ops.dealias, drag)
    w_hat = torch.fft.rfft2(w0) * ops.dealias
    return _records(stepper, w_hat, size, record_every, records, dt)


def _records(
    stepper: _Stepper, w_hat: Tensor, size: int, interval: float, records: int, dt: float | None
) -> Iterator[Tensor]:
    speed = _max_speed(*stepper.ops.advection(w_hat)[1:])
    for _ in range(records):
        remaining, h = interval, math.inf
        while remaining > 1e-9 * interval:
            bound = dt if dt is not None else _MAX_DT if speed <= 0 else min(_MAX_DT, _CFL / (size * speed))
            if h > bound * (1 + 1e-9):  # first step of the interval, or the flow sped up: split what is left
                h = remaining / max(1, math.ceil(remaining / bound - 1e-9))
            step = min(h, remaining)
            w_hat, speed = stepper.step(w_hat, step)
            remaining -= step
        yield torch.fft.irfft2(w_hat, s=(size, size))


def solve(
    w0: Tensor, viscosity: float, t_final: float, record_every: float, forcing: str | Tensor | None = "fno",
    dt: float | None = None, drag: float = 0.0,
) -> Tensor:
    """Integrate vorticity ``w0`` ``(B, N, N)`` to ``t_final``; returns ``(B, n_records, N, N)`` in ``w0``'s dtype.

    Records are taken at ``record_every, 2 * record_every, ..., t_final``. ``forcing`` is ``"fno"``,
    ``"kolmogorov"`` (:func:`kolmogorov_forcing`, n = 2), ``None`` (unforced) or a ``(N, N)`` tensor; ``drag`` is
    the rate of a linear friction ``-drag * w`` (Kolmogorov flow needs one to settle). ``dt=None`` picks the step
    from the CFL bound at the start of each record interval and whenever the flow speeds up, per chunk of samples
    (so a sample's round-off depends on the samples solved beside it); a given ``dt`` is shrunk to divide the record
    interval. The initial state is projected onto the de-aliased modes.
    """
    _check_initial(w0)

    def solve_chunk(chunk: Tensor) -> Tensor:
        records = list(trajectory(chunk, viscosity, t_final, record_every, forcing, dt, drag))
        log.info("navier_stokes: solved %d samples to t=%g", len(chunk), t_final)
        return torch.stack(records, dim=1)

    return torch.cat(map_chunks(solve_chunk, w0.split(_CHUNK)))


def generate(
    n: int, frames: int, size: int = 64, viscosity: float = 1e-4, seed: int = 0, cache: bool = True
) -> np.ndarray:
    """FNO-style vorticity sequences, float32 ``(n, frames, 1, size, size)``.

    Each sequence starts from a Gaussian random field (``grf``) at t = 0, which is not included: frame ``j`` is the
    vorticity at t = j + 1, one frame per time unit with the FNO forcing, as in the FNO data (no other spin-up). The
    solver runs in float32, which keeps the relative error near 1e-4 of a float64 run at a small fixed step.
    """
    check_field_sizes(n, frames, size)
    params = {"n": n, "frames": frames, "size": size, "viscosity": viscosity, "seed": seed}

    def build() -> np.ndarray:
        w0 = grf(n, size, seed=seed).to(torch.float32)
        return solve(w0, viscosity, float(frames), 1.0).unsqueeze(2).numpy()

    return cached_array("navier_stokes", params, build, cache, shape=(n, frames, 1, size, size))
