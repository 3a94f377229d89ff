"""Rewards with no usable gradient (object CSI, SAL, vortex census) on hand-made fields, by name, over candidate
stacks and split frames, and always finite."""

import math

import numpy as np
import pytest
import torch

from sfp.errors import UserError
from sfp.planning.rewards import available_rewards, get_reward, object_csi, sal, vortex_census

# 12x12 frame: truth cells at (2,1) 200 and (2,6) 150; forecast cells at (2,4) 140 and (2,9) 170
TRUTH = torch.zeros(1, 1, 1, 12, 12)
TRUTH[0, 0, 0, 2, 1], TRUTH[0, 0, 0, 2, 6] = 200.0, 150.0
FORECAST = torch.zeros(1, 1, 1, 12, 12)
FORECAST[0, 0, 0, 2, 4], FORECAST[0, 0, 0, 2, 9] = 140.0, 170.0


def _vortices(shift: int = 0, sign: float = 1.0) -> torch.Tensor:
    rows, columns = np.indices((32, 32))

    def gaussian(row: float, column: float) -> np.ndarray:
        d_row, d_column = (rows - row + 16) % 32 - 16, (columns - column + 16) % 32 - 16
        return np.exp(-(d_row**2 + d_column**2) / 8.0)

    return torch.from_numpy(sign * (gaussian(8, 8 + shift) - gaussian(22, 20 + shift))).view(1, 1, 1, 32, 32)


def test_registered_by_name():
    assert {"object_csi", "sal", "vortex_census"} <= set(available_rewards())
    reward = get_reward({"name": "object_csi", "thresholds": [133, 181], "radius": 3.5})
    assert reward(FORECAST, TRUTH).item() == 0.5


def test_object_csi_by_hand():
    # 133: both pairs within 3.5 (CSI 1); 181: the 200 cell is missed (CSI 0); 250: no cell anywhere (1)
    assert object_csi([133, 181], radius=3.5)(FORECAST, TRUTH).item() == 0.5
    assert object_csi([133, 181, 250], radius=3.5)(FORECAST, TRUTH).item() == pytest.approx(2 / 3)
    assert object_csi([133], radius=2.5)(FORECAST, TRUTH).item() == pytest.approx(1 / 3)  # one pair, M=1, F=1


def test_sal_by_hand():
    field = torch.zeros(1, 2, 1, 8, 8)
    field[..., 2:5, 2:5] = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    assert sal()(field, field).item() == 0.0
    assert sal()(2 * field, field).item() == pytest.approx(-2 / 3)  # A = 2/3, S = L = 0 in both frames
    dry = torch.zeros_like(field)
    assert sal()(dry, dry).item() == 0.0
    assert sal()(dry, field).item() == -6.0  # S = A = -2, L undefined: counted as 2


def test_vortex_census_by_hand():
    truth = _vortices()
    assert vortex_census(radius=4)(_vortices(shift=3), truth).item() == 1.0
    assert vortex_census(radius=2)(_vortices(shift=3), truth).item() == 0.0
    assert vortex_census(radius=4)(_vortices(sign=-1.0), truth).item() == 0.0
    calm = torch.zeros_like(truth)
    assert vortex_census(radius=4)(calm, calm).item() == 1.0


def _rewards():
    return (object_csi([2.0, 4.0], radius=3), sal(), vortex_census(radius=3))


def test_candidate_stacks_and_split_frames():
    generator = torch.Generator().manual_seed(0)
    target = torch.randn(2, 3, 1, 16, 16, generator=generator).abs() * 2
    stack = torch.randn(2, 4, 3, 1, 16, 16, generator=generator).abs() * 2
    for reward in _rewards():
        scores = reward(stack, target)
        assert scores.shape == (2, 4)
        for i in range(4):
            assert torch.allclose(scores[:, i], reward(stack[:, i], target)), reward
        head = reward.frame_totals(stack[:, :, :1], target[:, :1])
        tail = reward.frame_totals(stack[:, :, 1:], target[:, 1:])
        assert torch.allclose(reward.from_totals(head + tail).float(), scores, atol=1e-6), reward


def test_finite_without_gradient_even_on_nan_forecasts():
    generator = torch.Generator().manual_seed(1)
    target = torch.randn(2, 2, 1, 16, 16, generator=generator).abs() * 2
    pred = (torch.randn(2, 2, 1, 16, 16, generator=generator).abs() * 2).requires_grad_()
    broken = pred.detach().clone()
    broken[0, 0, 0, :4] = math.nan
    for reward in _rewards():
        for forecast in (pred, broken):
            scores = reward(forecast, target)
            assert torch.isfinite(scores).all() and not scores.requires_grad, reward


@pytest.mark.parametrize("make", [
    lambda: object_csi([], radius=1), lambda: object_csi([1], radius=0), lambda: sal(quantile=1.5),
    lambda: sal(min_size=0), lambda: vortex_census(radius=-1), lambda: vortex_census(radius=1, level=0),
])
def test_bad_options_are_user_errors(make):
    with pytest.raises(UserError):
        make()
