"""Whether a cell's agent had converged before SFP and its baselines continued it (issue 32's check).

Two measurements, both required: the agent's best validation MSE improved by less than ``VALIDATION_GAIN`` over
the last quarter of its steps (read from the agent stage's CSV logs), and the equal-time MSE baseline (the agent
trained on with MSE for SFP's seconds) lowers the agent's test MSE by less than ``EQUAL_TIME_GAIN``. An agent that
fails either was still learning, so part of any gain over it is just more training.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

VALIDATION_GAIN = 0.01  # the agent's best validation MSE over its last quarter of steps
EQUAL_TIME_GAIN = 0.03  # the equal-time MSE baseline's test MSE against the agent's


def validation_curve(logs: Path, metric: str = "val/mse") -> list[tuple[int, float]]:
    """``(step, value)`` of every validation in a stage's CSV logs (``logs/version_*/metrics.csv``, a resumed run's
    versions together), by step."""
    points: dict[int, float] = {}
    for path in sorted(logs.glob("version_*/metrics.csv")):
        with path.open(newline="") as file:
            for row in csv.DictReader(file):
                if row.get(metric):
                    points[int(row["step"])] = float(row[metric])
    return sorted(points.items())


def last_quarter_gain(curve: list[tuple[int, float]]) -> float | None:
    """How much the best value improved over the last quarter of the steps: ``(best before - best at the end) /
    best before``, the best before taken over the validations at or before 3/4 of the last step; None without a
    validation in the first three quarters."""
    if not curve:
        return None
    cut = 0.75 * curve[-1][0]
    before = [value for step, value in curve if step <= cut]
    if not before or not min(before) > 0:
        return None
    best_before, best = min(before), min(value for _, value in curve)
    return (best_before - best) / best_before


def convergence(curve: list[tuple[int, float]] | None, models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The check of one cell: ``agent_val_mse_gain`` (last quarter, None where the curve is unknown),
    ``equal_time_test_mse_gain`` (the agent's test MSE lowered by the equal-time baseline, as a fraction), and
    ``converged``: both under their limits (False where a known one is not, None where one is unknown and the
    other passes)."""
    validation = last_quarter_gain(curve) if curve is not None else None
    agent, more = (models.get(name, {}).get("mse") for name in ("agent", "baseline_time"))
    equal_time = (agent - more) / agent if agent and more is not None and math.isfinite(agent) else None
    passed = [gain < limit for gain, limit in ((validation, VALIDATION_GAIN), (equal_time, EQUAL_TIME_GAIN))
              if gain is not None]
    converged = False if not all(passed) else True if len(passed) == 2 else None
    return {"agent_val_mse_gain": validation, "equal_time_test_mse_gain": equal_time, "converged": converged}
