"""Navier–Stokes solver and generator: exact solutions, invariants, record times, determinism."""

import math

import numpy as np
import pytest
import torch

from sfp.data import navier_stokes as ns
from sfp.errors import UserError

N = 32


def _grid(size: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(size, dtype=torch.float64) / size
    return x[:, None].expand(size, size), x[None, :].expand(size, size)


def _energy_and_enstrophy(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Kinetic energy 1/2 sum |u|^2 = 1/2 sum |w_k|^2 / (2 pi |k|)^2 and enstrophy 1/2 sum w^2, per sample."""
    size = w.shape[-1]
    w_hat = torch.fft.fft2(w)
    k = torch.fft.fftfreq(size, 1.0 / size, dtype=torch.float64)
    k2 = 4 * math.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2)
    k2[0, 0] = math.inf
    energy = 0.5 * (w_hat.abs() ** 2 / k2).sum((-2, -1)) / size**2
    return energy, 0.5 * (w**2).sum((-2, -1))


def test_single_fourier_mode_decays_at_the_viscous_rate():
    # cos 2pi(2x + y) has u . grad w = 0 exactly, so w(t) = w0 exp(-nu (2 pi)^2 |k|^2 t) with |k|^2 = 5
    x, y = _grid()
    w0 = torch.cos(2 * math.pi * (2 * x + y))[None]
    nu = 0.01
    w = ns.solve(w0, nu, t_final=1.0, record_every=0.25, forcing=None, dt=0.005)
    times = torch.tensor([0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    expected = w0[:, None] * torch.exp(-nu * 4 * math.pi**2 * 5 * times)[None, :, None, None]
    assert w.shape == (1, 4, N, N)
    torch.testing.assert_close(w, expected, atol=1e-6, rtol=0)


def test_single_mode_decay_with_the_automatic_step_is_second_order_accurate():
    x, y = _grid()
    w0 = torch.sin(2 * math.pi * (x - 3 * y))[None]
    nu = 0.002
    w = ns.solve(w0, nu, t_final=2.0, record_every=2.0, forcing=None)
    expected = w0 * math.exp(-nu * 4 * math.pi**2 * 10 * 2.0)
    torch.testing.assert_close(w[:, 0], expected, atol=1e-3, rtol=0)


def test_fno_forcing_from_rest_matches_the_exact_solution():
    # the forcing is one wave vector (1, 1): its advection vanishes, so w = f (1 - exp(-lambda t)) / lambda
    nu = 0.01
    decay = nu * 4 * math.pi**2 * 2
    rest = torch.zeros(1, N, N, dtype=torch.float64)
    fine = ns.solve(rest, nu, t_final=3.0, record_every=1.0, forcing="fno", dt=0.01)
    automatic = ns.solve(rest, nu, t_final=3.0, record_every=1.0, forcing="fno")
    x, y = _grid()
    force = 0.1 * (torch.sin(2 * math.pi * (x + y)) + torch.cos(2 * math.pi * (x + y)))
    for index, t in enumerate((1.0, 2.0, 3.0)):
        expected = force * (1 - math.exp(-decay * t)) / decay
        torch.testing.assert_close(fine[0, index], expected, atol=1e-6, rtol=0)
        torch.testing.assert_close(automatic[0, index], expected, atol=1e-4, rtol=0)


def test_kolmogorov_forcing_with_drag_from_rest_matches_the_exact_solution():
    # a shear flow u(y) carries w(y) along x only, so advection vanishes again: with L = nu (2 pi n)^2 + drag,
    # w = n (2 pi)^2 cos(2 pi n y) (1 - exp(-L t)) / L; the drag alone would stop it from ever settling lower
    nu, drag, n = 0.01, 0.5, 2
    rate = nu * (2 * math.pi * n) ** 2 + drag
    rest = torch.zeros(1, N, N, dtype=torch.float64)
    w = ns.solve(rest, nu, t_final=2.0, record_every=1.0, forcing="kolmogorov", dt=0.01, drag=drag)
    x, y = _grid()
    force = n * (2 * math.pi) ** 2 * torch.cos(2 * math.pi * n * y)
    torch.testing.assert_close(ns.kolmogorov_forcing(N, n), force)
    for index, t in enumerate((1.0, 2.0)):
        torch.testing.assert_close(w[0, index], force * (1 - math.exp(-rate * t)) / rate, atol=1e-4, rtol=0)  # of ~38


def test_drag_damps_a_single_mode_at_its_own_rate():
    x, y = _grid()
    w0 = torch.cos(2 * math.pi * (2 * x + y))[None]
    nu, drag = 0.01, 0.3
    w = ns.solve(w0, nu, t_final=1.0, record_every=1.0, forcing=None, dt=0.005, drag=drag)
    torch.testing.assert_close(w[:, 0], w0 * math.exp(-(nu * 4 * math.pi**2 * 5 + drag)), atol=1e-6, rtol=0)


def _reference_rhs(w: torch.Tensor, nu: float) -> torch.Tensor:
    """dw/dt = -(u w_x + v w_y) + nu lap w + f in the plain advective form, by FFT derivatives (2/3 rule)."""
    size = w.shape[-1]
    k = torch.fft.fftfreq(size, 1.0 / size, dtype=torch.float64)
    kx, ky = k[:, None].expand(size, size), k[None, :].expand(size, size)  # x along axis -2, y along axis -1
    keep = ((kx.abs() <= size / 3) & (ky.abs() <= size / 3)).double()
    k2 = 4 * math.pi**2 * (kx**2 + ky**2)
    w_hat = torch.fft.fft2(w) * keep
    psi_hat = w_hat / torch.where(k2 > 0, k2, torch.ones_like(k2)) * (k2 > 0)  # -lap psi = w

    def real(field_hat: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(field_hat).real

    u, v = real(2j * math.pi * ky * psi_hat), real(-2j * math.pi * kx * psi_hat)  # u = psi_y, v = -psi_x
    w_x, w_y = real(2j * math.pi * kx * w_hat), real(2j * math.pi * ky * w_hat)
    x, y = _grid(size)
    force = 0.1 * (torch.sin(2 * math.pi * (x + y)) + torch.cos(2 * math.pi * (x + y)))
    return real(torch.fft.fft2(-(u * w_x + v * w_y)) * keep - nu * k2 * w_hat) + force


def test_solver_agrees_with_a_plain_rk4_of_the_advective_form():
    nu, dt = 1e-3, 2e-3
    w0 = 3.0 * ns.grf(1, 16, seed=7)
    kept = torch.fft.fftfreq(16, 1 / 16).abs() <= 16 / 3
    w0 = torch.fft.ifft2(torch.fft.fft2(w0) * (kept[:, None] & kept[None, :])).real  # the solver drops the rest
    solved = ns.solve(w0, nu, t_final=0.4, record_every=0.4, forcing="fno", dt=dt)[:, 0]
    w = w0
    for _ in range(200):  # classical RK4 to t = 0.4
        k1 = _reference_rhs(w, nu)
        k2 = _reference_rhs(w + dt / 2 * k1, nu)
        k3 = _reference_rhs(w + dt / 2 * k2, nu)
        k4 = _reference_rhs(w + dt * k3, nu)
        w = w + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    assert (solved - w0).abs().max() > 0.1  # the flow moved
    torch.testing.assert_close(solved, w, atol=1e-6, rtol=0)


def test_inviscid_unforced_flow_conserves_energy_and_enstrophy():
    w0 = 5.0 * ns.grf(2, N, seed=3)
    w = ns.solve(w0, 0.0, t_final=2.0, record_every=1.0, forcing=None)
    energy0, enstrophy0 = _energy_and_enstrophy(w0)
    energy, enstrophy = _energy_and_enstrophy(w[:, -1])
    assert ((w[:, -1] - w0).norm(dim=(-2, -1)) / w0.norm(dim=(-2, -1)) > 0.3).all()  # the flow really evolved
    torch.testing.assert_close(energy, energy0, rtol=1e-4, atol=0)
    torch.testing.assert_close(enstrophy, enstrophy0, rtol=3e-3, atol=0)  # RK3 damps the smallest scales slightly


def test_viscous_unforced_energy_never_grows_even_for_a_fast_flow():
    w0 = 40.0 * ns.grf(1, N, seed=1)
    w = ns.solve(w0, 1e-3, t_final=1.0, record_every=0.1, forcing=None)
    energies = _energy_and_enstrophy(torch.cat([w0[:, None], w], 1)[0])[0]
    assert torch.isfinite(w).all()
    assert (energies[1:] <= energies[:-1] * (1 + 1e-9)).all()


def test_records_land_on_their_times():
    w0 = ns.grf(1, N, seed=2)
    every = ns.solve(w0, 1e-3, t_final=1.0, record_every=0.25, dt=0.05)
    assert every.shape == (1, 4, N, N)
    half = ns.solve(w0, 1e-3, t_final=0.5, record_every=0.5, dt=0.05)
    whole = ns.solve(w0, 1e-3, t_final=1.0, record_every=1.0, dt=0.05)
    torch.testing.assert_close(every[:, 1], half[:, 0], atol=1e-12, rtol=0)
    torch.testing.assert_close(every[:, 3], whole[:, 0], atol=1e-12, rtol=0)
    assert not torch.allclose(every[:, 1], every[:, 3], atol=1e-3)


def test_grf_has_the_fno_covariance():
    # var w = sum_k 2 sigma^2 (4 pi^2 |k|^2 + tau^2)^-alpha over k != 0, with sigma = tau^(alpha - 1)
    alpha, tau = 2.5, 7.0
    fields = ns.grf(400, N, alpha, tau, seed=0)
    k = np.fft.fftfreq(N, 1.0 / N)
    eig = 4 * math.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau**2
    terms = 2 * tau ** (2 * alpha - 2) * eig**-alpha
    terms[0, 0] = 0
    assert fields.shape == (400, N, N) and fields.dtype == torch.float64
    assert fields.mean((-2, -1)).abs().max() < 1e-12
    assert fields.var().item() == pytest.approx(terms.sum(), rel=0.05)


def test_generate_is_deterministic_cached_and_seeded(tmp_path, monkeypatch):
    monkeypatch.setenv("SFP_CACHE", str(tmp_path))
    first = ns.generate(2, 3, size=16, seed=0)
    assert first.shape == (2, 3, 1, 16, 16) and first.dtype == np.float32
    assert len(list(tmp_path.glob("navier_stokes-*.npy"))) == 1
    np.testing.assert_array_equal(ns.generate(2, 3, size=16, seed=0), first)  # from the cache
    np.testing.assert_array_equal(ns.generate(2, 3, size=16, seed=0, cache=False), first)  # recomputed
    assert not np.allclose(ns.generate(2, 3, size=16, seed=1, cache=False), first)


def test_generate_frames_are_one_time_unit_apart():
    frames = ns.generate(1, 2, size=16, viscosity=1e-3, seed=4, cache=False)
    w0 = ns.grf(1, 16, seed=4).float()
    direct = ns.solve(w0, 1e-3, t_final=2.0, record_every=1.0)
    np.testing.assert_allclose(frames[:, :, 0], direct.numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"w0": torch.zeros(N, N)},
        {"w0": torch.zeros(1, 15, 15)},
        {"forcing": "taylor_green"},
        {"forcing": torch.zeros(8, 8)},
        {"viscosity": -1.0},
        {"drag": -0.1},
        {"t_final": 1.0, "record_every": 0.3},
        {"dt": 0.0},
    ],
)
def test_bad_solver_inputs_raise_user_error(kwargs):
    args = {"w0": torch.zeros(1, N, N), "viscosity": 1e-3, "t_final": 1.0, "record_every": 0.5, **kwargs}
    with pytest.raises(UserError):
        ns.solve(**args)
