"""Cost of SFP planning per batch against one plain training step of the agent, measured in the same run.

Storms-sized batch: 8 samples, 10 context -> 10 future frames of 64x64 VIL (0-255), the default ``WorldModel``
and the storms headline reward (CSI over the six SEVIR thresholds). Planning at 16 candidates per sample:
best-of-16, and beam search 4 beams x 4 expansions. The agent step is the default SimVP backbone's forward,
MSE backward and AdamW step on the same batch. Target: planning <= 3x the training step. Each time is the
fastest of a few interleaved rounds after a warm-up; other work shares the machine, so take them as rough.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from sfp.models import build
from sfp.planning.planner import build_planner
from sfp.planning.rewards import reward_for_task
from sfp.planning.world_model import WorldModel
from sfp.task import STORMS

BATCH, IN_FRAMES, OUT_FRAMES, PIXELS = 8, 10, 10, 64
TARGET_RATIO = 3.0


def _fastest(steps: dict[str, Callable[[], object]], rounds: int = 3) -> dict[str, float]:
    """Seconds of each step: the fastest of ``rounds`` after a warm-up, interleaved round by round so that load
    from other processes hits every step alike."""
    for step in steps.values():
        step()
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _storm_like(frames: int, generator: torch.Generator) -> torch.Tensor:
    """Smooth random VIL-like fields ``(BATCH, frames, 1, 64, 64)`` in 0-255 that cross every SEVIR threshold."""
    coarse = torch.rand(BATCH, frames, 1, 8, 8, generator=generator)
    fields = F.interpolate(coarse.flatten(0, 1), size=(PIXELS, PIXELS), mode="bicubic", align_corners=False)
    return (255 * fields.clamp(0, 1) ** 2).unflatten(0, (BATCH, frames))


def run() -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    context, target = _storm_like(IN_FRAMES, generator), _storm_like(OUT_FRAMES, generator)

    agent = build("simvp", in_frames=IN_FRAMES, out_frames=OUT_FRAMES, channels=1, seed=0)
    optimizer = torch.optim.AdamW(agent.parameters(), lr=1e-3)

    def training_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.mse_loss(agent(context / 255), target / 255).backward()
        optimizer.step()

    with torch.no_grad():
        action = agent(context / 255) * 255
    world_model = WorldModel({"in_frames": IN_FRAMES, "out_frames": OUT_FRAMES}, mean=STORMS.data_range / 2,
                             std=STORMS.data_range / 2).eval()
    reward = reward_for_task(STORMS)
    planners = {
        "best-of-16": build_planner(world_model, reward, {"kind": "best_of_k"}),
        "beam 4x4": build_planner(world_model, reward, {"kind": "beam", "beam_width": 4, "expansions": 4}),
        "mosaic of 16": build_planner(world_model, reward, {"kind": "mosaic"}),
    }

    seconds = _fastest({"train": training_step, **{
        name: (lambda p=planner: p.plan(context, action, target, torch.Generator().manual_seed(1)))
        for name, planner in planners.items()}})
    step = seconds.pop("train")
    rows = [{"name": "SimVP training step, batch 8, 10->10 at 64x64", "value": 1e3 * step, "unit": "ms",
             "note": "forward + MSE backward + AdamW"}]
    for name, plan_seconds in seconds.items():
        ratio = plan_seconds / step
        verdict = "meets" if ratio <= TARGET_RATIO else "misses"
        rows.append({"name": f"plan {name}, batch 8 (storms CSI reward)", "value": 1e3 * plan_seconds, "unit": "ms"})
        rows.append({"name": f"plan {name} / training step", "value": ratio, "unit": "x",
                     "note": f"{verdict} the target <= {TARGET_RATIO:g}x"})
    return rows
