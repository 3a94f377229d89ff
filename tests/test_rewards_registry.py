"""The reward registry: names, dict specs, registered and imported user rewards, and its errors."""

import textwrap

import pytest
import torch

from sfp.errors import UserError
from sfp.planning.reward_types import Reward
from sfp.planning.rewards import available_rewards, get_reward, register_reward

TRUTH = torch.zeros(2, 2, 1, 4, 4)
FORECAST = TRUTH + 3.0


def _shifted_mse(pred: torch.Tensor, target: torch.Tensor, offset: float) -> torch.Tensor:
    return offset - ((pred - target) ** 2).flatten(1).mean(1)


@register_reward("planner_test_offset_mse")
def offset_mse(offset: float = 0.0) -> Reward:
    """A user-style reward registered by the tests: offset minus the MSE."""
    return Reward(lambda pred, target: _shifted_mse(pred, target, offset), f"offset_mse({offset})")


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """An importable module ``planner_user_rewards`` holding user rewards."""
    (tmp_path / "planner_user_rewards.py").write_text(textwrap.dedent("""
        import torch

        def negative_mae(pred, target, weight=1.0):
            return -weight * (pred - target).abs().flatten(1).mean(1)

        def wrong_shape(pred, target):
            return (pred - target).abs().mean()

        NOT_A_FUNCTION = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "planner_user_rewards"


def test_builtins_are_registered():
    assert {"csi", "fss", "neg_mse", "ssim", "neg_tke_error", "weighted"} <= set(available_rewards())


def test_names_and_dicts_build_rewards():
    assert get_reward("neg_mse")(FORECAST, TRUTH).tolist() == [-9.0, -9.0]
    assert get_reward({"name": "neg_mse", "scale": 3.0})(FORECAST, TRUTH).tolist() == [-1.0, -1.0]
    assert get_reward({"name": "csi", "thresholds": [1.0]})(FORECAST, TRUTH).tolist() == [0.0, 0.0]
    spec = {"name": "weighted", "neg_mse": 1.0, "csi": {"weight": 2.0, "thresholds": [5.0]}}
    assert get_reward(spec)(FORECAST, TRUTH).tolist() == [-9.0 + 2.0, -9.0 + 2.0]  # no event at 5: CSI 1


def test_a_reward_passes_through():
    reward = get_reward("neg_mse")
    assert get_reward(reward) is reward


def test_registered_user_reward_round_trip():
    assert "planner_test_offset_mse" in available_rewards()
    assert get_reward({"name": "planner_test_offset_mse", "offset": 10.0})(FORECAST, TRUTH).tolist() == [1.0, 1.0]
    stack = torch.stack([FORECAST, TRUTH], dim=1)  # candidate stacks broadcast for user rewards too
    assert get_reward("planner_test_offset_mse")(stack, TRUTH).tolist() == [[-9.0, 0.0], [-9.0, 0.0]]


def test_registering_a_name_twice_or_with_a_colon_fails():
    with pytest.raises(ValueError, match="already registered"):
        register_reward("neg_mse")(offset_mse)
    with pytest.raises(ValueError, match="':'"):
        register_reward("a:b")


def test_imported_user_reward(user_module):
    assert get_reward(f"{user_module}:negative_mae")(FORECAST, TRUTH).tolist() == [-3.0, -3.0]
    weighted = get_reward({"name": f"{user_module}:negative_mae", "weight": 2.0})
    assert weighted(FORECAST, TRUTH).tolist() == [-6.0, -6.0]
    stack = torch.stack([FORECAST, TRUTH, FORECAST / 3], dim=1)
    assert weighted(stack, TRUTH).tolist() == [[-6.0, 0.0, -2.0]] * 2


@pytest.mark.parametrize("spec, message", [
    ("no_such_reward", "unknown reward 'no_such_reward'"),
    ({"thresholds": [1]}, "'name' key"),
    (3, "'name' key"),
    ({"name": "neg_mse", "bogus": 1}, "does not accept"),
    ({"name": "csi"}, "does not accept"),
    ("planner_no_such_module:f", "cannot import"),
])
def test_bad_specs_are_user_errors(spec, message):
    with pytest.raises(UserError, match=message):
        get_reward(spec)


def test_bad_imported_rewards_are_user_errors(user_module):
    with pytest.raises(UserError, match="must name a function"):
        get_reward(f"{user_module}:NOT_A_FUNCTION")
    with pytest.raises(UserError, match="must name a function"):
        get_reward(f"{user_module}:missing")
    with pytest.raises(UserError, match="does not accept"):
        get_reward({"name": f"{user_module}:negative_mae", "bogus": 1})
    with pytest.raises(UserError, match="one value per forecast"):
        get_reward(f"{user_module}:wrong_shape")(FORECAST, TRUTH)
