"""The peers' losses (sfp.metrics.peer_losses) against hand-computed values: balanced MSE and its bins, FACL's two
terms on identical, shifted and scaled periodic fields, and its schedule."""

import math

import pytest
import torch

from sfp.errors import UserError
from sfp.metrics.peer_losses import (
    balanced_mse,
    balanced_mse_bins,
    balanced_mse_for_task,
    facl_amplitude_probability,
    facl_loss,
    facl_uses_amplitude,
    fourier_amplitude_loss,
    fourier_correlation_loss,
)
from sfp.task import NAVIER_STOKES, STORMS, TaskSpec

SHI_EDGES, SHI_WEIGHTS = (2.0, 5.0, 10.0, 30.0), (1.0, 2.0, 5.0, 10.0, 30.0)


def test_each_squared_error_weighs_by_the_bin_of_its_truth():
    target, pred = torch.tensor([1.0, 3.0, 6.0, 40.0]), torch.zeros(4)
    # bins [0,2) [2,5) [5,10) [30,inf): 1*1 + 2*9 + 5*36 + 30*1600 over 4 pixels
    assert balanced_mse(pred, target, SHI_EDGES, SHI_WEIGHTS).item() == pytest.approx(48199 / 4)
    at_edges = torch.tensor([2.0, 30.0])  # an edge belongs to the bin above it
    assert balanced_mse(at_edges - 1, at_edges, SHI_EDGES, SHI_WEIGHTS).item() == pytest.approx((2 + 30) / 2)
    assert balanced_mse(pred, target, SHI_EDGES, SHI_WEIGHTS, scale=2.0).item() == pytest.approx(48199 / 16)


def test_invalid_pixels_do_not_count_in_balanced_mse():
    target, pred = torch.tensor([3.0, 40.0]), torch.tensor([2.0, 0.0])
    valid = torch.tensor([True, False])
    assert balanced_mse(pred, target, SHI_EDGES, SHI_WEIGHTS, valid).item() == pytest.approx(2.0)


def test_the_bins_reproduce_shi_et_al_on_their_edges_and_follow_a_tasks_thresholds():
    assert balanced_mse_bins(TaskSpec("shi", thresholds=SHI_EDGES)) == (SHI_EDGES, SHI_WEIGHTS)
    edges, weights = balanced_mse_bins(STORMS)
    assert edges == STORMS.thresholds
    assert weights == pytest.approx([1, 2, 2 * 74 / 16, 2 * 133 / 16, 2 * 160 / 16, 2 * 181 / 16, 2 * 219 / 16])
    with pytest.raises(UserError, match="navier_stokes task has none"):
        balanced_mse_bins(NAVIER_STOKES)
    with pytest.raises(UserError, match="one weight more"):
        balanced_mse(torch.zeros(2), torch.ones(2), SHI_EDGES, SHI_WEIGHTS[:-1])


def test_a_tasks_balanced_mse_reads_errors_on_its_reported_scale():
    truth = torch.tensor([10.0, 100.0])  # VIL: below 16 (weight 1), in [74, 133) (weight 9.25)
    pred = truth + 25.5  # an error of 0.1 on VIL/255
    valid = torch.ones(2, dtype=torch.bool)
    loss = balanced_mse_for_task(STORMS)(pred, truth, valid)
    assert loss.item() == pytest.approx((1 + 9.25) * 0.01 / 2)


def _wave(shift: int = 0) -> torch.Tensor:
    """``cos(2 pi x / 8)`` on an 8 x 8 grid, its columns rolled by ``shift``: one frame of a (1, 1, 1, 8, 8) field."""
    columns = torch.cos(2 * math.pi * torch.arange(8.0) / 8).roll(shift)
    return columns.expand(8, 8).reshape(1, 1, 1, 8, 8)


def test_facl_of_identical_fields_is_zero():
    field = torch.rand(2, 3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for amplitude in (True, False):
        assert facl_loss(field, field.clone(), amplitude).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("shift", [1, 2, 4])
def test_a_shifted_periodic_field_keeps_its_amplitudes_and_decorrelates_by_the_phase_shift(shift):
    truth, shifted = _wave(), _wave(shift)
    assert fourier_amplitude_loss(shifted, truth).item() == pytest.approx(0.0, abs=1e-6)
    # the two coefficients at kx = +-1 turn by -+2 pi shift / 8: Re sum conj(P) T / sum |T|^2 = cos(2 pi shift / 8)
    expected = 1 - math.cos(2 * math.pi * shift / 8)
    assert fourier_correlation_loss(shifted, truth).item() == pytest.approx(expected, abs=1e-6)
    assert facl_loss(shifted, truth, amplitude=False).item() == pytest.approx(8 * expected, abs=1e-5)


def test_a_scaled_field_has_an_amplitude_loss_and_no_correlation_loss():
    truth = _wave()
    # amplitudes doubled: the mean of |T|^2 over the coefficients, = mean of cos^2 over the grid (Parseval) = 1/2
    assert fourier_amplitude_loss(2 * truth, truth).item() == pytest.approx(0.5, abs=1e-6)
    assert fourier_correlation_loss(2 * truth, truth).item() == pytest.approx(0.0, abs=1e-6)
    assert fourier_amplitude_loss(2 * truth, truth, scale=2.0).item() == pytest.approx(0.125, abs=1e-6)
    assert fourier_correlation_loss(torch.zeros_like(truth), truth).item() == pytest.approx(1.0)


def test_invalid_pixels_are_zero_in_both_fields():
    truth = _wave()
    pred, valid = truth.clone(), torch.ones_like(truth, dtype=torch.bool)
    pred[..., 3, 5], valid[..., 3, 5] = 7.0, False
    for amplitude in (True, False):
        assert facl_loss(pred, truth, amplitude, valid).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("amplitude", [True, False])
def test_gradients_flow_through_either_term(amplitude):
    pred = torch.full((1, 2, 1, 8, 8), 0.5, requires_grad=True)  # constant: every coefficient but the mean is 0
    facl_loss(pred, _wave().expand(1, 2, 1, 8, 8), amplitude).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_the_schedule_moves_from_correlation_to_amplitude():
    assert facl_amplitude_probability(0, 1000, alpha=0.1) == 0.0
    assert facl_amplitude_probability(450, 1000, alpha=0.1) == pytest.approx(0.5)
    assert facl_amplitude_probability(900, 1000, alpha=0.1) == 1.0
    assert not any(facl_uses_amplitude(0, 1000, seed=seed) for seed in range(50))
    assert all(facl_uses_amplitude(950, 1000, seed=seed) for seed in range(50))
    draws = [facl_uses_amplitude(450, 1000, seed=seed) for seed in range(2000)]
    assert sum(draws) / len(draws) == pytest.approx(0.5, abs=0.04)
    assert draws == [facl_uses_amplitude(450, 1000, seed=seed) for seed in range(2000)]  # a resumed run draws alike
