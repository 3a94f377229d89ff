"""Incomplete truth: a fixed set of gauges, the reward and the losses seeing the truth there alone."""

import pytest
import torch

from sfp.errors import UserError
from sfp.planning.reward_types import Gauged, gauge_mask
from sfp.planning.rewards import get_reward


def test_the_gauges_are_one_fixed_set_of_about_the_fraction_asked():
    mask = gauge_mask(64, 64, 0.02)
    assert mask.shape == (64, 64) and mask.dtype == torch.bool
    assert torch.equal(mask, gauge_mask(64, 64, 0.02))  # the same for every model and stage
    assert 40 <= int(mask.sum()) <= 125  # 2 % of 4096 = 82, binomial spread
    assert int(gauge_mask(4, 4, 1e-9).sum()) == 1  # never none
    assert bool(gauge_mask(8, 8, 1.0).all())
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(UserError, match="gauges"):
            gauge_mask(8, 8, bad)


def test_a_gauged_reward_ignores_what_happens_away_from_the_gauges():
    """CSI at threshold 1: the truth has events at (0, 0) and (3, 3); the forecast hits (0, 0) only and has a false
    alarm at (2, 2). Seen everywhere: 1 hit, 1 miss, 1 false alarm -> 1/3; at a gauge on (0, 0) alone: 1/1."""
    truth, forecast = torch.zeros(1, 1, 1, 4, 4), torch.zeros(1, 1, 1, 4, 4)
    truth[..., 0, 0] = truth[..., 3, 3] = 2.0
    forecast[..., 0, 0] = forecast[..., 2, 2] = 2.0
    csi = get_reward({"name": "csi", "thresholds": [1.0]})
    assert csi(forecast, truth).item() == pytest.approx(1 / 3)
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[0, 0] = True
    gauged = Gauged(csi, mask)
    assert gauged(forecast, truth).item() == pytest.approx(1.0)
    mask[3, 3] = True  # a gauge on the missed event: 1 hit, 1 miss
    assert Gauged(csi, mask)(forecast, truth).item() == pytest.approx(0.5)
    assert gauged.local(forecast, truth)[..., 2, 2].item() == 0.0  # no score where no gauge sees
