"""weighted_label(): the softmax-of-advantages blend of imagined futures, its limits and a hand-computed case."""

import math

import pytest
import torch

from sfp.errors import UserError
from sfp.planning.weighted_labels import weighted_label


def futures_and_rewards(batch=3, candidates=4):
    generator = torch.Generator().manual_seed(0)
    futures = torch.randn(batch, candidates, 2, 1, 3, 3, generator=generator)
    rewards = torch.randn(batch, candidates, generator=generator, dtype=torch.float64)
    return futures, rewards, torch.randn(batch, generator=generator, dtype=torch.float64)


def test_beta_zero_gives_the_mean_of_the_futures():
    futures, rewards, action_reward = futures_and_rewards()
    torch.testing.assert_close(weighted_label(futures, rewards, action_reward, 0.0), futures.mean(1))


def test_equal_rewards_give_the_mean_whatever_beta():
    futures, _, action_reward = futures_and_rewards()
    rewards = torch.full((3, 4), -0.7, dtype=torch.float64)
    torch.testing.assert_close(weighted_label(futures, rewards, action_reward, 50.0), futures.mean(1))


def test_a_large_beta_gives_the_argmax_future():
    futures, rewards, action_reward = futures_and_rewards()
    best = futures[torch.arange(3), rewards.argmax(1)]
    torch.testing.assert_close(weighted_label(futures, rewards, action_reward, 1e6), best)


def test_hand_computed_weights():
    # advantages log 3 and 0 at beta 1: weights 3/4 and 1/4
    futures = torch.tensor([[[0.0, 4.0], [8.0, -4.0]]])  # (B=1, K=2, 2 values)
    rewards = torch.tensor([[1.0 + math.log(3.0), 1.0]], dtype=torch.float64)
    label = weighted_label(futures, rewards, torch.tensor([1.0], dtype=torch.float64), 1.0)
    torch.testing.assert_close(label, torch.tensor([[0.75 * 0.0 + 0.25 * 8.0, 0.75 * 4.0 + 0.25 * -4.0]]))


@pytest.mark.parametrize("beta", [-1.0, math.inf, math.nan])
def test_beta_must_be_finite_and_not_negative(beta):
    futures, rewards, action_reward = futures_and_rewards()
    with pytest.raises(UserError, match="beta"):
        weighted_label(futures, rewards, action_reward, beta)


def test_mismatched_rewards_are_named():
    futures, rewards, action_reward = futures_and_rewards()
    with pytest.raises(UserError, match=r"expected \(B, K\) and \(B,\)"):
        weighted_label(futures, rewards[:, :2], action_reward, 1.0)
