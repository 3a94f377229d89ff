"""Shared pieces and hand-checkable layers: padding round trip, FNO spectral layer, ConvLSTM cell, SimVP skip."""

import math

import pytest
import torch

from sfp.models import build
from sfp.models.common import crop, pad_to_multiple
from sfp.models.convlstm import ConvLSTMCell
from sfp.models.fno import SpectralConv2d


@pytest.mark.parametrize("size, multiple, padded", [((37, 45), 4, (40, 48)), ((8, 9), 8, (8, 16)), ((1, 2), 4, (4, 4))])
def test_pad_to_multiple_then_crop_is_the_identity(size, multiple, padded):
    x = torch.randn(2, 3, 1, *size)
    y, original = pad_to_multiple(x, multiple)
    assert y.shape == (2, 3, 1, *padded)
    assert original == size
    assert torch.equal(crop(y, original), x)


def test_padding_reflects_the_border():
    x = torch.arange(3.0).view(1, 1, 1, 3).expand(1, 1, 3, 3)  # columns 0, 1, 2
    y, _ = pad_to_multiple(x, 4)
    assert y[0, 0, 0].tolist() == [0.0, 1.0, 2.0, 1.0]
    assert torch.equal(y[0, 0, 3], y[0, 0, 1])


def _identity_spectral(channels, modes):
    layer = SpectralConv2d(channels, channels, modes, modes)
    with torch.no_grad():
        layer.weight.zero_()
        eye = torch.eye(channels)[:, :, None, None]
        layer.weight[..., 0] = eye  # real part 1 on the diagonal, both frequency bands
    return layer


def test_identity_spectral_layer_keeps_low_modes_and_drops_high_ones():
    height, width = 24, 20
    ys = torch.arange(height)[:, None] / height
    xs = torch.arange(width)[None, :] / width
    low = torch.cos(2 * math.pi * (2 * ys + 3 * xs)) + torch.sin(2 * math.pi * 1 * ys)
    high = torch.cos(2 * math.pi * 7 * ys) + torch.sin(2 * math.pi * 6 * xs)
    layer = _identity_spectral(channels=2, modes=5)
    out = layer(torch.stack([low, low + high])[None])
    assert torch.allclose(out[0, 0], low, atol=1e-5)
    assert torch.allclose(out[0, 1], low, atol=1e-5)


@pytest.mark.parametrize("size", [(6, 5), (5, 4), (1, 3)])
def test_spectral_layer_on_a_grid_smaller_than_its_modes_keeps_every_frequency(size):
    layer = _identity_spectral(channels=1, modes=12)
    x = torch.randn(1, 1, *size)
    assert torch.allclose(layer(x), x, atol=1e-5)


def test_convlstm_cell_follows_the_gate_equations():
    cell = ConvLSTMCell(in_channels=1, hidden=1, kernel_size=1)
    bias = torch.tensor([0.5, -1.0, 2.0, 0.3])  # input, forget, candidate, output
    with torch.no_grad():
        cell.gates.weight.zero_()
        cell.gates.bias.copy_(bias)
    c_prev = torch.full((1, 1, 2, 2), 0.7)
    h, c = cell(torch.randn(1, 1, 2, 2), (torch.randn(1, 1, 2, 2), c_prev))
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    c_expected = sig(-1.0) * 0.7 + sig(0.5) * math.tanh(2.0)
    assert torch.allclose(c, torch.full_like(c, c_expected))
    assert torch.allclose(h, torch.full_like(h, sig(0.3) * math.tanh(c_expected)))


def test_simvp_skip_starts_from_the_last_context_frame():
    model = build("simvp", in_frames=3, out_frames=4, channels=1, seed=0)
    assert model.skip_mix.shape == (4, 3)
    assert torch.equal(model.skip_mix[:, -1], torch.ones(4))
    assert torch.equal(model.skip_mix[:, :-1], torch.zeros(4, 2))
