"""The surrogate baseline's weight: the one whose validation MSE change, relative to the equal-step baseline's, is
nearest SFP's (the comparison at matched MSE), searched beyond the configured weights while none is close enough."""

from __future__ import annotations

import math
from collections.abc import Callable

SURROGATE_MATCH = 0.01  # the surrogate baseline's validation MSE change within 1 point of SFP's
SURROGATE_EXTRA_WEIGHTS = 3  # weights trained beyond surrogate_weights to reach that match


def choose_surrogate_weight(mse_change: dict[float, float], sfp_mse_change: float) -> float:
    """The weight whose relative MSE change is nearest SFP's (the smaller weight on a tie)."""
    return min(sorted(mse_change), key=lambda weight: abs(mse_change[weight] - sfp_mse_change))


def match_surrogate_weight(measure: Callable[[list[float]], dict[float, float]], weights: list[float],
                           sfp_mse_change: float) -> float:
    """The surrogate weight whose MSE change (``measure(new weights)`` trains them and returns the change of every
    weight so far) is nearest SFP's: ``weights`` first, then up to ``SURROGATE_EXTRA_WEIGHTS`` more
    (:func:`next_surrogate_weight`) while none is within ``SURROGATE_MATCH`` of it."""
    changes = measure(list(weights))
    for _ in range(SURROGATE_EXTRA_WEIGHTS):
        weight = choose_surrogate_weight(changes, sfp_mse_change)
        if abs(changes[weight] - sfp_mse_change) <= SURROGATE_MATCH:
            return weight
        changes = measure([next_surrogate_weight(changes, sfp_mse_change)])
    return choose_surrogate_weight(changes, sfp_mse_change)


def next_surrogate_weight(mse_change: dict[float, float], sfp_mse_change: float) -> float:
    """The weight to try next when none matches SFP's MSE change: between the two neighbouring weights whose
    changes bracket SFP's (their geometric mean), else a third of the smallest or three times the largest weight,
    toward SFP's change (the MSE change grows with the weight)."""
    weights = sorted(mse_change)
    for low, high in zip(weights, weights[1:]):
        if min(mse_change[low], mse_change[high]) <= sfp_mse_change <= max(mse_change[low], mse_change[high]):
            return math.sqrt(low * high)
    below = sfp_mse_change < mse_change[weights[0]]
    return weights[0] / 3 if below else weights[-1] * 3
