"""Ensemble verification metrics against hand-computed values and analytic cases."""

import pytest
import torch

from sfp.errors import UserError
from sfp.metrics import CRPS
from sfp.metrics.ensemble import EnsembleFSS, Probabilistic, RankHistogram, SpreadSkill, exceedance


def calibrated(batch: int = 4000, members: int = 8, leads: int = 3, seed: int = 0):
    """Truth and members drawn from the same distribution around a random centre: calibrated by construction."""
    generator = torch.Generator().manual_seed(seed)
    centre = torch.randn(batch, 1, leads, 4, generator=generator)
    members_ = centre + torch.randn(batch, members, leads, 4, generator=generator)
    truth = centre[:, 0] + torch.randn(batch, leads, 4, generator=generator)
    return members_, truth


def test_exceedance_is_the_fraction_of_members_at_or_above():
    ensemble = torch.tensor([[[1.0], [2.0], [3.0], [4.0]]])  # (B=1, M=4, T=1)
    assert exceedance(ensemble, (2.0, 4.5)).tolist() == [[[0.75], [0.0]]]


def test_rank_histogram_is_flat_for_a_calibrated_ensemble():
    members, truth = calibrated()
    metric = RankHistogram(8)
    metric.update(members, truth)
    assert torch.allclose(metric.compute(), torch.full((9,), 1 / 9, dtype=torch.float64), atol=0.01)


def test_rank_histogram_counts_ranks_and_breaks_ties_at_random():
    metric = RankHistogram(2)
    metric.update(torch.tensor([[[0.0], [1.0]]]), torch.tensor([[5.0]]))  # above both members: rank 2
    assert metric.counts.tolist() == [0, 0, 1]
    ties = RankHistogram(2)
    ties.update(torch.zeros(3000, 2, 1), torch.zeros(3000, 1))  # all equal: each rank a third of the time
    assert torch.allclose(ties.compute(), torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.03)


def test_spread_skill_is_one_when_calibrated_and_below_one_when_too_narrow():
    members, truth = calibrated()
    metric = SpreadSkill(3)
    metric.update(members, truth)
    assert torch.allclose(metric.compute()["ratio"], torch.ones(3, dtype=torch.float64), atol=0.03)
    narrow = SpreadSkill(3)
    narrow.update(members.mean(1, keepdim=True) + 0.5 * (members - members.mean(1, keepdim=True)), truth)
    assert (narrow.compute()["ratio"] < 0.6).all()


def test_spread_skill_by_hand():
    metric = SpreadSkill(1)
    metric.update(torch.tensor([[[0.0], [2.0]]]), torch.tensor([[3.0]]))  # var 2, mean 1, error 2
    result = metric.compute()
    assert result["spread"].item() == pytest.approx((1.5 * 2) ** 0.5)
    assert result["rmse"].item() == pytest.approx(2.0)


def test_one_member_crps_is_the_mae():
    pred, truth = torch.tensor([[1.0, 5.0]]), torch.tensor([[2.0, 2.0]])
    metric = CRPS()
    metric.update(pred.unsqueeze(1), truth)
    assert metric.compute().item() == pytest.approx(2.0)


def test_brier_of_perfect_forecasts_is_zero_and_by_hand():
    truth = torch.tensor([[[0.0, 10.0]], [[10.0, 10.0]]])  # (B=2, T=1, 2 pixels)
    perfect = Probabilistic((5.0,), 1)
    perfect.update(truth.unsqueeze(1).repeat(1, 3, 1, 1), truth)
    result = perfect.compute()
    assert result["brier"].item() == 0.0  # torchmetrics returns one-element results as scalars
    assert result["brier_skill"].item() == 1.0
    assert result["roc_area"].item() == pytest.approx(1.0)
    half = Probabilistic((5.0,), 1, bins=2)
    half.update(torch.tensor([[[[0.0, 0.0]], [[10.0, 10.0]]]] * 2), truth)  # p = 0.5 everywhere
    result = half.compute()
    assert result["brier"].item() == pytest.approx(0.25)
    assert result["base_rate"].item() == pytest.approx(0.75)
    assert result["brier_skill"].item() == pytest.approx(1 - 0.25 / (0.75 * 0.25))
    assert result["reliability_observed"][0, 1].item() == pytest.approx(0.75)  # p = 0.5 lands in the upper bin
    assert result["roc_area"].item() == pytest.approx(0.5)


def test_ensemble_fss_is_one_for_a_perfect_ensemble_and_drops_when_displaced():
    truth = torch.zeros(1, 2, 8, 8)
    truth[..., 2:4, 2:4] = 10.0
    perfect = EnsembleFSS((5.0,), (1, 3))
    perfect.update(truth.unsqueeze(1).repeat(1, 4, 1, 1, 1), truth)
    assert perfect.compute().tolist() == [[1.0, 1.0]]
    shifted = EnsembleFSS((5.0,), (1,))
    shifted.update(truth.roll(4, -1).unsqueeze(1), truth)  # no overlap at the pixel scale
    assert shifted.compute().item() == pytest.approx(0.0)


def test_bad_shapes_are_user_errors():
    with pytest.raises(UserError, match="ensemble must be"):
        SpreadSkill(2).update(torch.zeros(2, 3, 2, 4), torch.zeros(2, 3, 4))
    with pytest.raises(UserError, match="at least 2 members"):
        SpreadSkill(2).update(torch.zeros(2, 1, 2, 4), torch.zeros(2, 2, 4))


def test_unobserved_truth_entries_count_as_removed():
    """NaN in the truth (radar's no-data pixels): every score equals the one computed without those pixels; FSS
    equals the one with no event there in either field."""
    torch.manual_seed(0)
    ensemble = torch.rand(2, 5, 3, 1, 1, 6) * 10
    truth = torch.rand(2, 3, 1, 1, 6) * 10
    holes = truth.clone()
    holes[..., :2] = torch.nan  # the same two pixels unobserved at every lead
    kept_ensemble, kept_truth = ensemble[..., 2:], truth[..., 2:]

    def scores(members, target):
        rank = RankHistogram(5)
        spread, prob = SpreadSkill(3), Probabilistic((4.0, 7.0), 3)
        for metric in (rank, spread, prob):
            metric.update(members, target)
        return rank.counts, spread.compute(), prob.compute()

    got, expected = scores(ensemble, holes), scores(kept_ensemble, kept_truth)
    torch.testing.assert_close(got[0], expected[0])
    for key in ("ratio", "rmse"):
        torch.testing.assert_close(got[1][key], expected[1][key])
    for key in ("brier", "brier_skill", "roc_area", "reliability_count"):
        torch.testing.assert_close(got[2][key], expected[2][key], equal_nan=True)
    fss, dry = EnsembleFSS((4.0,), (3,)), EnsembleFSS((4.0,), (3,))
    fss.update(ensemble, holes)
    dry_ensemble = ensemble.clone()
    dry_ensemble[..., :2] = 0.0
    dry.update(dry_ensemble, torch.where(torch.isnan(holes), 0.0, holes))
    torch.testing.assert_close(fss.compute(), dry.compute())
