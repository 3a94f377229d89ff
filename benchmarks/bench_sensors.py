"""Sensors forecast quality: the SpatioTemporal Performer against DLinear, the linear reference and persistence.

The models are trained as their configs say (``sensors_performer``, ``sensors_dlinear``,
``sensors_linear``: a vector autoregression solved by least squares) through ``sfp fit`` and their
best checkpoints evaluated with ``sfp test``, in a temporary run directory.
Persistence (the last context value, held) is scored on the same test windows. MSE is in original units
(vorticity squared), over every test window and every target step. Torch uses its default thread count.
:func:`compare` runs the same comparison for another family of configs (``bench_sensors_kolmogorov``).
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


def fit_and_test(config: Path, root: Path) -> tuple[float, float, float]:
    """Test MSE of the best checkpoint of the shipped ``config``, and the seconds its ``sfp fit`` and ``sfp test``
    took."""
    name = config.stem
    args = ["--config", str(config), "--run_dir", str(root / name)]
    start = time.perf_counter()
    if main(["fit", *args]) != 0:
        raise RuntimeError(f"sfp fit failed for {name}")
    fit_seconds = time.perf_counter() - start
    if main(["test", *args, "--ckpt_path", "best"]) != 0:
        raise RuntimeError(f"sfp test failed for {name}")
    test_seconds = time.perf_counter() - start - fit_seconds
    return json.loads((root / name / "metrics.json").read_text())["metrics"]["mse"], fit_seconds, test_seconds


def persistence_mse(config: Path) -> float:
    """Test MSE of holding the last context value, on the data module the config describes."""
    data = SeriesDataModule(**yaml.safe_load(config.read_text())["data"]["init_args"])
    data.prepare_data()
    total, count = 0.0, 0
    for _, context_y, _, target_y in data.test_dataloader():
        total += (context_y[:, -1:] - target_y).square().sum().item()
        count += target_y.numel()
    return total / count


def compare(family: str, models: tuple[str, ...]) -> list[dict]:
    """Rows for the configs ``<family>_<model>`` (the first model is set against the others) and persistence."""
    mse, seconds = {}, {}
    with tempfile.TemporaryDirectory(prefix=f"bench_{family}_") as root:
        for name in models:
            mse[name], *seconds[name] = fit_and_test(CONFIGS / f"{family}_{name}.yaml", Path(root))
    mse["persistence"] = persistence_mse(CONFIGS / f"{family}_{models[0]}.yaml")
    rows = [{"name": f"{family} test MSE, {name}", "value": value, "unit": "value^2",
             "note": (f"sfp fit {seconds[name][0]:.0f} s, sfp test {seconds[name][1]:.0f} s" if name in seconds
                      else "last context value held")}
            for name, value in mse.items()]
    rows += [{"name": f"{family} test MSE ratio, {models[0]} / {other}", "value": mse[models[0]] / mse[other],
              "unit": "x", "note": f"below 1: the {models[0]} is better"} for other in ("persistence", *models[1:])]
    return rows


def run() -> list[dict]:
    return compare("sensors", MODELS)
