"""SFPModule: the loss on accepted pseudo-labels, the lambda ramp, the cache, and training under Lightning."""

import csv
import math
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from sfp.data import FieldDataModule
from sfp.errors import UserError
from sfp.forecasting import GridForecaster
from sfp.forecasting.checkpoint_layout import AGENT_SETTINGS_KEY
from sfp.forecasting.checkpoints import load_forecaster
from sfp.metrics.spectrum import log_spectrum_distance, rescale_shells
from sfp.planning.planner import PlanResult
from sfp.planning.pseudo_labels import check_label_reward, make_label, spectrum_label
from sfp.planning.rewards import get_reward
from sfp.planning.self_training import SFPModule
from sfp.planning.world_model_module import WorldModelModule

SIMVP = {"hidden_spatial": 4, "hidden_temporal": 8, "spatial_layers": 2, "temporal_blocks": 1}
TINY_PLANNER = {"kind": "best_of_k", "imagination": {"samples": 4, "candidates": 2}}
WORLD = dict(width=8, encoder_blocks=1, decoder_blocks=1, code_dim=4, codebook_size=16)


def _data() -> FieldDataModule:
    return FieldDataModule(dataset="storms", n_sequences=12, frames=6, size=16, windows={"context": 3, "target": 3},
                           splits={"val_fraction": 0.25, "test_fraction": 0.25}, loading={"batch_size": 4})


def _trainer(root, steps: int, **kwargs) -> L.Trainer:
    return L.Trainer(accelerator="cpu", devices=1, max_steps=steps, default_root_dir=str(root),
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                     use_distributed_sampler=False, **kwargs)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A tiny trained agent and world model, saved as checkpoints the way the pipeline saves them."""
    root = tmp_path_factory.mktemp("sfp")
    L.seed_everything(0, verbose=False)
    agent = GridForecaster(backbone="simvp", backbone_kwargs=SIMVP, context_len=3, target_len=3,
                           normalization={"global_norm": True})
    trainer = _trainer(root / "agent", 2, logger=False)
    trainer.fit(agent, datamodule=_data())
    trainer.save_checkpoint(root / "agent.ckpt")
    world = WorldModelModule({"in_frames": 3, "out_frames": 3, **WORLD})
    trainer = _trainer(root / "world", 2, logger=False)
    trainer.fit(world, datamodule=_data())
    trainer.save_checkpoint(root / "world.ckpt")
    return str(root / "agent.ckpt"), str(root / "world.ckpt")


def _batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    frames = 255 * torch.rand(2, 6, 1, 16, 16, generator=generator) ** 3
    steps = torch.arange(6.0).view(1, 6, 1).expand(2, 6, 1)
    return [steps[:, :3], frames[:, :3], steps[:, 3:], frames[:, 3:]]


class ScriptedPlanner:
    """Returns a fixed plan and counts its calls."""

    def __init__(self, best, reward, action_reward):
        self.result, self.calls = PlanResult(best, reward, action_reward), 0

    def plan(self, context, action, target, generator=None):
        self.calls += 1
        index = torch.arange(context.shape[0])
        return PlanResult(*(None if part is None else part[index] for part in self.result))


def test_loss_adds_lambda_times_mse_to_accepted_pseudo_labels_only(checkpoints):
    agent_ckpt, world_ckpt = checkpoints
    module = SFPModule(agent_ckpt, world_ckpt, pseudo_labels={"weight": 0.5})
    context_x, context_y, target_x, truth = _batch()
    pseudo = truth + 10.0
    # sample 0's plan beats its action (accepted), sample 1's does not
    module.planner = ScriptedPlanner(pseudo, torch.tensor([0.9, 0.2]), torch.tensor([0.5, 0.5]))
    module.scale = torch.tensor(4.0)
    loss = module.training_step([context_x, context_y, target_x, truth], 0)
    with torch.no_grad():
        forecast = module.agent.forecast(context_x, context_y, target_x)
    expected = ((forecast - truth) / 4).pow(2).mean() + 0.5 * ((forecast[0] - pseudo[0]) / 4).pow(2).mean()
    torch.testing.assert_close(loss, expected)
    assert module.planner.calls == 1


def test_log_spectrum_loss_adds_lambda_times_the_accepted_samples_spectral_distance(checkpoints):
    agent_ckpt, world_ckpt = checkpoints
    module = SFPModule(agent_ckpt, world_ckpt, pseudo_labels={"weight": 0.5, "loss": "log_spectrum"})
    context_x, context_y, target_x, truth = _batch()
    pseudo = 3 * truth + 1.0
    module.planner = ScriptedPlanner(pseudo, torch.tensor([0.9, 0.2]), torch.tensor([0.5, 0.5]))
    loss = module.training_step([context_x, context_y, target_x, truth], 0)
    with torch.no_grad():
        forecast = module.agent.forecast(context_x, context_y, target_x)
    expected = (forecast - truth).pow(2).mean() + 0.5 * log_spectrum_distance(forecast[0], pseudo[0]).mean()
    torch.testing.assert_close(loss, expected)


def test_surrogate_loss_adds_lambda_times_the_tasks_stand_in_between_forecast_and_accepted_labels(checkpoints):
    agent_ckpt, world_ckpt = checkpoints
    module = SFPModule(agent_ckpt, world_ckpt, pseudo_labels={"weight": 0.5, "loss": "surrogate"})
    module.label_distance = lambda pred, label, valid: (pred - label).abs().mean()  # what setup takes from the task
    context_x, context_y, target_x, truth = _batch()
    pseudo = truth + 3.0
    module.planner = ScriptedPlanner(pseudo, torch.tensor([0.2, 0.9]), torch.tensor([0.5, 0.5]))  # sample 1 kept
    loss = module.training_step([context_x, context_y, target_x, truth], 0)
    with torch.no_grad():
        forecast = module.agent.forecast(context_x, context_y, target_x)
    expected = (forecast - truth).pow(2).mean() + 0.5 * (forecast[1] - pseudo[1]).abs().mean()
    torch.testing.assert_close(loss, expected)

    module.planner = ScriptedPlanner(pseudo, torch.tensor([0.2, 0.2]), torch.tensor([0.5, 0.5]))  # none kept
    torch.testing.assert_close(module.training_step([context_x, context_y, target_x, truth], 0),
                               (forecast - truth).pow(2).mean())


def test_the_surrogate_pull_is_the_tasks_stand_in_for_its_headline_metric(checkpoints, tmp_path):
    from sfp.metrics.surrogates import soft_csi_loss
    from sfp.task import TASKS

    agent_ckpt, world_ckpt = checkpoints
    module = SFPModule(agent_ckpt, world_ckpt, pseudo_labels={"weight": 1.0, "loss": "surrogate"},
                       planner=TINY_PLANNER)
    _trainer(tmp_path, 1, logger=False).fit(module, datamodule=_data())
    forecast, label = torch.zeros(1, 3, 1, 4, 4), torch.zeros(1, 3, 1, 4, 4)
    label[..., :2, :] = 255.0  # half the pixels are events at every storms threshold; the forecast hits none
    valid = torch.ones_like(label, dtype=torch.bool)
    thresholds = tuple(TASKS["storms"].thresholds)
    distance = module.label_distance
    torch.testing.assert_close(distance(forecast, label, valid), soft_csi_loss(forecast, label, valid, thresholds))
    assert distance(label, label, valid) < 0.2 and distance(forecast, label, valid) > 0.99  # CSI ~1, ~0


def test_log_spectrum_distance_is_the_squared_log_ratio_of_shell_energies_up_to_a_third_of_n():
    field = torch.randn(2, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # three times the field: every shell holds 9 times the energy
    torch.testing.assert_close(log_spectrum_distance(3 * field, field),
                               torch.full((2,), math.log10(9) ** 2, dtype=torch.float64))
    # shell 2 of 5 (16 // 3) with 4 times the energy; shell 7 (beyond 16 / 3) changed too but not read
    gain = torch.ones(9, dtype=torch.float64)
    gain[2], gain[7] = 4.0, 100.0
    torch.testing.assert_close(log_spectrum_distance(rescale_shells(field, gain), field),
                               torch.full((2,), math.log10(4) ** 2 / 5, dtype=torch.float64))


def test_no_plan_is_accepted_when_none_beats_the_action(checkpoints):
    agent_ckpt, world_ckpt = checkpoints
    module = SFPModule(agent_ckpt, world_ckpt, pseudo_labels={"weight": 3.0})
    context_x, context_y, target_x, truth = _batch()
    module.planner = ScriptedPlanner(truth - 50.0, torch.tensor([0.5, 0.1]), torch.tensor([0.5, 0.2]))
    loss = module.training_step([context_x, context_y, target_x, truth], 0)
    with torch.no_grad():
        forecast = module.agent.forecast(context_x, context_y, target_x)
    torch.testing.assert_close(loss, (forecast - truth).pow(2).mean())  # scale 1: no data module here


def test_raise_labels_keep_the_planners_increases_only_where_they_help(checkpoints):
    agent_ckpt, world_ckpt = checkpoints
    module = SFPModule(agent_ckpt, world_ckpt, pseudo_labels={"weight": 0.5, "kind": "raise"})
    context_x, context_y, target_x, _ = _batch()
    with torch.no_grad():
        forecast = module.agent.forecast(context_x, context_y, target_x)
    truth = forecast + 8.0
    change = torch.full_like(forecast, -8.0)  # the plan lowers the bottom right quarter (no raise),
    change[..., :8] = 8.0  # raises the left half to the truth (kept),
    change[..., :8, 8:] = 20.0  # and overshoots the top right quarter (worse than the forecast: dropped)
    # the world model decodes the action 5 higher everywhere: only the plan's change against that counts
    object.__setattr__(module, "world_model", SimpleNamespace(reconstruct=lambda action, context: action + 5.0))
    module.planner = ScriptedPlanner(forecast + 5.0 + change, torch.tensor([0.0, 0.0]), torch.tensor([-1e9, 1e9]))
    module.reward_fn = get_reward("neg_mse")  # local score: minus the squared error; sample 1 is not accepted
    loss = module.training_step([context_x, context_y, target_x, truth], 0)
    # 64 to the truth everywhere, plus sample 0 pulled toward forecast + 8 on half its pixels: 0.5 * 8**2 / 2
    torch.testing.assert_close(loss, torch.tensor(64.0 + 16.0))


def test_object_labels_edit_the_matched_cells_of_the_plan_only():
    action = torch.zeros(1, 1, 1, 12, 12)
    truth = torch.zeros_like(action)
    truth[..., 2, 2] = 10.0
    plan = action.clone()
    plan[..., 2, 3] = plan[..., 3, 3] = 8.0  # a cell next to the truth's: matched
    plan[..., 9, 9] = 9.0  # a cell where the truth has none: a false alarm, left out
    plan[..., 6, 0] = 2.0  # below the threshold: no cell
    reconstruction = torch.full_like(action, 1.0)  # the decoder adds 1 everywhere: only the departure counts
    result = PlanResult(plan, torch.zeros(1), torch.zeros(1), reconstruction)
    label = make_label("objects", action, result, truth, None, None, get_reward(
        {"name": "object_csi", "thresholds": [5], "radius": 2.0}))
    expected = action.clone()
    expected[..., 2, 3] = expected[..., 3, 3] = 7.0
    torch.testing.assert_close(label, expected)


def test_object_labels_need_an_object_reward():
    check_label_reward("objects", get_reward({"name": "object_csi", "thresholds": [5], "radius": 2.0}))
    check_label_reward("raise", get_reward("neg_mse"))
    with pytest.raises(UserError, match="objects edits the objects a reward matches"):
        check_label_reward("objects", get_reward("neg_mse"))


def _wave(kx: int, ky: int, n: int = 16) -> torch.Tensor:
    """cos(2π (kx x + ky y)) on an n×n grid of the unit torus: all its energy in shell round(|k|)."""
    coords = torch.arange(n, dtype=torch.float64) / n
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    return torch.cos(2 * math.pi * (kx * x + ky * y))


def test_spectrum_labels_take_the_plans_shell_energies_where_they_are_closer_to_the_truths():
    action = 2.0 + _wave(3, 0) + _wave(3, 4) + _wave(0, 7) + _wave(6, 0)  # shells 0, 3, 5, 7, 6
    truth = 1.0 + 3 * _wave(0, 3) + 0.25 * _wave(4, 3) + 2 * _wave(0, 7)  # and nothing in shell 6
    # the plan: shell 3 x4 energy (closer), shell 5 /4 (closer), shell 7 /4 (further), shell 6 x4 (further)
    plan = 5.0 + 2 * _wave(3, 0) + 0.5 * _wave(4, 3) + 0.5 * _wave(7, 0) + 2 * _wave(0, 6)
    label = spectrum_label(*(f.reshape(1, 1, 1, 16, 16) for f in (action, plan, truth)))
    # the action's mean and phases; shell 3 doubled, shell 5 halved; shells 6 and 7 unchanged
    expected = 2.0 + 2 * _wave(3, 0) + 0.5 * _wave(3, 4) + _wave(0, 7) + _wave(6, 0)
    torch.testing.assert_close(label.reshape(16, 16), expected)


def test_lambda_ramps_linearly_then_holds(checkpoints):
    module = SFPModule(checkpoints[0], checkpoints[1], pseudo_labels={"weight": 2.0, "warmup_steps": 4})
    assert [module.pseudo_lambda(step) for step in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert SFPModule(checkpoints[0], checkpoints[1], pseudo_labels={"weight": 2.0}).pseudo_lambda(0) == 2.0


def test_cached_pseudo_labels_are_planned_once_per_refresh(checkpoints):
    module = SFPModule(checkpoints[0], checkpoints[1], pseudo_labels={"refresh_every": 2})
    context_x, context_y, target_x, truth = _batch()
    module.planner = ScriptedPlanner(truth, torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.0]))
    for epoch, expected_calls in [(0, 1), (0, 1), (1, 1), (2, 2), (3, 2)]:
        module._trainer = SimpleNamespace(current_epoch=epoch)
        best, accepted, _ = module._pseudo_labels(context_y, truth, truth)
        assert module.planner.calls == expected_calls and accepted.all()
        torch.testing.assert_close(best, truth)
    module._trainer = SimpleNamespace(current_epoch=3)
    module._pseudo_labels(_batch(seed=1)[1], truth, truth)  # a new sample is planned at once
    assert module.planner.calls == 3


@pytest.mark.parametrize("kwargs, words", [
    ({"planner": {"kind": "greedy"}}, "planner.kind"),
    ({"pseudo_labels": {"weight": -1.0}}, ">= 0"),
    ({"pseudo_labels": {"kind": "truth"}}, "pseudo_labels.kind"),
    ({"pseudo_labels": {"loss": "l1"}}, "pseudo_labels.loss"),
    ({"pseudo_labels": {"wieght": 1.0}}, "unknown option 'wieght'"),
    ({"world_model_checkpoint": None}, "world_model_checkpoint"),
])
def test_bad_options_are_user_errors(checkpoints, kwargs, words):
    options = {"world_model_checkpoint": checkpoints[1], **kwargs}
    with pytest.raises(UserError, match=words):
        SFPModule(checkpoints[0], **options)


@pytest.mark.parametrize("pseudo_weight", [0.0, 1.0])
def test_trains_under_lightning_and_reloads_without_the_world_model(checkpoints, tmp_path, pseudo_weight):
    agent_ckpt, world_ckpt = checkpoints
    module = SFPModule(agent_ckpt, world_ckpt if pseudo_weight else None, pseudo_labels={"weight": pseudo_weight},
                       planner=TINY_PLANNER)
    before = {k: v.clone() for k, v in module.agent.state_dict().items()}
    trainer = _trainer(tmp_path, 3, logger=L.pytorch.loggers.CSVLogger(tmp_path, name="logs"), log_every_n_steps=1)
    trainer.fit(module, datamodule=_data())
    assert any(not torch.equal(before[k], v) for k, v in module.agent.state_dict().items())
    rows = list(csv.DictReader(open(next(tmp_path.rglob("metrics.csv")))))
    acceptance = [float(r["train/acceptance_step"]) for r in rows if r.get("train/acceptance_step")]
    assert len(acceptance) == (3 if pseudo_weight else 0) and all(0.0 <= a <= 1.0 for a in acceptance)
    assert any(r.get("val/csi_m") for r in rows)
    trainer.save_checkpoint(tmp_path / "sfp.ckpt")
    state = torch.load(tmp_path / "sfp.ckpt", weights_only=True)["state_dict"]
    assert state and not any(k.startswith("world_model.") for k in state)
    reloaded = SFPModule.load_from_checkpoint(tmp_path / "sfp.ckpt", weights_only=True)
    batch = _batch()
    with torch.no_grad():
        torch.testing.assert_close(reloaded.agent.forecast(*batch[:3]), module.agent.forecast(*batch[:3]))


def test_a_planning_seed_other_than_the_data_modules_shuffling_seed_trains_under_a_logger(checkpoints, tmp_path):
    agent_ckpt, _ = checkpoints
    data = _data()
    assert data.seed == 0  # the data module's own seed (its shuffling order), not the planner's
    module = SFPModule(agent_ckpt, None, pseudo_labels={"weight": 0.0}, seed=1)  # a table cell's second seed
    trainer = _trainer(tmp_path, 1, logger=L.pytorch.loggers.CSVLogger(tmp_path, name="logs"))
    trainer.fit(module, datamodule=data)
    assert trainer.global_step == 1 and module.hparams["seed"] == 1  # kept in checkpoints, not merged into logs


def test_load_forecaster_rebuilds_the_trained_agent_from_the_sfp_checkpoint_alone(checkpoints, tmp_path):
    agent_ckpt, world_ckpt = checkpoints
    module = SFPModule(agent_ckpt, world_ckpt, pseudo_labels={"weight": 1.0}, planner=TINY_PLANNER)
    trainer = _trainer(tmp_path, 2, logger=False)
    trainer.fit(module, datamodule=_data())
    trainer.save_checkpoint(tmp_path / "sfp.ckpt")
    checkpoint = torch.load(tmp_path / "sfp.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["agent_checkpoint"] = str(tmp_path / "moved" / "agent.ckpt")  # gone
    torch.save(checkpoint, tmp_path / "moved_sfp.ckpt")
    batch = _batch()
    with torch.no_grad():
        expected = module.agent.forecast(*batch[:3]).clamp(0.0, 255.0)  # the SFP module's agent: raw outputs
        agent = load_forecaster(tmp_path / "moved_sfp.ckpt")
        assert isinstance(agent, GridForecaster) and not agent.training
        assert agent.bounds == module.bounds == (0.0, 255.0)  # the storms task's, kept in the checkpoint
        torch.testing.assert_close(agent.forecast(*batch[:3]), expected)
    assert checkpoint[AGENT_SETTINGS_KEY] == dict(module.agent.hparams)
