"""Every radar event tested: folds, per-window counts that pool to the task's CSI, the pooled summary with its
bootstrap interval, and a whole held-out run on a tiny prepared file with a stand-in agent."""

import json

import numpy as np
import pytest
import torch

from sfp.errors import UserError
from sfp.radar_heldout import folds, run_folds, summarize
from sfp.report.radar import evaluate_radar
from sfp.task import RADAR


def test_each_event_is_tested_once_and_the_next_validates():
    events = ["a/1", "b/2", "c/3", "d/4"]
    assert folds(events) == [("a/1", "b/2"), ("b/2", "c/3"), ("c/3", "d/4"), ("d/4", "a/1")]
    assert folds(events, ["d/4"]) == [("d/4", "a/1")]
    with pytest.raises(UserError, match="unknown radar event 'e/5'"):
        folds(events, ["e/5"])
    with pytest.raises(UserError, match="3 events or more"):
        folds(events[:2])


def test_window_counts_pool_to_the_tasks_csi():
    """The per-window rows, summed, are the counts behind the task metrics' CSI (a second implementation); the
    per-lead rows sum to the same counts."""
    generator = torch.Generator().manual_seed(0)
    truth = torch.rand(6, 2, 1, 8, 8, generator=generator) * 12
    batch = (torch.zeros(6, 2, 1), truth, torch.zeros(6, 2, 1), truth)
    noisy = truth + torch.randn(truth.shape, generator=generator) * 3
    results = evaluate_radar({"noisy": lambda b: noisy}, [batch], RADAR, target_len=2)
    counts = np.asarray(results["models"]["noisy"]["window_counts"])
    assert counts.shape == (6, len(RADAR.thresholds), 3)
    pooled = counts.sum(0)
    for k, threshold in enumerate(RADAR.thresholds):
        hits = ((noisy >= threshold) & (truth >= threshold)).sum().item()
        misses = ((noisy < threshold) & (truth >= threshold)).sum().item()
        false_alarms = ((noisy >= threshold) & (truth < threshold)).sum().item()
        assert pooled[k].tolist() == [hits, misses, false_alarms]
        first_lead = ((noisy[:, 0] >= threshold) & (truth[:, 0] >= threshold)).sum().item()
        assert results["models"]["noisy"]["lead_counts"][0][k][0] == first_lead
    np.testing.assert_array_equal(np.asarray(results["models"]["noisy"]["lead_counts"]).sum(0), pooled)
    csi = pooled[:, 0] / pooled.sum(1)
    assert results["models"]["noisy"]["csi_m"] == pytest.approx(csi.mean())


def _record(event, starts, models):
    """A fold's record: ``models`` maps a name to one (hits, misses, false alarms) per window at every threshold."""
    return {"test_events": [event], "val_events": ["x"], "window_starts": starts,
            "models": {name: {"csi_m": 0.0, "csi": {}, "mse": 0.0,
                              "window_counts": [[list(row)] * len(RADAR.thresholds) for row in rows]}
                       for name, rows in models.items()}}


def test_the_summary_pools_counts_over_events_and_compares_the_agent_with_the_best_reference(tmp_path):
    (tmp_path / "events").mkdir()
    one = _record("a/1", [["a/1", 0], ["a/1", 0], ["a/1", 5]], {
        "agent_full": [(3, 1, 1), (2, 2, 0), (4, 0, 1)], "sprog_full": [(2, 2, 1), (2, 2, 1), (3, 1, 1)],
        "extrapolation_full": [(1, 3, 1), (1, 3, 0), (2, 2, 0)]})
    two = _record("b/2", [["b/2", 0], ["b/2", 3]], {
        "agent_full": [(1, 1, 0), (5, 0, 0)], "sprog_full": [(1, 1, 1), (4, 1, 0)],
        "extrapolation_full": [(0, 2, 0), (3, 2, 1)]})
    for record in (one, two):
        (tmp_path / "events" / f"{record['test_events'][0].replace('/', '-')}.json").write_text(json.dumps(record))
    summary = summarize(tmp_path)["summary"]
    # pooled: agent 15 hits of 15 + 4 + 2 = 21 -> 15/21; sprog 12 of 12 + 7 + 4 = 23; extrapolation 7 of 7 + 12 + 2
    assert summary["csi_m"]["agent_full"] == pytest.approx(15 / 21)
    assert summary["csi_m"]["sprog_full"] == pytest.approx(12 / 23)
    assert summary["best_reference"] == "sprog_full"
    expected = (15 / 21 - 12 / 23) / (12 / 23)
    assert summary["agent_vs_best_reference"] == pytest.approx(expected)
    low, high = summary["agent_vs_best_reference_ci95"]
    assert low <= expected <= high
    assert summary["csi5_vs_best_reference"] == pytest.approx(expected)  # the same counts at every threshold
    assert "agent_full vs sprog_full" in (tmp_path / "heldout.md").read_text()


def test_per_lead_curves_pool_each_lead_times_counts_over_events(tmp_path):
    (tmp_path / "events").mkdir()
    leads = {"a/1": [(3, 1, 0), (1, 1, 2)], "b/2": [(1, 3, 0), (0, 2, 0)]}  # (hits, misses, false alarms) per lead
    for event, rows in leads.items():
        record = _record(event, [[event, 0]], {"agent_full": [(1, 0, 0)], "sprog_full": [(1, 0, 0)]})
        record["lead_minutes"] = [10, 20]
        for model in record["models"].values():
            model["lead_counts"] = [[list(row)] * len(RADAR.thresholds) for row in rows]
        (tmp_path / "events" / f"{event.replace('/', '-')}.json").write_text(json.dumps(record))
    summary = summarize(tmp_path)["summary"]
    # lead 1: 4 hits of 4 + 4 + 0; lead 2: 1 hit of 1 + 3 + 2 (the same at every threshold)
    assert summary["per_lead"]["agent_full"]["csi_m"] == pytest.approx([4 / 8, 1 / 6])
    assert summary["per_lead"]["sprog_full"]["csi5"] == pytest.approx([4 / 8, 1 / 6])
    assert summary["lead_minutes"] == [10, 20] and (tmp_path / "csi_lead.png").is_file()


def test_a_held_out_run_trains_scores_and_resumes_fold_by_fold(tmp_path, monkeypatch):
    """Two folds of a tiny file, the training and scoring stood in for: each fold's record is written once, the
    second call reuses both."""
    import sfp.radar_heldout as heldout
    from test_radar_report import _prepared

    data = _prepared(tmp_path / "w.npz")
    trained, scored = [], []
    monkeypatch.setattr(heldout, "train_agent", lambda config, data, runs, test, val: trained.append((test, val))
                        or f"{runs}/{test}.ckpt")

    def score(data, out, checkpoints, composites, members, events):
        scored.append((checkpoints["agent"], events))
        counts = [[[1.0, 1.0, 0.0]] * len(RADAR.thresholds)]
        return {"test_events": events["test_events"], "window_starts": [[events["test_events"][0], 0]],
                "lead_minutes": [10], "models": {name: {"csi_m": 0.5, "csi": {}, "mse": 1.0, "window_counts": counts,
                                                        "lead_counts": counts}
                                                 for name in ("agent_full", "sprog_full", "extrapolation_full")}}

    chosen = ["fmi/20170509", "mch/20160711"]
    result = run_folds(str(data), str(tmp_path / "out"), "composites", str(tmp_path / "runs"), events=chosen,
                       score=score)
    assert trained == [("fmi/20170509", "mch/20160711"), ("mch/20160711", "mch/20150515")]
    assert scored[0] == (f"{tmp_path / 'runs'}/fmi/20170509.ckpt",
                         {"val_events": ["mch/20160711"], "test_events": ["fmi/20170509"]})
    assert sorted(result["events"]) == chosen and result["summary"]["agent_vs_best_reference"] == 0.0
    assert result["summary"]["per_lead"]["agent_full"]["csi_m"] == [0.5]
    run_folds(str(data), str(tmp_path / "out"), "composites", str(tmp_path / "runs"), events=chosen, score=score)
    assert len(trained) == 2  # both folds reused


def test_a_folds_agent_is_the_configs_trained_without_the_test_event(tmp_path):
    import yaml

    from sfp.forecasting.checkpoints import load_forecaster
    from sfp.radar_heldout import train_agent
    from test_radar_report import _prepared

    data = _prepared(tmp_path / "w.npz")
    config = {"data": {"class_path": "sfp.data.radar.RadarDataModule",
                       "init_args": {"path": "elsewhere.npz", "windows": {"context": 6, "target": 6},
                                     "loading": {"batch_size": 2}}},
              "agent": {"class_path": "sfp.forecasting.GridForecaster", "init_args": {
                  "backbone": "simvp", "context_len": 6, "target_len": 6, "normalization": {"global_norm": True},
                  "backbone_kwargs": {"hidden_spatial": 4, "hidden_temporal": 8, "spatial_layers": 2,
                                      "temporal_blocks": 1}}},
              "agent_trainer": {"max_steps": 2, "enable_progress_bar": False, "accelerator": "cpu"},
              "world_model": {"architecture": {"in_frames": 6, "out_frames": 6, "width": 8}},
              "world_model_trainer": {"max_steps": 1, "enable_progress_bar": False, "accelerator": "cpu"}}
    (tmp_path / "radar.yaml").write_text(yaml.safe_dump(config))
    checkpoint = train_agent(str(tmp_path / "radar.yaml"), str(data), tmp_path / "runs", "mch/20160711",
                             "mch/20150515")
    assert checkpoint.startswith(str(tmp_path / "runs" / "mch-20160711" / "agent"))
    assert load_forecaster(checkpoint).target_len == 6
    manifest = json.loads((tmp_path / "runs" / "mch-20160711" / "manifest.json").read_text())
    data_spec = manifest["stages"]["data"]["spec"]["data"]["init_args"]
    assert (data_spec["path"], data_spec["val_events"], data_spec["test_events"]) == (
        str(data), ["mch/20150515"], ["mch/20160711"])
    assert sorted(manifest["stages"]) == ["agent", "data"]  # the agent needs no world model
