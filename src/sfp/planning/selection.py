"""How much of a plan's gain survives selection: choose on one half of each window, score on the other.

The oracle gain (:mod:`sfp.planning.diagnostics`) picks the best of K imagined futures with the truth and scores it
on that same truth, so it counts the luck of the pick as gain: among K futures that are pure noise, one still
beats the action. Here the plan is chosen on half A of each window and scored on half B, which played no part in
the choice. A gain that the agent could learn shows up on both halves; luck shows up on half A alone.

Splits of a window ``(T, C, H, W)`` into halves 0 (A) and 1 (B):

- ``leads``: the even lead times (A) and the odd ones (B); a half is scored as the reward of its frames alone;
- ``checkerboard``: ``patch`` x ``patch`` squares over ``H x W`` coloured as a checkerboard (A holds the top-left
  square), the same at every lead time and channel. A half is scored as the reward of the field with the other
  half's pixels replaced by the truth (where the truth is known), against the whole truth: the reward of a
  forecast that is perfect outside the half, so only the half's own pixels can differ between two forecasts.
  This works for any reward of whole fields (CSI, FSS, SSIM, spectra). For an additive reward such as -MSE a
  half's score is the whole window's count of its error: -(squared error over A) / (valid pixels in the window).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.planning.reward_types import Reward
from sfp.planning.weighted_labels import weighted_label

SPLITS = ("leads", "checkerboard")


def checkerboard(height: int, width: int, patch: int, device: torch.device | str | None = None) -> Tensor:
    """``(height, width)`` booleans, True on half A: the ``patch`` x ``patch`` squares whose row and column
    indices add up to an even number (the top-left square is A)."""
    rows = torch.arange(height, device=device)[:, None] // patch
    columns = torch.arange(width, device=device)[None, :] // patch
    return (rows + columns) % 2 == 0


def score_on_half(reward: Reward, field: Tensor, truth: Tensor, split: str, half: int, patch: int = 1) -> Tensor:
    """The reward of ``field (B, *S, T, C, H, W)`` against ``truth (B, T, C, H, W)`` on half ``half`` (0 is A,
    1 is B) of ``split``: ``(B, *S)``. See the module's docstring for how each split scores a half."""
    if split == "leads":
        return reward(field[..., half::2, :, :, :], truth[:, half::2])
    stacked = truth.reshape(truth.shape[0], *[1] * (field.ndim - truth.ndim), *truth.shape[1:])
    other_half = checkerboard(*truth.shape[-2:], patch, truth.device) != (half == 0)
    return reward(torch.where(other_half & ~torch.isnan(stacked), stacked, field), truth)


class SelectionGain(NamedTuple):
    """Per-window gains ``(B,)`` of one label over the action: on half A, where the label was chosen
    (``in_sample``), and on half B, which played no part in the choice (``held_out``)."""

    in_sample: Tensor
    held_out: Tensor

    @property
    def share_kept(self) -> float:
        """Mean held-out gain / mean in-sample gain: 1 when the whole gain is learnable, about 0 when it is luck
        (NaN or infinite when the mean in-sample gain is 0)."""
        return float(self.held_out.mean() / self.in_sample.mean())


class SelectionGains(NamedTuple):
    """The selection diagnostic of the argmax label (the future best on half A) and of the advantage-weighted
    label (the futures blended by their half-A advantages, :func:`~sfp.planning.weighted_labels.weighted_label`)."""

    argmax: SelectionGain
    weighted: SelectionGain


@torch.no_grad()
def selection_gains(futures: Tensor, action: Tensor, truth: Tensor, reward: Reward, beta: float,
                    split: str = "leads", patch: int = 1) -> SelectionGains:
    """Choose among ``futures (B, K, T, C, H, W)`` on half A of each window and score on both halves against the
    action ``(B, T, C, H, W)`` and the truth (same shape): gains per window of the argmax and weighted labels.

    The weighted label uses ``beta`` on the half-A rewards; ``patch`` is the checkerboard's square size.
    """
    _check(futures, action, truth, split, patch)
    action_scores = [score_on_half(reward, action, truth, split, half, patch) for half in (0, 1)]

    def gains(label: Tensor) -> SelectionGain:
        return SelectionGain(*(score_on_half(reward, label, truth, split, half, patch) - action_scores[half]
                               for half in (0, 1)))

    future_scores = score_on_half(reward, futures, truth, split, 0, patch)  # (B, K)
    best = futures[torch.arange(len(futures), device=futures.device), future_scores.argmax(1)]
    blended = weighted_label(futures, future_scores, action_scores[0], beta)
    return SelectionGains(gains(best), gains(blended))


def _check(futures: Tensor, action: Tensor, truth: Tensor, split: str, patch: int) -> None:
    """Raise UserError unless the shapes match and the split has two non-empty halves."""
    if action.ndim != 5 or truth.shape != action.shape or futures.shape[:1] + futures.shape[2:] != action.shape:
        raise UserError(f"futures {tuple(futures.shape)}, action {tuple(action.shape)} and truth "
                        f"{tuple(truth.shape)} must be (B, K, T, C, H, W), (B, T, C, H, W) and (B, T, C, H, W)")
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    if split == "leads" and action.shape[1] < 2:
        raise UserError(f"the leads split needs at least 2 lead times, got {action.shape[1]}")
    if split == "checkerboard" and not (isinstance(patch, int) and 1 <= patch < max(action.shape[-2:])):
        raise UserError(f"the checkerboard patch must be an integer from 1 to below the field's larger side "
                        f"{max(action.shape[-2:])}, got {patch!r}")
