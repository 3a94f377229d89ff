"""Pseudo-labels: what the agent is trained toward once the planner found a better future, and the pull's distance.

Three kinds (``PseudoLabels.kind``), each judged against the truth on the reward before it is accepted:

- ``future``: the planned future itself;
- ``raise``: the agent's forecast raised where the plan is higher than the world model's decode of the action
  (its reconstruction, so the decoder's own blur does not count), at the pixels where the raise improves the
  reward's local score against the truth (a miss turned into a hit), the forecast elsewhere. MSE to the truth
  already removes false alarms; its blind spot is regression to the mean flattening intense cores, and these
  raises are what it cannot learn alone;
- ``spectrum``: the agent's forecast with each frame's shell energies set to the plan's (phases kept), at the
  shells where the plan's energy is closer to the truth's: the shell is a spectral reward's local unit, as the
  pixel is CSI's. A label that differs from the forecast only in shell amplitudes is one the agent can learn,
  where another sample's phases average away.

The pull is MSE to the label or :func:`~sfp.metrics.spectrum.log_spectrum_distance`: a spectral reward weighs
every shell alike, while pixel MSE is ruled by the few energetic large scales. docs/experiments.md has the
measurements behind each.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sfp.metrics.spectrum import LOG_EPSILON, rescale_shells, scalar_spectrum
from sfp.planning.planner import PlanResult
from sfp.planning.rewards import Reward
from sfp.planning.world_model import WorldModel


def spectrum_label(action: Tensor, plan: Tensor, truth: Tensor) -> Tensor:
    """The action with the plan's shell energies at the shells where they are closer to the truth's (in log).

    ``(B, T, C, N, N)`` fields, frame by frame: each such shell of the action is rescaled to the plan's energy,
    its phases kept; the mean, and the shells where the plan is no closer, stay the action's.
    """
    action_energy, plan_energy, true_energy = (scalar_spectrum(field) for field in (action, plan, truth))

    def log_distance(energy: Tensor) -> Tensor:
        return (torch.log10(energy + LOG_EPSILON) - torch.log10(true_energy + LOG_EPSILON)).abs()

    # shells holding no more than round-off of the frame's energy have nothing to rescale
    empty = action_energy.sum(-1, keepdim=True) * torch.finfo(action_energy.dtype).eps
    closer = (log_distance(plan_energy) < log_distance(action_energy)) & (action_energy > empty)
    closer[..., 0] = False
    return rescale_shells(action, torch.where(closer, plan_energy / action_energy.clamp_min(LOG_EPSILON), 1.0))


def raise_label(action: Tensor, plan: PlanResult, truth: Tensor, world_model: WorldModel, context: Tensor,
                reward: Reward) -> Tensor:
    """The action raised where the plan is above the world model's decode of the action, at the pixels where the
    raise improves the reward's local score against the truth; the action elsewhere."""
    reconstruction = plan.reconstruction
    if reconstruction is None:  # a search that did not decode the action's nearest codes itself
        reconstruction = world_model.reconstruct(action, context)
    raised = action + (plan.best - reconstruction).clamp_min(0)
    helps = reward.local(raised, truth) > reward.local(action, truth)  # (B, T, H, W)
    return torch.where(helps.unsqueeze(2), raised, action)


def make_label(kind: str, action: Tensor, plan: PlanResult, truth: Tensor, world_model: WorldModel,
               context: Tensor, reward: Reward) -> Tensor:
    """The pseudo-label of kind ``future``, ``raise`` or ``spectrum`` for the action and its plan."""
    if kind == "raise":
        return raise_label(action, plan, truth, world_model, context, reward)
    if kind == "spectrum":
        return spectrum_label(action, plan.best, truth)
    return plan.best
