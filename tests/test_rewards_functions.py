"""Built-in rewards against hand-worked values, their candidate-stack broadcasting, and the task headline rewards."""

import math

import pytest
import torch

from sfp.errors import UserError
from sfp.planning.reward_types import WeightedSum
from sfp.planning.rewards import csi, fss, neg_mse, neg_tke_error, reward_for_task, ssim, weighted
from sfp.task import FLAME, NAVIER_STOKES, SENSORS, STORMS, TaskSpec

# One 2x2 frame, pixels a b / c d. Threshold 10: truth {a, b, d}, forecast {a, c, d} -> H=2, M=1, F=1.
# Threshold 20: truth {b, d}, forecast {c} -> H=0, M=2, F=1. Threshold 40: no event in either field.
TRUTH = torch.tensor([[10.0, 30.0], [0.0, 20.0]]).view(1, 1, 1, 2, 2)
FORECAST = torch.tensor([[12.0, 5.0], [25.0, 18.0]]).view(1, 1, 1, 2, 2)


def test_csi_by_hand():
    assert csi([10])(FORECAST, TRUTH).item() == pytest.approx(0.5)
    assert csi([10, 20])(FORECAST, TRUTH).item() == pytest.approx(0.25)
    # a threshold with no event in either field counts as perfect, not as 0 and not left out
    assert csi([10, 20, 40])(FORECAST, TRUTH).item() == pytest.approx((0.5 + 0.0 + 1.0) / 3)


def test_csi_no_events_anywhere_is_perfect():
    quiet = torch.zeros(2, 3, 1, 4, 4)
    assert torch.equal(csi([16, 74])(quiet, quiet), torch.ones(2))
    storm = quiet.clone()
    storm[1, 0, 0, 0, 0] = 100.0  # sample 1 misses an event at both thresholds; sample 0 stays quiet
    assert csi([16, 74])(quiet, storm).tolist() == [1.0, 0.0]


def test_csi_pooled_by_hand():
    # 2x2 max-pooling leaves one cell: truth 30, forecast 25 -> hits at 10 and 20, nothing at 40
    assert csi([10, 20, 40], pool=2)(FORECAST, TRUTH).item() == pytest.approx(1.0)


def test_fss_by_hand():
    # window 1: fractions are the binary fields, FSS = 1 - (M + F) / (2H + M + F) = 1 - 2/6 at threshold 10
    assert fss(10, 1)(FORECAST, TRUTH).item() == pytest.approx(2 / 3)
    assert fss(40, 3)(FORECAST, TRUTH).item() == 1.0  # no event in either field


def test_neg_mse_scale_and_missing_values():
    target = torch.zeros(2, 2, 1, 3, 3)
    pred = target + 2.0
    assert neg_mse()(pred, target).tolist() == [-4.0, -4.0]
    assert neg_mse(scale=2.0)(pred, target).tolist() == [-1.0, -1.0]
    target[0, 0] = math.nan  # left out: the rest still errs by 2
    target[1] = math.nan  # nothing valid: undefined -> -inf, never a winner
    assert neg_mse()(pred, target).tolist() == [-4.0, -math.inf]


def test_nan_forecast_never_wins():
    target = torch.zeros(1, 1, 1, 3, 3)
    pred = torch.stack([target + 1.0, torch.full_like(target, math.nan)], dim=1)
    assert neg_mse()(pred, target).tolist() == [[-1.0, -math.inf]]


def test_ssim_perfect_and_imperfect():
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(2, 2, 1, 16, 16, generator=generator)
    assert torch.allclose(ssim(1.0)(target, target), torch.ones(2))
    noisy = target + 0.3 * torch.randn(target.shape, generator=generator)
    assert (ssim(1.0)(noisy, target) < 0.9).all()


def test_neg_tke_error_of_a_scaled_field():
    # scaling vorticity by 10 scales every shell's energy by 100: exactly 2 decades at every k
    target = torch.randn(2, 2, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(neg_tke_error()(target, target), torch.zeros(2))
    assert torch.allclose(neg_tke_error()(10 * target, target), torch.full((2,), -2.0), atol=1e-4)


def test_candidate_stacks_match_candidate_by_candidate():
    generator = torch.Generator().manual_seed(2)
    target = 255 * torch.rand(2, 3, 1, 8, 8, generator=generator)
    stack = 255 * torch.rand(2, 4, 5, 3, 1, 8, 8, generator=generator)  # (B, 4, 5, T, C, H, W)
    for reward in (csi([16, 74, 133]), fss(74, 3), neg_mse(255.0), ssim(255.0), neg_tke_error()):
        scores = reward(stack, target)
        assert scores.shape == (2, 4, 5)
        for i in range(4):
            for j in range(5):
                assert torch.allclose(scores[:, i, j], reward(stack[:, i, j], target), atol=1e-6), reward


def test_partial_forecasts_score_the_frames_given():
    target = torch.zeros(1, 3, 1, 2, 2)
    pred = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1, 1).expand(1, 3, 1, 2, 2)
    assert neg_mse()(pred[:, :1], target[:, :1]).item() == -1.0
    assert neg_mse()(pred[:, :2], target[:, :2]).item() == pytest.approx(-(1 + 4) / 2)


def test_totals_of_split_frames_add_up_to_the_whole():
    generator = torch.Generator().manual_seed(4)
    target = 255 * torch.rand(2, 3, 1, 12, 12, generator=generator)
    target[0, 1, 0, :2] = math.nan
    stack = 255 * torch.rand(2, 4, 3, 1, 12, 12, generator=generator)
    for reward in (csi([16, 74, 133], pool=4), fss(74, 3), neg_mse(255.0), ssim(255.0), neg_tke_error()):
        head = reward.frame_totals(stack[:, :, :1], target[:, :1])
        tail = reward.frame_totals(stack[:, :, 1:], target[:, 1:])
        assert torch.allclose(reward.from_totals(head + tail).float(), reward(stack, target), atol=1e-5), reward


def test_weighted_sums_by_hand():
    combined = weighted(neg_mse=2.0, csi={"weight": 0.5, "thresholds": [10]})
    mse = ((FORECAST - TRUTH) ** 2).mean().item()
    assert combined(FORECAST, TRUTH).item() == pytest.approx(-2.0 * mse + 0.5 * 0.5)
    repeated = WeightedSum([(csi([10]), 1.0), (csi([20]), 3.0)])
    assert repeated(FORECAST, TRUTH).item() == pytest.approx(0.5 + 3.0 * 0.0)


@pytest.mark.parametrize("make", [
    lambda: csi([]), lambda: csi([10], pool=0), lambda: fss(10, 0), lambda: neg_mse(scale=-1.0),
    lambda: ssim(0.0), lambda: weighted(), lambda: weighted(neg_mse="heavy"), lambda: weighted(csi={"thresholds": [1]}),
])
def test_bad_options_are_user_errors(make):
    with pytest.raises(UserError):
        make()


def test_mismatched_shapes_are_user_errors():
    with pytest.raises(UserError, match="do not match"):
        neg_mse()(torch.zeros(2, 3, 1, 4, 4), torch.zeros(2, 2, 1, 4, 4))
    with pytest.raises(UserError, match="do not match"):
        neg_mse()(torch.zeros(3, 2, 1, 4, 4), torch.zeros(2, 2, 1, 4, 4))


def test_task_headline_rewards():
    quiet = torch.zeros(1, 2, 1, 12, 12)
    storm = quiet.clone()
    storm[..., :6, :] = 255.0
    storms = reward_for_task(STORMS)
    assert storms(quiet, quiet).item() == 1.0 and storms(storm, storm).item() == 1.0
    assert storms(quiet, storm).item() == 0.0

    field = torch.randn(1, 2, 1, 12, 12, generator=torch.Generator().manual_seed(3))
    assert reward_for_task(NAVIER_STOKES)(10 * field, field).item() == pytest.approx(-2.0, abs=1e-4)
    assert reward_for_task(FLAME)(field, field).item() == pytest.approx(1.0)
    assert reward_for_task(SENSORS)(field + 1.0, field).item() == pytest.approx(-1.0)
    scaled = TaskSpec("custom", value_scale=2.0, headline="mae")
    assert reward_for_task(scaled)(field + 2.0, field).item() == pytest.approx(-1.0)
    with pytest.raises(UserError, match="thresholds"):
        reward_for_task(TaskSpec("odd", headline="csi_m"))
