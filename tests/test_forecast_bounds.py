"""Forecasts are kept inside the task's physical range; the training loss sees the raw outputs."""

import torch

from forecaster_helpers import TINY_BACKBONE, Scripted, TinyDataModule, tiny_trainer
from sfp.forecasting import GridForecaster
from sfp.report.evaluation import checkpoint_forecasters
from sfp.task import TaskSpec, within

UNIT = TaskSpec("unit-range", bounds=(0.0, 1.0))


def test_within_clamps_only_the_bounds_given():
    values = torch.tensor([-1.0, 0.5, 2.0])
    assert within(values, (0.0, 1.0)).tolist() == [0.0, 0.5, 1.0]
    assert within(values, (0.0, None)).tolist() == [0.0, 0.5, 2.0]
    assert within(values, (None, None)) is values


def test_clamping_never_moves_a_forecast_away_from_a_truth_inside_the_bounds():
    generator = torch.Generator().manual_seed(0)
    forecast = 3 * torch.randn(10_000, generator=generator)
    truth = torch.rand(10_000, generator=generator)
    assert ((within(forecast, (0.0, 1.0)) - truth).abs() <= (forecast - truth).abs()).all()


def _constant_batches(last: float, truth: float) -> list[torch.Tensor]:
    steps = torch.arange(6, dtype=torch.float32).view(1, 6, 1).expand(4, 6, 1)
    y = torch.full((4, 6, 1), last)
    y[:, 4:] = truth
    return [steps[:, :4], y[:, :4], steps[:, 4:], y[:, 4:]]


def test_a_forecaster_adopts_its_tasks_bounds_for_forecasts_and_metrics_but_not_for_its_loss():
    batches = _constant_batches(last=0.8, truth=0.9)  # the rule forecasts 0.8 + 1 = 1.8, above the bound 1
    model = Scripted(rule="last_plus_one")
    data = TinyDataModule(batches, batches, batches, UNIT)
    results = tiny_trainer().test(model, datamodule=data, verbose=False)[0]
    assert model.bounds == (0.0, 1.0)
    assert abs(results["test/mse"] - (1.0 - 0.9) ** 2) < 1e-6  # scored at the bound
    assert abs(results["test/loss"] - (1.8 - 0.9) ** 2) < 1e-5  # the loss on the raw output
    assert torch.equal(model.forecast(*batches[:3]), torch.ones(4, 2, 1))


def test_evaluated_checkpoints_are_kept_inside_the_bounds_they_are_given(tmp_path):
    model = GridForecaster(backbone=TINY_BACKBONE, context_len=3, target_len=2)
    torch.nn.init.constant_(model.backbone.conv.bias, 100.0)  # every raw forecast far above 1
    frames = torch.rand(4, 5, 1, 8, 8)
    steps = torch.zeros(4, 5, 1)
    batch = (steps[:, :3], frames[:, :3], steps[:, 3:], frames[:, 3:])
    trainer = tiny_trainer(max_steps=0)
    trainer.validate(model, datamodule=TinyDataModule(list(batch), list(batch), list(batch), UNIT), verbose=False)
    trainer.save_checkpoint(tmp_path / "agent.ckpt")
    bounded = checkpoint_forecasters({"agent": str(tmp_path / "agent.ckpt")}, (0.0, 1.0))["agent"](batch)
    free = checkpoint_forecasters({"agent": str(tmp_path / "agent.ckpt")}, (None, None))["agent"](batch)
    assert torch.equal(bounded, torch.ones_like(bounded)) and (free > 50).all()
