"""selection_gains(): a plan chosen on one half of each window and scored on the other, against hand-made cases."""

import math

import pytest
import torch

from sfp.errors import UserError
from sfp.planning.rewards import neg_mse
from sfp.planning.selection import checkerboard, score_on_half, selection_gains

NEG_MSE = neg_mse()
# (split, window shape (T, C, H, W), patch): halves of equal size in both
SPLITS = [("leads", (2, 1, 2, 2), 1), ("checkerboard", (1, 1, 4, 4), 1), ("checkerboard", (2, 1, 4, 4), 2)]


def noise(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_checkerboard_squares():
    expected = torch.tensor([[1, 1, 0, 0, 1],
                             [1, 1, 0, 0, 1],
                             [0, 0, 1, 1, 0]], dtype=torch.bool)
    assert torch.equal(checkerboard(3, 5, 2), expected)


def test_a_checkerboard_half_counts_its_own_errors_over_the_whole_windows_valid_pixels():
    truth = torch.zeros(1, 1, 1, 2, 2, dtype=torch.float64)
    truth[..., 1, 0] = math.nan  # half B, unknown
    field = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64).reshape(1, 1, 1, 2, 2)
    # half A: pixels (0, 0) and (1, 1); half B: (0, 1) and the unknown (1, 0); 3 valid pixels in all
    assert score_on_half(NEG_MSE, field, truth, "checkerboard", 0).item() == pytest.approx(-(1 + 16) / 3)
    assert score_on_half(NEG_MSE, field, truth, "checkerboard", 1).item() == pytest.approx(-4 / 3)


@pytest.mark.parametrize("split, window, patch", SPLITS)
def test_noise_futures_gain_in_sample_only(split, window, patch):
    """Futures independent of the truth: the best on half A beats the action there, and on half B it is just
    another draw of the same noise as the action."""
    windows, candidates = 4000, 8
    futures, action = noise(windows, candidates, *window, seed=0), noise(windows, *window, seed=1)
    result = selection_gains(futures, action, noise(windows, *window, seed=2), NEG_MSE, 1.0, split, patch)
    in_sample, held_out = result.argmax
    standard_error = held_out.std() / math.sqrt(windows)
    assert in_sample.mean() > 10 * in_sample.std() / math.sqrt(windows)
    assert abs(held_out.mean()) < 4 * standard_error
    assert abs(result.argmax.share_kept) < 0.1


@pytest.mark.parametrize("split, window, patch", SPLITS)
def test_a_weighted_label_blind_to_the_rewards_gains_alike_on_both_halves(split, window, patch):
    windows, candidates = 4000, 8
    futures, action = noise(windows, candidates, *window, seed=3), noise(windows, *window, seed=4)
    result = selection_gains(futures, action, noise(windows, *window, seed=5), NEG_MSE, 0.0, split, patch)
    in_sample, held_out = result.weighted
    assert abs(in_sample.mean() - held_out.mean()) < 4 * (in_sample - held_out).std() / math.sqrt(windows)


@pytest.mark.parametrize("split, window, patch", SPLITS)
def test_the_truth_among_the_futures_keeps_each_halfs_whole_gain(split, window, patch):
    windows = 5
    truth, action = noise(windows, *window, seed=6), noise(windows, *window, seed=7)
    futures = torch.stack([noise(windows, *window, seed=8), truth, noise(windows, *window, seed=9)], dim=1)
    if split == "leads":
        half_error = [(action - truth)[:, half::2].pow(2).flatten(1).mean(1) for half in (0, 1)]
    else:  # each half's squared errors over all the window's pixels
        in_a = checkerboard(*window[-2:], patch)
        half_error = [(action - truth).pow(2).where(in_a == (half == 0), 0.0).flatten(1).sum(1) / math.prod(window)
                      for half in (0, 1)]
    result = selection_gains(futures, action, truth, NEG_MSE, 1e6, split, patch)
    for label in result:  # the truth scores best on half A; a large beta puts all the weight on it
        torch.testing.assert_close(label.in_sample, half_error[0])
        torch.testing.assert_close(label.held_out, half_error[1])


@pytest.mark.parametrize("split, window, patch", SPLITS)
def test_the_truth_among_the_futures_keeps_the_whole_gain_when_the_action_errs_alike_on_both_halves(
        split, window, patch):
    truth = noise(3, *window, seed=10)
    futures = torch.stack([noise(3, *window, seed=11), truth], dim=1)
    result = selection_gains(futures, truth + 1, truth, NEG_MSE, 1.0, split, patch)
    torch.testing.assert_close(result.argmax.held_out, result.argmax.in_sample)
    assert result.argmax.share_kept == pytest.approx(1.0)


@pytest.mark.parametrize("split, shape, scale", [("leads", (1, 2, 1, 1, 1), 1.0),
                                                 ("checkerboard", (1, 1, 1, 1, 2), 0.5)])
def test_hand_computed_two_futures(split, shape, scale):
    """Truth 0 and action 1 at both places (lead times 0 and 1, or pixels 0 and 1); futures (0, 2) and (0.5, 0).

    Half A: the action scores -1, the futures 0 and -0.25: future 0 is chosen, gain 1; on half B it scores -4
    against the action's -1: gain -3. Weighted at beta 4 ln 3 on advantages 1 and 0.75: weights 3/4 and 1/4,
    label (0.125, 1.5), gains 1 - 0.125² and 1 - 1.5². A checkerboard half is half the window's pixels: gains
    halved. The local label chooses future 0 on half A's one cell, and so for its neighbour on half B."""
    truth, action = torch.zeros(shape, dtype=torch.float64), torch.ones(shape, dtype=torch.float64)
    futures = torch.tensor([[0.0, 2.0], [0.5, 0.0]], dtype=torch.float64).reshape(1, 2, *shape[1:])
    result = selection_gains(futures, action, truth, NEG_MSE, 4 * math.log(3) / scale, split)
    expected = {"argmax": (1.0, -3.0), "weighted": (1 - 0.125**2, 1 - 1.5**2), "local": (1.0, -3.0)}
    for name, (in_sample, held_out) in expected.items():
        gain = getattr(result, name)
        assert gain.in_sample.item() == pytest.approx(scale * in_sample)
        assert gain.held_out.item() == pytest.approx(scale * held_out)
    assert result.argmax.share_kept == pytest.approx(-3.0)


def test_a_local_label_takes_the_future_its_neighbours_chose():
    """Truth 0, action 1 on a 4 x 16 window of 2 x 2 squares; future 0 is right (0) on the left half and wrong (2) on
    the right, future 1 the reverse. On half A both futures err alike (a tie: the argmax takes future 0, gains -0.5
    on each half: 16 pixels of error 4 against the action's 32 of error 1, over 64 pixels). Chosen square by square,
    each half-B square follows the majority of its neighbours (3 of them lie on its own side), so the local label is
    the truth: gains +0.5 on both halves (the action's 32 errors of 1 per half, over 64 pixels)."""
    truth, action = torch.zeros(1, 1, 1, 4, 16, dtype=torch.float64), torch.ones(1, 1, 1, 4, 16, dtype=torch.float64)
    left = torch.arange(16) < 8
    futures = torch.stack([torch.where(left, 0.0, 2.0), torch.where(left, 2.0, 0.0)]).to(torch.float64)
    futures = futures[:, None].expand(2, 4, 16).reshape(1, 2, 1, 1, 4, 16)
    result = selection_gains(futures, action, truth, NEG_MSE, 0.0, "checkerboard", 2)
    assert [result.argmax.in_sample.item(), result.argmax.held_out.item()] == pytest.approx([-0.5, -0.5])
    assert [result.local.in_sample.item(), result.local.held_out.item()] == pytest.approx([0.5, 0.5])


@pytest.mark.parametrize("split, window, patch, match", [
    ("leads", (1, 1, 2, 2), 1, "at least 2 lead times"),
    ("checkerboard", (1, 1, 2, 2), 2, "patch must be an integer"),
    ("diagonal", (2, 1, 2, 2), 1, "unknown split 'diagonal'"),
])
def test_bad_splits_are_named(split, window, patch, match):
    futures, action = torch.zeros(1, 2, *window), torch.zeros(1, *window)
    with pytest.raises(UserError, match=match):
        selection_gains(futures, action, action, NEG_MSE, 1.0, split, patch)


def test_mismatched_shapes_are_named():
    with pytest.raises(UserError, match=r"must be \(B, K, T, C, H, W\)"):
        selection_gains(torch.zeros(1, 2, 2, 1, 3, 3), torch.zeros(1, 2, 1, 2, 2), torch.zeros(1, 2, 1, 2, 2),
                        NEG_MSE, 1.0)
