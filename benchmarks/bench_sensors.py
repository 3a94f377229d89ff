"""Sensors forecast quality: the SpatioTemporal Performer against DLinear, the linear reference and persistence.

The models are trained as their configs say (``sensors_performer``, ``sensors_dlinear``,
``sensors_linear``: a vector autoregression solved by least squares) through ``sfp fit`` and their
best checkpoints evaluated with ``sfp test``, in a temporary run directory.
Persistence (the last context value, held) is scored on the same test windows. MSE is in original units
(vorticity squared), over every test window and all 4 target steps. Torch uses its default thread count.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import yaml

from sfp.cli.main import main
from sfp.data import SeriesDataModule

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "sfp" / "configs"
MODELS = ("performer", "dlinear", "linear")


def _config(name: str) -> Path:
    return CONFIGS / f"sensors_{name}.yaml"


def fit_and_test(name: str, root: Path) -> tuple[float, float]:
    """Test MSE of the best checkpoint of the shipped config ``sensors_<name>``, and the seconds its ``sfp fit``
    took."""
    args = ["--config", str(_config(name)), "--trainer.default_root_dir", str(root / name)]
    start = time.perf_counter()
    if main(["fit", *args]) != 0:
        raise RuntimeError(f"sfp fit failed for {name}")
    seconds = time.perf_counter() - start
    if main(["test", *args, "--ckpt_path", "best"]) != 0:
        raise RuntimeError(f"sfp test failed for {name}")
    return json.loads((root / name / "metrics.json").read_text())["metrics"]["mse"], seconds


def persistence_mse(config: Path) -> float:
    """Test MSE of holding the last context value, on the data module the config describes."""
    data = SeriesDataModule(**yaml.safe_load(config.read_text())["data"]["init_args"])
    data.prepare_data()
    total, count = 0.0, 0
    for _, context_y, _, target_y in data.test_dataloader():
        total += (context_y[:, -1:] - target_y).square().sum().item()
        count += target_y.numel()
    return total / count


def run() -> list[dict]:
    mse, seconds = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench_sensors_") as root:
        for name in MODELS:
            mse[name], seconds[name] = fit_and_test(name, Path(root))
    mse["persistence"] = persistence_mse(_config("performer"))
    rows = [{"name": f"sensors test MSE, {name}", "value": value, "unit": "value^2",
             "note": f"sfp fit {seconds[name]:.0f} s" if name in seconds else "last context value held"}
            for name, value in mse.items()]
    rows += [{"name": f"sensors test MSE ratio, performer / {other}", "value": mse["performer"] / mse[other],
              "unit": "x", "note": "below 1: the Performer is better"} for other in ("persistence", *MODELS[1:])]
    return rows
