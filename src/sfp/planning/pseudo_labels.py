"""Pseudo-labels: what the agent is trained toward once the planner found a better future, and the pull's distance.

Four kinds (``PseudoLabels.kind``), each judged against the truth on the reward before it is accepted:

- ``future``: the planned future itself;
- ``raise``: the agent's forecast raised where the plan is higher than the world model's decode of the action
  (its reconstruction, so the decoder's own blur does not count), at the pixels where the raise improves the
  reward's local score against the truth (a miss turned into a hit), the forecast elsewhere. MSE to the truth
  already removes false alarms; its blind spot is regression to the mean flattening intense cores, and these
  raises are what it cannot learn alone;
- ``objects``: for a reward of whole objects (object CSI: no pixel counts alone), the agent's forecast plus the
  plan's departure from that reconstruction inside the plan's cells that the reward matches to the truth's, the
  forecast elsewhere: the label moves the cells that gained and nothing else, where a whole future would also ask
  the agent to learn every unmatched detail of the draw;
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

from sfp.errors import UserError
from sfp.metrics.spectrum import LOG_EPSILON, rescale_shells, scalar_spectrum
from sfp.planning.planner import PlanResult
from sfp.planning.reward_types import Reward
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


def _reconstruction(action: Tensor, plan: PlanResult, world_model: WorldModel, context: Tensor) -> Tensor:
    """The world model's decode of the action: the search's, or made here where the search did not decode it."""
    return plan.reconstruction if plan.reconstruction is not None else world_model.reconstruct(action, context)


def raise_label(action: Tensor, plan: PlanResult, truth: Tensor, world_model: WorldModel, context: Tensor,
                reward: Reward) -> Tensor:
    """The action raised where the plan is above the world model's decode of the action, at the pixels where the
    raise improves the reward's local score against the truth; the action elsewhere."""
    raised = action + (plan.best - _reconstruction(action, plan, world_model, context)).clamp_min(0)
    helps = reward.local(raised, truth) > reward.local(action, truth)  # (B, T, H, W)
    return torch.where(helps.unsqueeze(2), raised, action)


def object_label(action: Tensor, plan: PlanResult, truth: Tensor, world_model: WorldModel, context: Tensor,
                 reward: Reward) -> Tensor:
    """The action edited by the plan (its departure from the world model's decode of the action) inside the plan's
    objects that the reward matches to the truth's, the action elsewhere: only whole objects count, so the label
    changes the cells that gained and leaves the rest of the field as forecast."""
    inside = reward.regions(plan.best, truth).reshape(action.shape)
    return torch.where(inside, action + plan.best - _reconstruction(action, plan, world_model, context), action)


def check_label_reward(kind: str, reward: Reward) -> None:
    """Labels of ``kind`` that ``reward`` can make: ``objects`` labels need a reward of matched objects."""
    if kind == "objects" and reward.regions is None:
        raise UserError(f"pseudo_labels.kind objects edits the objects a reward matches; the reward {reward.name} "
                        "has none: use an object reward (e.g. object_csi) or another kind")


def make_label(kind: str, action: Tensor, plan: PlanResult, truth: Tensor, world_model: WorldModel,
               context: Tensor, reward: Reward) -> Tensor:
    """The pseudo-label of kind ``future``, ``raise``, ``objects`` or ``spectrum`` for the action and its plan."""
    if kind == "raise":
        return raise_label(action, plan, truth, world_model, context, reward)
    if kind == "objects":
        return object_label(action, plan, truth, world_model, context, reward)
    if kind == "spectrum":
        return spectrum_label(action, plan.best, truth)
    return plan.best
