"""Two minutes of CPU training of SimVP on storms against persistence, by test MSE (VIL/255) and CSI-M.

The data and the agent are the demo's (``storms_sfp``: 64x64, 10 -> 10 frames, a small SimVP); the
Trainer stops after two minutes of wall time. Both forecasters are scored on the same test windows.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import lightning as L

from sfp.models.baselines import persistence
from sfp.pipeline_config import load_config
from sfp.report.evaluation import evaluate_forecasts
from sfp.run_spec import RunSpec

CONFIG = Path(__file__).resolve().parents[1] / "src" / "sfp" / "configs" / "storms_sfp.yaml"


def run() -> list[dict]:
    spec = RunSpec.of(load_config(["--config", str(CONFIG)]))
    data = spec.data.build()
    L.seed_everything(0, verbose=False)
    agent = spec.agent.build()
    with tempfile.TemporaryDirectory(prefix="bench_storms_") as root:
        trainer = L.Trainer(max_time="00:00:02:00", max_epochs=-1, default_root_dir=root, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            num_sanity_val_steps=0)
        trainer.fit(agent, datamodule=data)
    agent.eval()
    results = evaluate_forecasts(
        {"simvp": lambda batch: agent.forecast(*batch[:3]), "persistence": lambda batch: persistence(batch[1], 10)},
        data.test_dataloader(), data.task, data.target)
    rows = [{"name": f"storms test {metric}, {name}", "value": results[name][metric],
             "unit": "(VIL/255)^2" if metric == "mse" else "",
             "note": f"{trainer.global_step} steps in 2 min" if name == "simvp" else "last context frame held"}
            for name in ("simvp", "persistence") for metric in ("mse", "csi_m")]
    rows.append({"name": "storms test MSE ratio, 2-min SimVP / persistence",
                 "value": results["simvp"]["mse"] / results["persistence"]["mse"], "unit": "x",
                 "note": "below 1: SimVP beats persistence"})
    return rows
