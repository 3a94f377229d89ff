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

Three labels: the argmax (the future best on half A), the advantage-weighted blend, and the ``local`` label, the
choice a mosaic planner makes: each cell of half A (a lead time, or a square) takes the future best on that cell
alone (scored as a half is: the truth everywhere else), and each cell of half B the future whose mean score over its
neighbouring half-A cells (the lead times before and after, the four squares beside) is best. Its held-out gain
says whether the future that is best at one place is also best next to it: whether local choices are learnable.
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
    """The selection diagnostic of the argmax label (the future best on half A), the advantage-weighted label (the
    futures blended by their half-A advantages, :func:`~sfp.planning.weighted_labels.weighted_label`) and the local
    label (chosen cell by cell, see the module's docstring)."""

    argmax: SelectionGain
    weighted: SelectionGain
    local: SelectionGain


def cells(split: str, shape: tuple[int, ...], patch: int = 1,
          device: torch.device | str | None = None) -> tuple[Tensor, Tensor, list[list[int]]]:
    """The cells of ``split`` over a window of ``shape`` ``(T, C, H, W)``: their masks ``(N, T, 1, H, W)``, the half
    each lies in ``(N,)`` (0 is A) and each cell's neighbours (indices), which lie in the other half."""
    steps, _, height, width = shape
    if split == "leads":
        masks = torch.eye(steps, dtype=torch.bool, device=device)[:, :, None, None, None].expand(-1, -1, 1, height,
                                                                                               width)
        halves = torch.arange(steps, device=device) % 2
        return masks, halves, [[m for m in (n - 1, n + 1) if 0 <= m < steps] for n in range(steps)]
    rows, columns = -(-height // patch), -(-width // patch)
    row_of = torch.arange(height, device=device)[:, None] // patch
    column_of = torch.arange(width, device=device)[None, :] // patch
    places = [(i, j) for i in range(rows) for j in range(columns)]
    masks = torch.stack([(row_of == i) & (column_of == j) for i, j in places])[:, None, None].expand(-1, steps, 1,
                                                                                                   -1, -1)
    halves = torch.tensor([(i + j) % 2 for i, j in places], device=device)
    neighbours = [[(i + di) * columns + j + dj for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1))
                   if 0 <= i + di < rows and 0 <= j + dj < columns] for i, j in places]
    return masks, halves, neighbours


def local_label(futures: Tensor, truth: Tensor, reward: Reward, split: str, patch: int = 1) -> Tensor:
    """The futures ``(B, K, T, C, H, W)`` chosen cell by cell (the module's docstring): ``(B, T, C, H, W)``."""
    masks, halves, neighbours = cells(split, tuple(truth.shape[1:]), patch, truth.device)
    stacked = truth[:, None]
    known = ~torch.isnan(stacked)
    scores = torch.full((len(futures), futures.shape[1], len(masks)), float("nan"), device=truth.device)
    for n in torch.nonzero(halves == 0).flatten().tolist():  # each half-A cell scored alone, the truth elsewhere
        scores[:, :, n] = reward(torch.where(~masks[n] & known, stacked, futures), truth)
    label = torch.zeros_like(truth)
    rows = torch.arange(len(futures), device=truth.device)
    for n, mask in enumerate(masks):
        cell_scores = scores[:, :, n] if halves[n] == 0 else scores[:, :, neighbours[n]].nanmean(-1)
        label = torch.where(mask, futures[rows, cell_scores.nan_to_num(-float("inf")).argmax(1)], label)
    return label


@torch.no_grad()
def selection_gains(futures: Tensor, action: Tensor, truth: Tensor, reward: Reward, beta: float,
                    split: str = "leads", patch: int = 1) -> SelectionGains:
    """Choose among ``futures (B, K, T, C, H, W)`` on half A of each window and score on both halves against the
    action ``(B, T, C, H, W)`` and the truth (same shape): gains per window of the argmax, weighted and local
    labels.

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
    return SelectionGains(gains(best), gains(blended), gains(local_label(futures, truth, reward, split, patch)))


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
