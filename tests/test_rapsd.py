"""RAPSD against pysteps' and a hand-worked cosine; the log-log plot."""

import math

import numpy as np
import pytest
import torch

from sfp.errors import UserError
from sfp.metrics import rapsd
from sfp.report.power_spectra import plot_rapsd


@pytest.mark.parametrize("shape", [(32, 32), (24, 33), (17, 17)])
@pytest.mark.parametrize("normalize", [False, True])
def test_matches_pysteps(shape, normalize):
    spectral = pytest.importorskip("pysteps.utils.spectral")
    field = np.random.default_rng(0).gamma(0.5, 2.0, size=shape)
    expected, expected_freq = spectral.rapsd(field, fft_method=np.fft, return_freq=True, d=2.0, normalize=normalize)
    frequencies, power = rapsd(torch.from_numpy(field), spacing=2.0, normalize=normalize)
    assert power.numpy() == pytest.approx(expected, rel=1e-10)
    assert frequencies.numpy() == pytest.approx(expected_freq)


def test_cosine_puts_all_its_power_at_its_wavenumber():
    n, k = 32, 5
    x = torch.arange(n, dtype=torch.float64) / n
    field = torch.cos(2 * math.pi * k * x).expand(n, n)  # varies along the columns only
    frequencies, power = rapsd(field)
    # Σ f² = n²/2 lies in the coefficients (0, ±5); annulus 5 holds the 28 lattice points with 21 <= |k|² <= 30
    # (|k|² = 25: 12, 26: 8, 29: 8), so its mean is (n²/2) / 28; every other annulus is empty of power.
    assert power[k].item() == pytest.approx(n * n / 2 / 28)
    assert torch.cat([power[:k], power[k + 1:]]).abs().max().item() < 1e-20
    assert frequencies[k].item() == pytest.approx(k / n)
    assert rapsd(field, normalize=True)[1][k].item() == pytest.approx(1.0)


def test_batches_are_frame_by_frame():
    fields = torch.rand(2, 3, 16, 16)
    _, power = rapsd(fields)
    assert power.shape == (2, 3, 8)
    assert torch.allclose(power[1, 2], rapsd(fields[1, 2])[1])


def test_missing_pixels_are_refused():
    field = torch.zeros(8, 8)
    field[0, 0] = float("nan")
    with pytest.raises(UserError, match="finite"):
        rapsd(field)


def test_plot_writes_a_png(tmp_path):
    fields = torch.rand(3, 2, 16, 16)  # model, lead, H, W
    spectra = {name: rapsd(fields[i]) for i, name in enumerate(["observations", "steps_mean", "sfp"])}
    assert plot_rapsd(tmp_path / "per_lead.png", spectra, lead_labels=["10 min", "20 min"]).stat().st_size > 0
    mean = {name: (freq, power.mean(0)) for name, (freq, power) in spectra.items()}
    assert plot_rapsd(tmp_path / "mean.png", mean, title="tiny").stat().st_size > 0
