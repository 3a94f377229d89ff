"""The search without the world model: perturbations of the action itself, scored by the same reward."""

import torch

from sfp.options import coerce
from sfp.planning import planner as planner_module
from sfp.planning.options import PlannerOptions
from sfp.planning.planner import PerturbationPlanner, build_planner, perturbations
from sfp.planning.pseudo_labels import raise_label
from sfp.planning.rewards import get_reward


def _action(seed=0):
    return torch.rand(3, 4, 1, 16, 16, generator=torch.Generator().manual_seed(seed)) + 0.5


def test_perturbations_are_seeded_and_keep_shape_and_scale():
    action = _action()
    draws = perturbations(action, 8, torch.Generator().manual_seed(1))
    assert draws.shape == (3, 8, 4, 1, 16, 16)
    assert torch.equal(draws, perturbations(action, 8, torch.Generator().manual_seed(1)))
    assert not torch.equal(draws, perturbations(action, 8, torch.Generator().manual_seed(2)))
    assert not torch.allclose(draws, action[:, None].expand_as(draws))


def test_a_pure_scaling_is_found_when_the_truth_is_a_scaled_action(monkeypatch):
    """No shift, no noise: each draw is the action times a scale; against a truth 1.1 x the action, the search keeps
    the draw whose scale is nearest 1.1, and its reward is that draw's."""
    monkeypatch.setattr(planner_module, "PERTURBATION_SHIFT", 0)
    monkeypatch.setattr(planner_module, "PERTURBATION_NOISE", 0.0)
    action = _action()
    truth = 1.1 * action
    options = coerce(PlannerOptions, {"kind": "perturbation", "imagination": {"samples": 32}})
    search = build_planner(None, "neg_mse", options)
    assert isinstance(search, PerturbationPlanner)
    result = search.plan(action, action, truth, torch.Generator().manual_seed(0))
    scales = (result.best / action).flatten(1)
    assert torch.allclose(scales, scales[:, :1].expand_as(scales), atol=1e-5)  # one scale per sample
    draws = perturbations(action, 32, torch.Generator().manual_seed(0))
    nearest = (draws / action[:, None]).flatten(2)[..., 0].sub(1.1).abs().min(dim=1).values
    assert torch.allclose((scales[:, 0] - 1.1).abs(), nearest, atol=1e-5)
    reward = get_reward("neg_mse")
    assert torch.allclose(result.reward, reward(result.best, truth)) and (result.reward > result.action_reward).all()
    assert result.reconstruction is action  # raise labels measure the plan's rise above the action itself
    label = raise_label(action, result, truth, None, action, reward)
    assert (label >= action).all() and (label - truth).abs().mean() < (action - truth).abs().mean()
