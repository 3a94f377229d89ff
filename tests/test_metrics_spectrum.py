"""Energy spectra against analytic Fourier modes (velocities derived by hand) and the TKE spectrum error."""

import math

import pytest
import torch

from sfp.errors import UserError
from sfp.metrics import rescale_shells, scalar_spectrum, tke_spectrum, tke_spectrum_error

N = 32


def _grid(n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    coords = torch.arange(n, dtype=torch.float64) / n
    y, x = torch.meshgrid(coords, coords, indexing="ij")  # axis -2 is y, axis -1 is x
    return x, y


def _modes(modes: list[tuple[int, int, float, float]], n: int = N):
    """Vorticity ω = Σ a cos(2π k·x) + b sin(2π k·x) and its velocity from ψ = Σ (...) / |2πk|², by hand."""
    x, y = _grid(n)
    omega, u, v = (torch.zeros(n, n, dtype=torch.float64) for _ in range(3))
    for kx, ky, a, b in modes:
        phase = 2 * math.pi * (kx * x + ky * y)
        scale = 1 / (4 * math.pi**2 * (kx**2 + ky**2))
        omega += a * torch.cos(phase) + b * torch.sin(phase)
        # dψ/dθ with θ = phase: scale (−a sin + b cos); ∂θ/∂y = 2π ky, ∂θ/∂x = 2π kx
        dpsi = scale * (-a * torch.sin(phase) + b * torch.cos(phase))
        u += 2 * math.pi * ky * dpsi
        v -= 2 * math.pi * kx * dpsi
    return omega, u, v


def test_single_mode_puts_all_energy_in_one_shell():
    omega, u, v = _modes([(3, 4, 1.0, 0.0)])  # |k| = 5
    spectrum = tke_spectrum(omega)
    assert spectrum.shape == (N // 2 + 1,)
    expected = 1 / (16 * math.pi**2 * 25)  # mean of ½(u² + v²) with |u|² + |v|² = sin² / (4π² 25)
    assert spectrum[5].item() == pytest.approx(expected, rel=1e-10)
    assert spectrum.sum().item() == pytest.approx(spectrum[5].item(), rel=1e-10)
    assert (0.5 * (u**2 + v**2)).mean().item() == pytest.approx(expected, rel=1e-10)


def test_parseval_sum_of_shells_is_mean_kinetic_energy():
    gen = torch.Generator().manual_seed(0)
    modes = []
    for _ in range(12):
        kx, ky = (int(k) for k in torch.randint(-8, 9, (2,), generator=gen))
        if (kx, ky) != (0, 0):
            a, b = torch.randn(2, generator=gen, dtype=torch.float64).tolist()
            modes.append((kx, ky, a, b))
    omega, u, v = _modes(modes)
    omega = omega + 3.0  # a mean vorticity carries no velocity
    kinetic = (0.5 * (u**2 + v**2)).mean()
    assert tke_spectrum(omega).sum().item() == pytest.approx(kinetic.item(), rel=1e-9)
    assert tke_spectrum(omega)[0].item() == 0.0


def test_scalar_spectrum_parseval_and_batch_shape():
    omega, _, _ = _modes([(1, 2, 0.5, -1.0), (-6, 3, 2.0, 0.3)])
    field = torch.stack([omega + 1.5, torch.full((N, N), 2.0, dtype=torch.float64)])[None]  # (1, 2, N, N)
    spectrum = scalar_spectrum(field)
    assert spectrum.shape == (1, 2, N // 2 + 1)
    assert spectrum[0, 0].sum().item() == pytest.approx((field[0, 0] ** 2).mean().item(), rel=1e-9)
    assert spectrum[0, 1, 0].item() == pytest.approx(4.0) and spectrum[0, 1, 1:].abs().max().item() < 1e-20


def test_rescale_shells_scales_each_shells_modes_by_the_root_of_its_gain():
    x, y = _grid()
    field = 1.5 + torch.cos(2 * math.pi * 3 * x) + 0.5 * torch.sin(2 * math.pi * (4 * x + 3 * y))  # shells 0, 3, 5
    corner = 0.25 * torch.cos(2 * math.pi * (N // 2) * (x + y))  # |k| = N/sqrt(2): outside every shell
    gain = torch.ones(2, N // 2 + 1, dtype=torch.float64)
    gain[0, 3], gain[0, 5], gain[0, 0] = 4.0, 0.25, 9.0  # frame 0: shell 3 doubled, 5 halved, mean tripled
    out = rescale_shells(torch.stack([field + corner, field]), gain)
    expected = 4.5 + 2 * torch.cos(2 * math.pi * 3 * x) + 0.25 * torch.sin(2 * math.pi * (4 * x + 3 * y)) + corner
    torch.testing.assert_close(out[0], expected)
    torch.testing.assert_close(out[1], field)  # frame 1: unit gains
    torch.testing.assert_close(scalar_spectrum(out[:1]), scalar_spectrum(field + corner) * gain[:1])


def test_tke_error_of_scaled_fields_is_log10_of_the_energy_ratio():
    omega, _, _ = _modes([(k, 1, 1.0 / k, 0.5) for k in range(1, N // 3 + 1)])  # energy in every shell 1..N/3
    target = omega.expand(2, 3, 1, N, N).clone()  # (B, T, C, N, N)
    pred = target.clone()
    pred[0] *= 10  # energy x100 in every shell: 2 decades
    assert tke_spectrum_error(pred, target, reduction="none").tolist() == pytest.approx([2.0, 0.0])
    assert tke_spectrum_error(pred, target).item() == pytest.approx(1.0)
    assert tke_spectrum_error(pred, target, vorticity=False).item() == pytest.approx(1.0)


def test_tke_error_looks_at_k_from_1_to_n_over_3():
    omega, _, _ = _modes([(k, 0, 1.0, 0.0) for k in range(1, N // 3 + 1)])
    target = omega[None, None]
    outside, _, _ = _modes([(N // 3 + 1, 0, 1.0, 0.0)])
    assert tke_spectrum_error(target + outside, target).item() == pytest.approx(0.0, abs=1e-12)
    inside, _, _ = _modes([(N // 3, 0, 1.0, 0.0)])
    # shell N/3 doubles its amplitude, energy x4: one of the N/3 shells is off by log10 4
    assert tke_spectrum_error(target + inside, target).item() == pytest.approx(math.log10(4) / (N // 3))


def test_empty_shells_give_a_large_finite_error():
    target = _modes([(k, 0, 1.0, 0.0) for k in range(1, N // 3 + 1)])[0][None, None].float()
    error = tke_spectrum_error(torch.zeros_like(target), target)  # log10(E + 1e-30) of zero energy is -30
    assert math.isfinite(error.item()) and error.item() > 20


def test_spectrum_user_errors():
    with pytest.raises(UserError, match="square"):
        tke_spectrum(torch.zeros(2, 8, 6))
    with pytest.raises(UserError, match="shape"):
        tke_spectrum_error(torch.zeros(1, 8, 8), torch.zeros(1, 6, 6))
