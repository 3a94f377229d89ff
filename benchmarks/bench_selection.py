"""How much of a plan's gain a forecaster could learn: on the storms validation windows, K futures imagined around
the trained agent's forecast, the plan chosen on one half of each window (alternate lead times, or a checkerboard
of 16-px squares) and scored on the other (:mod:`sfp.planning.selection`), for the argmax plan, advantage-weighted
labels and the local (cell-by-cell) choice; rewards CSI-M (the headline) and object CSI. Writes
``results/selection/storms.json``.

Needs a pipeline run with its ``agent`` and ``world_model`` stages (``SFP_SELECTION_RUNS``, default
``runs/storms_sfp``: ``sfp pipeline --config storms_sfp --until agent`` makes them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from sfp.forecasting.checkpoints import load_forecaster
from sfp.pipeline_config import load_config
from sfp.planning.options import Imagination
from sfp.planning.rewards import get_reward, reward_for_task
from sfp.planning.selection import selection_gains
from sfp.planning.world_model_module import load_world_model
from sfp.run_spec import RunSpec

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "storms_sfp"
BETAS = (0.0, 10.0, 100.0)  # advantage weights: 0 is the futures' mean, large tends to the argmax
SPLITS = (("leads", 1), ("checkerboard", 16))
REWARDS = {"csi_m": None, "object_csi": {"name": "object_csi", "thresholds": [133.0, 181.0], "radius": 8.0}}
WINDOWS = 64  # validation windows scored (the first ones, in order)


def _imagined(agent, world_model, batches, imagination) -> list[tuple[torch.Tensor, ...]]:
    """Per batch: the agent's forecast, the futures imagined around it (seeded) and the truth."""
    generator = torch.Generator().manual_seed(0)
    found = []
    for batch in batches:
        forecast = agent.forecast(*batch[:3]).detach()
        found.append((forecast, world_model.imagine(batch[1], forecast, imagination, generator), batch[3]))
    return found


def _gains(imagined, reward, beta: float, split: str, patch: int) -> dict:
    """Mean in-sample and held-out gains per window, and the share kept, of the argmax and weighted labels."""
    totals: dict[str, list[torch.Tensor]] = {}
    for forecast, futures, truth in imagined:
        gains = selection_gains(futures, forecast, truth, reward, beta, split, patch)
        for label, gain in gains._asdict().items():
            totals.setdefault(f"{label}_in_sample", []).append(gain.in_sample)
            totals.setdefault(f"{label}_held_out", []).append(gain.held_out)
    means = {key: float(torch.cat(values).mean()) for key, values in totals.items()}
    for label in ("argmax", "weighted", "local"):
        means[f"{label}_share_kept"] = means[f"{label}_held_out"] / means[f"{label}_in_sample"]
    return means


def run() -> list[dict]:
    runs = Path(os.environ.get("SFP_SELECTION_RUNS", ROOT / "runs" / CONFIG))
    config = load_config(["--config", CONFIG, "--run_dir", str(runs)])
    datamodule = RunSpec.of(config).data.build()
    datamodule.prepare_data()
    datamodule.setup("fit")
    agent = load_forecaster(runs / "agent" / "checkpoints" / "best.ckpt")
    world_model = load_world_model(runs / "world_model" / "checkpoints" / "best.ckpt")
    imagination = Imagination(**config["sfp"]["planner"]["imagination"])
    batches, seen = [], 0
    for batch in datamodule.val_dataloader():
        batches.append(batch)
        seen += len(batch[0])
        if seen >= WINDOWS:
            break
    rows, results = [], {"config": CONFIG, "windows": seen, "imagination": config["sfp"]["planner"]["imagination"],
                         "measurements": []}
    with torch.no_grad():
        imagined = _imagined(agent, world_model, batches, imagination)
        for reward_name, spec in REWARDS.items():
            reward = reward_for_task(datamodule.task) if spec is None else get_reward(spec)
            for split, patch in SPLITS:
                for beta in BETAS:
                    means = _gains(imagined, reward, beta, split, patch)
                    results["measurements"].append({"reward": reward_name, "split": split, "patch": patch,
                                                    "beta": beta, **means})
                    name = f"{reward_name} {split} beta={beta:g}"
                    rows += [{"name": f"{name}: {label} share kept", "value": means[f"{label}_share_kept"],
                              "unit": ""} for label in ("argmax", "weighted", "local")]
    out = ROOT / "results" / "selection" / "storms.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return rows
