"""The shipped sensors_* and sensors_kolmogorov_* configs: `sfp fit` (2 steps) and `sfp test` run in-process on a
short series of their dataset, tiny models."""

import json
import math
from pathlib import Path

import pytest
import torch

from sfp.cli.main import main

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "sfp" / "configs"
# a short series from a coarse, barely spun-up run: generated in under a second, still long enough for 80 + 4
SHORT_SERIES = ["--data.init_args.length", "1100", "--data.init_args.dataset_kwargs", '{"size": 16, "spin_up": 1.0}']
TINY_PERFORMER = ["--model.init_args.model.d_model", "8", "--model.init_args.model.d_ff", "16",
                  "--model.init_args.model.n_features", "4"]
TINY_MODEL = {
    "sensors_performer": TINY_PERFORMER,
    "sensors_dlinear": [],
    "sensors_linear": [],
    "sensors_kolmogorov_performer": TINY_PERFORMER,
    "sensors_kolmogorov_lstm": ["--model.init_args.hidden_size", "8"],
    "sensors_kolmogorov_dlinear": [],
    "sensors_kolmogorov_linear": [],
}


@pytest.mark.parametrize("name", sorted(TINY_MODEL))
def test_fit_two_steps_then_test_the_best_checkpoint(name, tmp_path):
    run = tmp_path / "run"
    common = ["--config", str(CONFIGS / f"{name}.yaml"), "--trainer.default_root_dir", str(run), *SHORT_SERIES,
              *TINY_MODEL[name]]
    assert main(["fit", *common, "--trainer.max_steps", "2", "--trainer.limit_train_batches", "2",
                 "--trainer.limit_val_batches", "1"]) == 0
    assert torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)["global_step"] == 2

    assert main(["test", *common, "--ckpt_path", "best", "--trainer.limit_test_batches", "1"]) == 0
    report = json.loads((run / "metrics.json").read_text())
    assert report["dataset"] == name.rsplit("_", 1)[0]
    assert math.isfinite(report["metrics"]["mse"]) and report["metrics"]["mse"] > 0
