"""Scheduled sampling for autoregressive training (Bengio et al., 2015).

At every autoregressive step each sample's next input is the truth with probability ``ratio`` (teacher forcing)
and the model's own prediction otherwise. The ratio decays with the optimizer step by the inverse sigmoid
``k / (k + exp(step / k))``: near 1 early (for large ``k``), falling to 0 as training goes on.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sfp.errors import UserError


def teacher_forcing_ratio(step: int, k: float) -> float:
    """Inverse-sigmoid decay ``k / (k + exp(step / k))`` for ``k >= 1``."""
    if k < 1:
        raise UserError(f"scheduled_sampling_k must be >= 1, got {k}")
    exponent = step / k
    return 0.0 if exponent > 700 else k / (k + math.exp(exponent))


def k_for_midpoint(num_training_steps: int) -> float:
    """The ``k`` whose ratio crosses 1/2 at half of ``num_training_steps`` (solves ``k ln k = steps / 2``)."""
    target = num_training_steps / 2
    low, high = 1.0, max(2.0, target + 2.0)  # k ln k is increasing for k >= 1; k ln k >= target at high
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if middle * math.log(middle) < target else (low, middle)
    return (low + high) / 2


def mix_with_truth(prediction: Tensor, truth: Tensor, truth_valid: Tensor, ratio: float,
                   generator: torch.Generator | None = None) -> Tensor:
    """Per sample, the truth with probability ``ratio`` else the prediction; missing truth keeps the prediction."""
    if ratio <= 0:
        return prediction
    draws = torch.rand(prediction.shape[0], generator=generator, device=prediction.device)
    use_truth = (draws < ratio).view(-1, *([1] * (prediction.ndim - 1))) & truth_valid
    return torch.where(use_truth, truth, prediction)
