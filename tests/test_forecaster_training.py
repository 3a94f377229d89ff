"""The Forecaster under a Lightning Trainer: schedules, epoch metrics, global statistics, checkpoints."""

import math

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from forecaster_helpers import Scripted, TimeLinear, TinyDataModule, field_batch, series_batch, tiny_trainer
from sfp.errors import UserError
from sfp.forecasting import GridForecaster
from sfp.task import SENSORS, STORMS


class _Record(L.Callback):
    """Records the learning rate and the teacher-forcing ratio at every training batch."""

    def __init__(self):
        self.lrs, self.ratios = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])
        self.ratios.append((trainer.global_step, pl_module.teacher_forcing_ratio()))


def _series_module(n: int = 8, context: int = 4, target: int = 2, n_vars: int = 1) -> TinyDataModule:
    splits = [series_batch(n, context, target, n_vars, seed=s) for s in range(3)]
    return TinyDataModule(*splits, task=SENSORS, batch_size=4)


def test_warm_up_ramps_linearly_and_a_flat_validation_loss_cuts_the_rate_after_patience_epochs():
    # constant forecasts
    model = Scripted(optimization={"initial_lr": 0.1, "warmup_steps": 3, "decay_factor": 0.5, "plateau_patience": 1})
    record = _Record()
    tiny_trainer(max_epochs=5, callbacks=[record]).fit(model, datamodule=_series_module())
    # Two batches per epoch. Warm-up: 0.1 * (s + 1) / 3. Val loss is flat: epoch 0 sets the best, epochs 1 and 2
    # are bad; more than `patience` bad epochs -> cut at the end of epoch 2.
    expected = [0.1 / 3, 0.2 / 3, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]
    assert record.lrs == pytest.approx(expected)


def test_a_plateau_cut_during_warm_up_still_lowers_the_rate():
    model = Scripted(optimization={"initial_lr": 0.1, "warmup_steps": 6, "decay_factor": 0.5, "plateau_patience": 0})
    record = _Record()
    tiny_trainer(max_epochs=3, callbacks=[record]).fit(model, datamodule=_series_module())
    # patience 0: epoch 0 sets the best, epoch 1 is bad -> cut by 1/2 while the warm-up continues.
    expected = [0.1 * (s + 1) / 6 for s in range(4)] + [0.5 * 0.1 * (s + 1) / 6 for s in range(4, 6)]
    assert record.lrs == pytest.approx(expected)


def test_scheduled_sampling_ratio_follows_the_global_step_in_autoregressive_training():
    model = TimeLinear(n_vars=1, context_len=4, target_len=2,
                       rollout={"autoregressive": True, "ar_step": 1, "scheduled_sampling_k": 2.0})
    record = _Record()
    tiny_trainer(max_steps=6, limit_val_batches=0, callbacks=[record]).fit(model, datamodule=_series_module())
    assert [step for step, _ in record.ratios] == list(range(6))
    assert [ratio for _, ratio in record.ratios] == pytest.approx([2 / (2 + math.exp(s / 2)) for s in range(6)])


def test_global_normalization_without_statistics_is_a_user_error():
    model = TimeLinear(n_vars=1, context_len=4, target_len=2, normalization={"global_norm": True})
    loader = DataLoader(TensorDataset(*series_batch(4, 4, 2, 1)), batch_size=2)
    with pytest.raises(UserError, match="normalization_stats"):
        tiny_trainer(max_steps=1).fit(model, train_dataloaders=loader)


@pytest.fixture(scope="module")
def fitted_storms(tmp_path_factory):
    """A GridForecaster fit on storm-like fields with global statistics, tested, and checkpointed."""
    L.seed_everything(0)
    splits = [field_batch(8, 3, 2, seed=s) for s in range(3)]
    for split in splits:  # the data's null value in contexts and targets: must be masked out
        split[1][0, 0, 0, :2, :2] = 255.0
        split[3][1, 1, 0, :3, :3] = 255.0
    stats = {"mean": torch.tensor([40.0]).view(1, 1, 1), "std": torch.tensor([60.0]).view(1, 1, 1)}
    data = TinyDataModule(*splits, task=STORMS, stats=stats, null_value=255.0)
    model = GridForecaster(backbone="forecaster-test-conv", context_len=3, target_len=2, channels=1,
                           normalization={"global_norm": True}, optimization={"initial_lr": 1e-2})
    trainer = tiny_trainer(max_epochs=2)
    trainer.fit(model, datamodule=data)
    fit_metrics = dict(trainer.callback_metrics)
    path = tmp_path_factory.mktemp("ckpt") / "model.ckpt"
    trainer.save_checkpoint(path)  # with optimizer and scheduler states
    trainer.test(model, datamodule=data)
    return model, data, fit_metrics, path


def test_fit_logs_loss_and_metrics_per_epoch(fitted_storms):
    _, _, metrics, _ = fitted_storms
    for key in ("train/loss", "train/mse", "train/mae", "train/mse_t2", "val/loss", "val/mse", "val/mse_t1",
                "val/csi_m", "val/ssim"):
        assert key in metrics, key
    assert "train/csi_m" not in metrics  # event metrics are evaluation-only


def test_test_results_are_in_original_units_over_the_whole_test_set(fitted_storms):
    model, data, _, _ = fitted_storms
    context_x, context_y, target_x, target_y = data.splits["test"]
    assert model.bounds == (0.0, 255.0)  # the storms task's
    with torch.no_grad():
        forecast = model.forecast(context_x, context_y, target_x)
        model.bounds = (None, None)
        raw = model.forecast(context_x, context_y, target_x)
        model.bounds = (0.0, 255.0)
    valid = target_y != 255.0  # the null value is not a target
    assert (~valid).sum() >= 9
    results = model.test_results
    assert results["mse"] == pytest.approx((((forecast - target_y) / 255)[valid] ** 2).mean().item(), rel=1e-4)
    assert results["mse_t2"] == pytest.approx(
        (((forecast - target_y) / 255)[:, 1][valid[:, 1]] ** 2).mean().item(), rel=1e-4)
    assert results["loss"] == pytest.approx((((raw - target_y) / 60)[valid] ** 2).mean().item(), rel=1e-4)
    threshold = 74.0
    events, observed = forecast >= threshold, (target_y >= threshold) & valid
    hits = (events & observed).sum()
    misses, false_alarms = (~events & observed).sum(), (events & ~observed & valid).sum()
    assert results["csi_74"] == pytest.approx((hits / (hits + misses + false_alarms)).item(), rel=1e-5)


def test_statistics_and_null_value_come_from_the_data_module_and_travel_in_checkpoints(fitted_storms):
    model, data, _, path = fitted_storms
    assert model.null_value == 255.0
    torch.testing.assert_close(model.global_norm.mean, torch.tensor([40.0]).view(1, 1, 1))
    loaded = GridForecaster.load_from_checkpoint(path, weights_only=True)
    assert loaded.null_value == 255.0 and loaded.bounds == (0.0, 255.0)
    torch.testing.assert_close(loaded.global_norm.std, torch.tensor([60.0]).view(1, 1, 1))
    context_x, context_y, target_x, _ = data.splits["test"]
    with torch.no_grad():
        torch.testing.assert_close(loaded.forecast(context_x, context_y, target_x),
                                   model.forecast(context_x, context_y, target_x))


def test_predict_returns_forecasts_in_original_units(fitted_storms):
    model, data, _, _ = fitted_storms
    batches = tiny_trainer().predict(model, dataloaders=data.test_dataloader())
    context_x, context_y, target_x, _ = data.splits["test"]
    with torch.no_grad():
        torch.testing.assert_close(torch.cat(batches), model.forecast(context_x, context_y, target_x))


def test_training_resumes_from_a_weights_only_checkpoint(fitted_storms):
    _, data, _, path = fitted_storms
    model = GridForecaster.load_from_checkpoint(path, weights_only=True)
    trainer = tiny_trainer(max_epochs=3)
    trainer.fit(model, datamodule=data, ckpt_path=path, weights_only=True)
    assert trainer.current_epoch == 3 and trainer.global_step == 6  # two batches per epoch, one epoch more


def _sinusoids(n: int, seed: int) -> list[torch.Tensor]:
    """Windows (4 in, 2 out) of two cosines of frequencies 0.3 and 0.7 rad per step, random amplitude and phase:
    each obeys x[t+1] = 2 cos(w) x[t] - x[t-1] exactly."""
    generator = torch.Generator().manual_seed(seed)
    amplitude = 1 + torch.rand(n, 1, 2, generator=generator)
    phase = 2 * math.pi * torch.rand(n, 1, 2, generator=generator)
    steps = torch.arange(6.0).view(1, 6, 1)
    y = 1.0 + amplitude * torch.cos(torch.tensor([0.3, 0.7]) * steps + phase)
    x = steps.expand(n, 6, 1)
    return [x[:, :4], y[:, :4], x[:, 4:], y[:, 4:]]


def test_least_squares_linear_head_is_solved_before_training_held_fixed_and_not_solved_again_on_resume(tmp_path):
    stats = {"mean": torch.tensor([1.0, 1.0]), "std": torch.tensor([2.0, 2.0])}
    data = TinyDataModule(*(_sinusoids(16, seed) for seed in range(3)), task=SENSORS, stats=stats)
    options = dict(rule="zeros", n_vars=2, context_len=4, target_len=2,
                   linear_head={"window": 2, "fit": "least_squares"}, normalization={"global_norm": True},
                   optimization={"initial_lr": 0.1})
    model = Scripted(**options)
    trainer = tiny_trainer(max_steps=2)
    trainer.fit(model, datamodule=data)
    cos = torch.cos(torch.tensor([0.3, 0.7]))
    # one step: -x[t-1] + 2c x[t]; two steps: -2c x[t-1] + (4c^2 - 1) x[t] (window oldest first)
    expected = torch.stack([torch.stack([-torch.ones(2), 2 * cos], -1),
                            torch.stack([-2 * cos, 4 * cos**2 - 1], -1)], 1)
    torch.testing.assert_close(model.linear_head.weight.data, expected, atol=1e-4, rtol=0)
    context_x, context_y, target_x, target_y = data.splits["test"]
    with torch.no_grad():
        torch.testing.assert_close(model.forecast(context_x, context_y, target_x), target_y, atol=1e-4, rtol=0)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    resumed = Scripted(**options)
    resumed.fit_linear_head = None  # calling it again would fail
    tiny_trainer(max_steps=3).fit(resumed, datamodule=data, ckpt_path=path, weights_only=True)
    torch.testing.assert_close(resumed.linear_head.weight.data, model.linear_head.weight.data)


def test_least_squares_head_without_a_data_module_is_a_user_error():
    model = Scripted(linear_head={"window": 2, "fit": "least_squares"})
    loader = DataLoader(TensorDataset(*series_batch(4, 4, 2, 1)), batch_size=2)
    with pytest.raises(UserError, match="data module"):
        tiny_trainer(max_steps=1).fit(model, train_dataloaders=loader)


@pytest.mark.parametrize("options, words", [({"fit": "ridge", "window": 2}, "linear_head.fit"),
                                            ({"fit": "least_squares"}, "linear_head.window")])
def test_bad_linear_fit_options_are_user_errors(options, words):
    with pytest.raises(UserError, match=words):
        Scripted(linear_head=options)
