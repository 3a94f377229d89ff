"""The Forecaster as a module: missing values, value spaces, decomposition, linear head, rollout, teacher forcing."""

import pytest
import torch

from forecaster_helpers import Scripted, TimeLinear, series_batch
from sfp.errors import UserError
from sfp.forecasting import Forecaster, GridForecaster


def _with_holes(y: torch.Tensor, fraction: float, fill: float, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    holes = torch.rand(y.shape, generator=torch.Generator().manual_seed(seed)) < fraction
    return torch.where(holes, torch.full_like(y, fill), y), holes


def test_nan_and_null_values_never_reach_forecasts_losses_or_gradients():
    torch.manual_seed(0)
    normalization = {"global_norm": True, "revin": True, "seasonal_decomp": True, "decomp_kernel_size": 3}
    model = TimeLinear(null_value=-999.0, normalization=normalization, linear_head={"window": 4})
    model.set_normalization_stats(torch.tensor([3.0, 3.0]), torch.tensor([2.0, 2.0]))
    context_x, context_y, target_x, target_y = series_batch()
    context_y, _ = _with_holes(context_y, 0.3, float("nan"))
    context_y, _ = _with_holes(context_y, 0.2, -999.0, seed=2)
    target_y, _ = _with_holes(target_y, 0.3, float("nan"), seed=3)
    assert torch.isfinite(model.forecast(context_x, context_y, target_x)).all()
    loss = model.training_step([context_x, context_y, target_x, target_y], 0)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_missing_context_values_are_filled_with_the_training_mean():
    torch.manual_seed(0)
    model = TimeLinear(normalization={"global_norm": True})
    mean = torch.tensor([5.0, -1.0])
    model.set_normalization_stats(mean, torch.tensor([2.0, 0.5]))
    context_x, context_y, target_x, _ = series_batch()
    with_nan, holes = _with_holes(context_y, 0.3, float("nan"))
    with_mean = torch.where(holes, mean.expand_as(context_y), context_y)
    torch.testing.assert_close(model.forecast(context_x, with_nan, target_x),
                               model.forecast(context_x, with_mean, target_x))


def test_the_loss_uses_only_observed_targets_and_the_batch_mask():
    torch.manual_seed(0)
    model = TimeLinear(null_value=-1.0)
    context_x, context_y, target_x, target_y = series_batch()
    target_y, missing = _with_holes(target_y, 0.25, float("nan"))
    target_y[0, 0, 0] = -1.0
    mask = torch.rand(target_y.shape, generator=torch.Generator().manual_seed(5)) > 0.2
    valid = ~missing & mask
    valid[0, 0, 0] = False
    forecast = model.forecast(context_x, context_y, target_x)
    expected = ((forecast - target_y)[valid] ** 2).mean()
    loss = model.training_step([context_x, context_y, target_x, target_y, mask], 0)
    torch.testing.assert_close(loss, expected)


def test_forecasts_come_back_in_original_units():
    context_x, context_y, target_x, _ = series_batch(n_vars=1)
    context_y, holes = _with_holes(context_y, 0.3, float("nan"))
    mean, std = torch.tensor([7.0]), torch.tensor([3.0])
    global_only = Scripted(context_len=6, target_len=3, normalization={"global_norm": True})  # model says 0 = the mean
    global_only.set_normalization_stats(mean, std)
    torch.testing.assert_close(global_only.forecast(context_x, context_y, target_x), mean.expand(4, 3, 1))
    # RevIN on top: model space 0 is each sample's own context mean (over observed values), in original units.
    both = Scripted(context_len=6, target_len=3,
                    normalization={"global_norm": True, "revin": True, "revin_affine": False})
    both.set_normalization_stats(mean, std)
    sample_means = torch.nanmean(context_y, dim=1, keepdim=True).expand(4, 3, 1)
    torch.testing.assert_close(both.forecast(context_x, context_y, target_x), sample_means)


def _ramp_context(steps: int = 6):
    context_x = torch.arange(steps, dtype=torch.float32).view(1, steps, 1)
    return context_x, context_x.clone(), torch.arange(steps, steps + 3, dtype=torch.float32).view(1, 3, 1)


def test_decomposition_without_a_linear_head_holds_the_last_trend_value():
    model = Scripted(context_len=6, target_len=3, normalization={"seasonal_decomp": True, "decomp_kernel_size": 3})
    context_x, context_y, target_x = _ramp_context()  # y = 0, 1, ..., 5
    forecast = model.forecast(context_x, context_y, target_x)
    torch.testing.assert_close(forecast, torch.full((1, 3, 1), (4 + 5 + 5) / 3))  # replicate-padded average
    seasonal_seen = model.calls[0][1]
    torch.testing.assert_close(seasonal_seen[0, :, 0], torch.tensor([-1 / 3, 0, 0, 0, 0, 1 / 3]))


def test_the_linear_head_forecasts_the_trend_and_adds_to_the_model_output():
    context_x, context_y, target_x = _ramp_context()
    plain = Scripted(context_len=6, target_len=3, linear_head={"window": 3})  # initial head: mean of the last 3 values
    torch.testing.assert_close(plain.forecast(context_x, context_y, target_x), torch.full((1, 3, 1), 4.0))
    # trend = 1/3, 1, 2, 3, 4, 14/3
    on_trend = Scripted(context_len=6, target_len=3, linear_head={"window": 3},
                        normalization={"seasonal_decomp": True, "decomp_kernel_size": 3})
    expected = (3 + 4 + 14 / 3) / 3
    torch.testing.assert_close(on_trend.forecast(context_x, context_y, target_x), torch.full((1, 3, 1), expected))


def test_forecasts_beyond_the_native_horizon_roll_out_in_chunks():
    model = Scripted(rule="last_plus_one", context_len=4, target_len=2)
    context_x = torch.arange(4, dtype=torch.float32).view(1, 4, 1)
    context_y = torch.full((1, 4, 1), 10.0)
    target_x = torch.arange(4, 9, dtype=torch.float32).view(1, 5, 1)
    forecast = model.forecast(context_x, context_y, target_x)
    torch.testing.assert_close(forecast[0, :, 0], torch.tensor([11.0, 11.0, 12.0, 12.0, 13.0]))
    # The last chunk overlaps: it starts one step back so that it keeps the model's native length of 2.
    torch.testing.assert_close(model.calls[2][2][0, :, 0], torch.tensor([7.0, 8.0]))
    torch.testing.assert_close(model.calls[2][1][0, :, 0], torch.tensor([10.0, 11.0, 11.0, 12.0]))
    model.calls.clear()
    short = model.forecast(context_x, context_y, target_x[:, :1])
    torch.testing.assert_close(short, torch.full((1, 1, 1), 11.0))
    torch.testing.assert_close(model.calls[0][2][0, :, 0], torch.tensor([4.0, 5.0]))  # time features extended


def _ar_model(**rollout):
    options = {"autoregressive": True, "ar_step": 1, **rollout}
    return Scripted(rule="last_plus_one", context_len=4, target_len=3, rollout=options)


def _ar_batch(target_values: float = 50.0):
    context_x = torch.arange(4, dtype=torch.float32).view(1, 4, 1).expand(2, -1, -1)
    target_x = torch.arange(4, 7, dtype=torch.float32).view(1, 3, 1).expand(2, -1, -1)
    target_y = target_values + torch.arange(3, dtype=torch.float32).view(1, 3, 1).expand(2, -1, -1)
    return [context_x, torch.zeros(2, 4, 1), target_x, target_y]


def test_autoregressive_training_with_teacher_forcing_feeds_the_truth_back():
    model = _ar_model(scheduled_sampling_k=1e12)  # ratio ~ 1 at step 0
    assert model.teacher_forcing_ratio() == pytest.approx(1.0)
    model.training_step(_ar_batch(), 0)
    assert len(model.calls) == 3
    torch.testing.assert_close(model.calls[1][1][:, -1, 0], torch.full((2,), 50.0))
    torch.testing.assert_close(model.calls[2][1][:, -2:, 0], torch.tensor([[50.0, 51.0]] * 2))


def test_autoregressive_training_without_teacher_forcing_feeds_its_own_predictions_back():
    model = _ar_model()  # no k and no num_training_steps: teacher forcing off
    assert model.teacher_forcing_ratio() == 0.0
    model.training_step(_ar_batch(), 0)
    torch.testing.assert_close(model.calls[2][1][:, -2:, 0], torch.tensor([[1.0, 2.0]] * 2))


@pytest.mark.parametrize("autoregressive", [False, True])
def test_validation_and_test_never_see_target_values(autoregressive):
    rollout = {"autoregressive": True, "ar_step": 1, "scheduled_sampling_k": 1e12} if autoregressive else {}
    seen = []
    for target_values in (50.0, -7.0):
        model = Scripted(rule="last_plus_one", context_len=4, target_len=3, rollout=rollout)
        model.validation_step(_ar_batch(target_values), 0)
        model.test_step(_ar_batch(target_values), 0)
        seen.append(model.calls)
    assert len(seen[0]) == len(seen[1]) > 0
    for first, second in zip(*seen):
        for a, b in zip(first, second):
            torch.testing.assert_close(a, b)


def test_l2_regularization_adds_the_weighted_sum_of_squared_parameters():
    torch.manual_seed(0)
    plain = TimeLinear()
    regularized = TimeLinear(objective={"l2_weight": 0.1})
    regularized.load_state_dict(plain.state_dict())
    batch = series_batch()
    squares = sum(float((p.detach() ** 2).sum()) for p in plain.parameters())
    difference = regularized.training_step(batch, 0) - plain.training_step(batch, 0)
    assert difference.item() == pytest.approx(0.1 * squares, rel=1e-5)


class _Bare(Forecaster):
    def forward_model_pass(self, context_x, context_y, target_x, target_y):
        return target_y


def test_bad_configurations_and_batches_are_user_errors():
    with pytest.raises(UserError, match="must equal d_y_target"):
        _Bare(d_y_context=1, d_y_target=2)
    with pytest.raises(UserError, match="objective.loss must be one of"):
        TimeLinear(objective={"loss": "mape"})
    with pytest.raises(UserError, match="linear_head.window=7 is longer"):
        TimeLinear(linear_head={"window": 7})
    with pytest.raises(UserError, match="decay_factor"):
        TimeLinear(optimization={"decay_factor": 1.5})
    with pytest.raises(UserError, match="odd"):
        TimeLinear(normalization={"seasonal_decomp": True, "decomp_kernel_size": 4})
    model = TimeLinear()
    context_x, context_y, target_x, _ = series_batch()
    with pytest.raises(UserError, match="d_x=1"):
        model.forecast(torch.cat([context_x, context_x], -1), context_y, target_x)
    with pytest.raises(UserError, match="context_len=6"):
        model.forecast(context_x[:, 1:], context_y[:, 1:], target_x)
    with pytest.raises(UserError, match="2 variables"):
        model.forecast(context_x, context_y[..., :1], target_x)
    with pytest.raises(UserError, match="sets d_y_context"):
        GridForecaster(backbone="forecaster-test-conv", d_y_context=3)


def test_grid_forecaster_steps_its_backbone_natively_in_autoregressive_mode():
    model = GridForecaster(backbone="forecaster-test-conv", context_len=3, target_len=4, channels=2,
                           rollout={"autoregressive": True, "ar_step": 2})
    assert model.backbone.out_frames == 2
    context_x, target_x = torch.zeros(2, 3, 1), torch.zeros(2, 5, 1)
    forecast = model.forecast(context_x, torch.randn(2, 3, 2, 5, 7), target_x)
    assert forecast.shape == (2, 5, 2, 5, 7)
    with pytest.raises(UserError, match=r"\(B, T, C, H, W\)"):
        GridForecaster(backbone="forecaster-test-conv", context_len=3, target_len=4, channels=2).forecast(
            context_x, torch.randn(2, 3, 2, 5), target_x)
    assert torch.isfinite(forecast).all()


class _MaskReader(Scripted):
    accepts_context_mask = True

    def forward_model_pass(self, context_x, context_y, target_x, target_y, context_mask=None):
        self.masks = [*getattr(self, "masks", []), context_mask]
        return super().forward_model_pass(context_x, context_y, target_x, target_y)


def test_filled_context_values_are_flagged_to_models_that_ask():
    model = _MaskReader(rule="last_plus_one", context_len=4, target_len=1)
    context_y = torch.tensor([1.0, float("nan"), 3.0, 4.0]).view(1, 4, 1)
    model.forecast(torch.zeros(1, 4, 1), context_y, torch.zeros(1, 2, 1))
    assert model.masks[0][0, :, 0].tolist() == [True, False, True, True]
    assert model.masks[1][0, :, 0].tolist() == [False, True, True, True]  # the produced step counts as observed
    assert model.calls[0][1][0, 1, 0] == 0.0
