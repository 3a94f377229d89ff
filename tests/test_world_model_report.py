"""`sfp fit` / `sfp test` of a world model on tiny storms: the best checkpoint (by val/csi_m of the nearest-code
decode), and world_model_report.json + metrics.json with the diagnostics of an agent's actions, checked against
recomputations by hand."""

import json

import pytest
import torch
import yaml

from sfp.cli.main import main
from sfp.data import FieldDataModule
from sfp.forecasting.checkpoints import load_forecaster
from sfp.planning import WorldModelModule
from sfp.task import SEVIR_THRESHOLDS

DATA = {"dataset": "storms", "n_sequences": 12, "frames": 6, "size": 16, "windows": {"context": 3, "target": 3},
        "loading": {"batch_size": 4}, "splits": {"val_fraction": 0.25, "test_fraction": 0.25}}
TRAINER = {"accelerator": "cpu", "devices": 1, "max_steps": 3, "log_every_n_steps": 1, "enable_model_summary": False}
AGENT = {"class_path": "sfp.forecasting.GridForecaster", "init_args": {
    "backbone": "simvp", "context_len": 3, "target_len": 3, "channels": 1, "normalization": {"global_norm": True},
    "backbone_kwargs": {"hidden_spatial": 4, "hidden_temporal": 8, "spatial_layers": 2, "temporal_blocks": 1}}}
WORLD_MODEL = {"class_path": "sfp.planning.WorldModelModule", "init_args": {"architecture": {
    "in_frames": 3, "out_frames": 3, "channels": 1, "width": 8, "code_dim": 4, "codebook_size": 16,
    "decoder_blocks": 1}}}
KEYS = {"recon_mse", "recon_reward", "recon_csi_m", "agent_reward", "agent_csi_m", "candidate_spread",
        "oracle_win_rate", "oracle_gain", "codebook_usage", "perplexity", "dead_codes"}


def _config(path, model, root):
    path.write_text(yaml.safe_dump({"seed_everything": 0, "trainer": {**TRAINER, "default_root_dir": str(root)},
                                    "model": model, "data": {"class_path": "sfp.data.FieldDataModule",
                                                             "init_args": DATA}}))
    return str(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("world_model_report")
    agent = _config(tmp / "agent.yaml", AGENT, tmp / "agent")
    world_model = _config(tmp / "world_model.yaml", WORLD_MODEL, tmp / "world_model")
    assert main(["fit", "--config", agent]) == 0
    assert main(["fit", "--config", world_model]) == 0
    return tmp, world_model


def _test(runs, *overrides):
    """Run `sfp test` on the world model; the report and metrics.json it writes."""
    tmp, config = runs
    assert main(["test", "--config", config, "--ckpt_path", "best", *overrides]) == 0
    run = tmp / "world_model"
    return json.loads((run / "world_model_report.json").read_text()), json.loads((run / "metrics.json").read_text())


def _held_out(runs):
    """The trained world model, the agent, and the test windows' context_x, context, target_x and target."""
    tmp, _ = runs
    world_model = WorldModelModule.load_from_checkpoint(tmp / "world_model" / "checkpoints" / "best.ckpt",
                                                        weights_only=True).world_model.eval()
    agent = load_forecaster(tmp / "agent" / "checkpoints" / "best.ckpt")
    data = FieldDataModule(**DATA)
    data.setup()
    batches = list(data.test_dataloader())
    return world_model, agent, [torch.cat([b[i] for b in batches]) for i in range(4)]


def _counts(pred, truth, threshold):
    """Hits, misses and false alarms per sample."""
    p, o = (pred >= threshold).flatten(1), (truth >= threshold).flatten(1)
    return (p & o).sum(1).double(), (~p & o).sum(1).double(), (p & ~o).sum(1).double()


def csi_per_sample(pred, truth):
    """The storms reward by hand: mean CSI over the SEVIR thresholds per sample, 1 where a threshold has no event."""
    scores = []
    for threshold in SEVIR_THRESHOLDS:
        hits, misses, false_alarms = _counts(pred, truth, threshold)
        events = hits + misses + false_alarms
        scores.append(torch.where(events > 0, hits / events.clamp_min(1), 1.0))
    return torch.stack(scores).mean(0)


def csi_m_of_set(pred, truth):
    """CSI-M by hand: counts summed over the whole set, thresholds without events left out."""
    scores = []
    for threshold in SEVIR_THRESHOLDS:
        hits, misses, false_alarms = (c.sum() for c in _counts(pred, truth, threshold))
        if hits + misses + false_alarms > 0:
            scores.append(hits / (hits + misses + false_alarms))
    return torch.stack(scores).mean().item()


def test_fit_selects_the_best_checkpoint_by_the_reconstructions_csi_m(runs):
    tmp, _ = runs
    assert (tmp / "world_model" / "checkpoints" / "best.ckpt").is_file()
    checkpoint = torch.load(tmp / "world_model" / "checkpoints" / "best.ckpt", weights_only=True)
    callback = next(state for key, state in checkpoint["callbacks"].items() if "val/csi_m" in key)
    assert 0.0 <= float(callback["best_model_score"]) <= 1.0


def test_report_with_an_agent_matches_recomputation_and_metrics_json(runs):
    report, metrics = _test(runs, "--model.init_args.agent_checkpoint",
                            str(runs[0] / "agent" / "checkpoints" / "best.ckpt"),
                            "--model.init_args.imagination.samples", "4")
    values = report["diagnostics"]
    assert set(values) == KEYS
    assert metrics["metrics"] == pytest.approx(values, nan_ok=True)
    # the default 64 candidates, capped at the codebook
    assert report["imagination"]["samples"] == 4 and report["imagination"]["candidates"] == 16
    for name in ("oracle_win_rate", "codebook_usage", "recon_csi_m", "agent_csi_m"):
        assert 0.0 <= values[name] <= 1.0, name
    assert values["candidate_spread"] > 0 and values["recon_mse"] >= 0
    assert 1.0 <= values["perplexity"] <= 16 * values["codebook_usage"] + 1e-6
    assert values["dead_codes"] == pytest.approx(16 * (1 - values["codebook_usage"]))

    world_model, agent, (context_x, context, target_x, target) = _held_out(runs)
    with torch.no_grad():
        action = agent.forecast(context_x, context, target_x)
        reconstruction = world_model.reconstruct(target, context)
        codes = world_model.nearest(world_model.encode(target, context))
    assert values["agent_csi_m"] == pytest.approx(csi_m_of_set(action, target), rel=1e-6)
    assert values["agent_reward"] == pytest.approx(csi_per_sample(action, target).mean().item(), rel=1e-6)
    assert values["recon_csi_m"] == pytest.approx(csi_m_of_set(reconstruction, target), rel=1e-5)
    assert values["recon_mse"] == pytest.approx(((reconstruction - target) / 255).pow(2).mean().item(), rel=1e-4)
    assert values["codebook_usage"] == pytest.approx(len(codes.unique()) / 16)


def test_at_temperature_zero_every_imagined_future_is_the_actions_nearest_code_decode(runs):
    report, _ = _test(runs, "--model.init_args.imagination.temperature", "0",
                      "--model.init_args.imagination.samples", "3")
    values = report["diagnostics"]
    assert report["agent"] == "persistence"
    world_model, _, (_, context, _, target) = _held_out(runs)
    action = context[:, -1:].expand_as(target)  # persistence
    with torch.no_grad():
        gain = csi_per_sample(world_model.reconstruct(action, context), target) - csi_per_sample(action, target)
    assert values["candidate_spread"] == 0.0
    assert values["agent_csi_m"] == pytest.approx(csi_m_of_set(action, target), rel=1e-6)
    assert values["oracle_gain"] == pytest.approx(gain.mean().item(), abs=1e-6)
    assert values["oracle_win_rate"] == pytest.approx((gain > 0).double().mean().item())
