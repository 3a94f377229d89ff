"""Advantage-weighted pseudo-labels: a soft choice among imagined futures instead of the single best one.

The argmax future is the plan that scored best against the truth, and some of its lead over the others is luck
(noise that happened to match); weighting every future by ``softmax(β · advantage)`` spreads the label over the
futures that scored well, so less of that luck is copied into it. ``β = 0`` gives the mean of the futures and
``β → ∞`` the argmax future.
"""

from __future__ import annotations

import math

from torch import Tensor

from sfp.errors import UserError


def weighted_label(futures: Tensor, rewards: Tensor, action_reward: Tensor, beta: float) -> Tensor:
    """``Σ_k softmax_k(β · (r_k − r_action)) · future_k``: futures ``(B, K, ...)``, their rewards ``(B, K)`` and the
    action's ``(B,)`` -> ``(B, ...)``.

    The weights are a softmax over k, so they depend on the advantages ``r_k − r_action`` only through their
    differences: the action's reward is the reference the advantages are read against, not a change of weights.
    Rewards that are all equal give the mean of the futures, whatever β; β must be finite and at least 0.
    """
    if not (math.isfinite(beta) and beta >= 0):
        raise UserError(f"the advantage weight beta must be a finite number >= 0, got {beta!r}")
    if rewards.shape != futures.shape[:2] or action_reward.shape != futures.shape[:1]:
        raise UserError(f"rewards {tuple(rewards.shape)} and action rewards {tuple(action_reward.shape)} do not "
                        f"match futures {tuple(futures.shape)}; expected (B, K) and (B,)")
    advantages = rewards - action_reward[:, None]
    weights = (beta * advantages).softmax(dim=1).to(futures.dtype)
    return (weights.reshape(*weights.shape, *[1] * (futures.ndim - 2)) * futures).sum(1)
