"""The qmap peer (sfp.quantile_map): a monotone distortion undone on held-out samples, a map per lead time, tied
quantiles, the blend, and the bisection that matches a validation MSE change."""

import math

import pytest
import torch

from sfp.errors import UserError
from sfp.quantile_map import apply_quantile_map, blend_for_mse_change, fit_quantile_map, match_blend


def _truths(seed: int, count: int = 2000) -> torch.Tensor:
    """Values uniform on [0, 2), shaped (count, 2 leads, 1, 2, 2)."""
    return 2 * torch.rand(count, 2, 1, 2, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _distorted(truths: torch.Tensor) -> torch.Tensor:
    """Lead 0 forecast as 0.5 t + 1, lead 1 as t ** 2: monotone, and different per lead."""
    return torch.stack([0.5 * truths[:, 0] + 1, truths[:, 1] ** 2], dim=1)


def test_a_monotone_distortion_is_undone_on_held_out_samples_lead_by_lead():
    fitted, held_out = _truths(0), _truths(1)
    mapping = fit_quantile_map(_distorted(fitted), fitted)
    recovered = apply_quantile_map(mapping, _distorted(held_out), blend=1.0)
    assert (recovered - held_out).abs().max().item() < 0.05
    assert (recovered - held_out).abs().mean().item() < 0.01
    # the leads' maps differ: one value, two lead times, two answers (1.5 -> 1 at lead 0, 1.5 -> sqrt(1.5) at lead 1)
    value = torch.full((1, 2, 1, 1, 1), 1.5, dtype=torch.float64)
    assert apply_quantile_map(mapping, value, 1.0).flatten().tolist() == pytest.approx([1.0, math.sqrt(1.5)],
                                                                                      abs=0.02)


def test_blend_zero_returns_the_forecast_and_a_blend_mixes_linearly():
    fitted = _truths(0)
    forecasts = _distorted(fitted)
    mapping = fit_quantile_map(forecasts, fitted)
    assert torch.equal(apply_quantile_map(mapping, forecasts, 0.0), forecasts)
    mapped = apply_quantile_map(mapping, forecasts, 1.0)
    assert torch.allclose(apply_quantile_map(mapping, forecasts, 0.25), 0.25 * mapped + 0.75 * forecasts)
    with pytest.raises(UserError, match="blend"):
        apply_quantile_map(mapping, forecasts, 1.5)


def test_tied_forecast_quantiles_map_to_the_mean_of_the_truths_and_the_ends_stay_constant():
    # 4 levels (0, 1/3, 2/3, 1): forecast quantiles 0, 0, 0, 1 and truth quantiles 0, 1, 2, 3
    forecasts = torch.tensor([0.0, 0.0, 0.0, 1.0]).reshape(4, 1)
    truths = torch.tensor([3.0, 1.0, 0.0, 2.0]).reshape(4, 1)
    mapping = fit_quantile_map(forecasts, truths, levels=4)
    queries = torch.tensor([-1.0, 0.0, 0.5, 1.0, 7.0]).reshape(5, 1)
    assert apply_quantile_map(mapping, queries, 1.0).flatten().tolist() == pytest.approx([1.0, 1.0, 2.0, 3.0, 3.0])


def test_missing_truths_are_left_out_of_the_fit():
    forecasts = torch.tensor([0.0, 1.0, 2.0, 9.0]).reshape(4, 1)
    truths = torch.tensor([0.0, 10.0, 20.0, float("nan")]).reshape(4, 1)
    mapping = fit_quantile_map(forecasts, truths, levels=3)  # forecasts 0, 1, 2 -> truths 0, 10, 20
    assert apply_quantile_map(mapping, torch.tensor([[0.5], [2.0]]), 1.0).flatten().tolist() == pytest.approx([5, 20])


def test_the_bisection_finds_the_crossing_of_a_rising_or_convex_change():
    assert match_blend(lambda b: 0.2 * b * b, 0.05) == pytest.approx(0.5, abs=1e-5)
    # convex, dipping below 0 first: b^2 - b/2 = 0.1 at b = (0.5 + sqrt(0.65)) / 2
    assert match_blend(lambda b: b * b - b / 2, 0.1) == pytest.approx((0.5 + math.sqrt(0.65)) / 2, abs=1e-5)
    assert match_blend(lambda b: 0.2 * b, -0.1) == 0.0  # beyond either end: that end
    assert match_blend(lambda b: 0.2 * b, 0.5) == 1.0


def test_a_target_below_the_unmapped_change_is_met_on_the_falling_side_or_by_the_lowest_point():
    def change(b):
        return b * b - b  # lowest (-0.25) at 0.5, 0 at both ends

    assert match_blend(change, -0.1875) == pytest.approx(0.25, abs=1e-5)  # the smaller of the roots 0.25, 0.75
    assert match_blend(change, -0.5) == pytest.approx(0.5, abs=1e-5)  # out of reach: the lowest point
    assert match_blend(change, 0.5) == 0.0  # out of reach: 0 and 1 are as near, the smaller blend
    assert match_blend(lambda b: b * b - 1.5 * b, 0.2) == 0.0  # out of reach above: the blend whose change is highest


def test_the_matched_blend_gives_the_target_mse_change():
    generator = torch.Generator().manual_seed(3)
    truths = torch.rand(400, 2, 1, 4, 4, generator=generator, dtype=torch.float64) ** 2
    forecasts = 0.6 * truths + 0.2 + 0.05 * torch.randn(truths.shape, generator=generator, dtype=torch.float64)
    mapping = fit_quantile_map(forecasts, truths)
    mapped = apply_quantile_map(mapping, forecasts, 1.0)
    # the MSE change is a quadratic in the blend: (2 b <e d> + b^2 <d^2>) / <e^2>, e = f - y, d = m - f
    error, step = forecasts - truths, mapped - forecasts
    linear, quadratic = 2 * (error * step).mean() / error.pow(2).mean(), step.pow(2).mean() / error.pow(2).mean()
    full = (linear + quadratic).item()
    assert full < -0.5  # the map corrects the forecasts' bias: MSE falls by more than half at blend 1
    target = full / 4
    root = min(r.real for r in _roots(quadratic.item(), linear.item(), -target) if 0 <= r.real <= 1)
    blend = blend_for_mse_change(mapping, forecasts, truths, target)
    assert blend == pytest.approx(root, abs=1e-4)
    blended = apply_quantile_map(mapping, forecasts, blend)
    assert (blended - truths).pow(2).mean() / error.pow(2).mean() - 1 == pytest.approx(target, abs=1e-4)
    assert blend_for_mse_change(mapping, forecasts, truths, 0.01) == 0.0  # SFP raised MSE: nothing matches better


def _roots(a: float, b: float, c: float) -> tuple[complex, complex]:
    """The roots of ``a x^2 + b x + c``."""
    disc = complex(b * b - 4 * a * c) ** 0.5
    return (-b + disc) / (2 * a), (-b - disc) / (2 * a)
