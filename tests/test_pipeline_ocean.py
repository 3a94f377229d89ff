"""`sfp pipeline` on a tiny ocean config: heatwave scores for every model, the reward bound to each window."""

import csv
import json

import pytest

from pipeline_helpers import write_config
from sfp.cli.main import main
from sfp.data import OceanDataModule
from sfp.metrics.heatwave_scores import HeatwaveScores
from sfp.models.baselines import persistence

DATA = {"n_sequences": 4, "frames": 365, "size": 8, "windows": {"context": 3, "target": 3, "stride": 30},
        "loading": {"batch_size": 4}, "splits": {"val_fraction": 0.25, "test_fraction": 0.25}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ocean_pipeline")
    path = write_config(root / "tiny_ocean.yaml", root / "run", surrogate_baseline=True, surrogate_weights=[1.0],
                        data={"class_path": "sfp.data.OceanDataModule", "init_args": DATA})
    assert main(["pipeline", "--config", str(path)]) == 0
    return root / "run"


def test_every_model_has_heatwave_scores(run):
    results = json.loads((run / "metrics.json").read_text())
    assert results["dataset"] == "ocean"
    assert set(results["models"]) == {"persistence", "agent", "baseline_steps", "surrogate", "sfp"}
    for metrics in results["models"].values():
        assert {"mse", "mhw_csi", "strong_core_csi", "onset_error", "peak_error"} <= set(metrics)


def test_persistence_scores_match_a_direct_computation(run):
    """Persistence repeats the last context day; its heatwave scores over the test years, computed here."""
    datamodule = OceanDataModule(**DATA)
    datamodule.setup("test")
    scores = HeatwaveScores()
    for batch in datamodule.test_dataloader():
        context, seas, thresh, _ = datamodule.heatwave_windows(batch)
        scores.update(context, persistence(context, 3), batch[3], seas, thresh)
    expected = {key: value.item() for key, value in scores.compute().items()}
    reported = json.loads((run / "metrics.json").read_text())["models"]["persistence"]
    assert reported["strong_core_csi"] == pytest.approx(expected["strong_core_csi"])
    assert reported["mhw_csi"] == pytest.approx(expected["mhw_csi"])


def test_sfp_planned_with_the_heatwave_reward(run):
    with open(next((run / "sfp" / "logs").rglob("metrics.csv"))) as file:
        rows = [row for row in csv.DictReader(file) if row.get("train/acceptance_epoch")]
    assert rows and 0.0 <= float(rows[-1]["train/acceptance_epoch"]) <= 1.0


def test_the_report_shows_anomalies_with_categories_outlined(run):
    assert (run / "heatwaves.png").stat().st_size > 10_000
    assert "![heatwaves](heatwaves.png)" in (run / "report.md").read_text()
