"""The Forecaster's parts on their own: normalization, decomposition, linear head, losses, scheduled sampling."""

import math

import pytest
import torch
import torch.nn.functional as F

from sfp.errors import UserError
from sfp.forecasting.decomposition import check_kernel_size, decompose, moving_average
from sfp.forecasting.linear_head import LinearHead
from sfp.forecasting.losses import l2_penalty, masked_loss, valid_mask
from sfp.forecasting.normalization import GlobalNorm, RevIN
from sfp.forecasting.sampling import k_for_midpoint, mix_with_truth, teacher_forcing_ratio


# ---------------------------------------------------------------- RevIN
def test_revin_statistics_are_per_sample_per_variable_over_time_and_detached():
    y = torch.randn(3, 12, 4, requires_grad=True)
    stats = RevIN(4).statistics(y, torch.ones_like(y, dtype=torch.bool))
    torch.testing.assert_close(stats.mean, y.mean(1, keepdim=True).detach())
    torch.testing.assert_close(stats.std, torch.sqrt(y.var(1, unbiased=False, keepdim=True) + 1e-5).detach())
    assert not stats.mean.requires_grad and not stats.std.requires_grad


def test_revin_statistics_of_fields_pool_time_and_space_per_channel_and_skip_missing():
    y = torch.randn(2, 5, 3, 4, 4)
    valid = torch.rand_like(y) > 0.3
    stats = RevIN(3).statistics(torch.where(valid, y, torch.full_like(y, float("nan"))), valid)
    for b in range(2):
        for c in range(3):
            observed = y[b, :, c][valid[b, :, c]]
            assert stats.mean[b, 0, c, 0, 0] == pytest.approx(observed.mean().item(), abs=1e-5)
            expected_std = math.sqrt(observed.var(unbiased=False).item() + 1e-5)
            assert stats.std[b, 0, c, 0, 0] == pytest.approx(expected_std, abs=1e-5)


@pytest.mark.parametrize("affine", [False, True])
def test_revin_round_trip_restores_the_input(affine):
    revin = RevIN(3, affine=affine)
    if affine:
        with torch.no_grad():
            revin.weight.copy_(torch.tensor([0.5, 2.0, -1.5]))
            revin.bias.copy_(torch.tensor([0.1, -0.3, 2.0]))
    y = 5 + 3 * torch.randn(2, 9, 3)
    stats = revin.statistics(y, torch.ones_like(y, dtype=torch.bool))
    normed = revin.normalize(y, stats)
    torch.testing.assert_close(revin.denormalize(normed, stats), y, atol=1e-4, rtol=1e-5)
    if not affine:  # standardized: zero mean, unit variance per sample and variable
        torch.testing.assert_close(normed.mean(1), torch.zeros(2, 3), atol=1e-5, rtol=0)
        torch.testing.assert_close(normed.var(1, unbiased=False), torch.ones(2, 3), atol=1e-3, rtol=0)


# ---------------------------------------------------------------- global normalization
def test_global_norm_standardizes_per_channel_and_treats_zero_std_as_one():
    norm = GlobalNorm()
    norm.set_stats(torch.tensor([1.0, 2.0]), torch.tensor([2.0, 0.0]))
    y = torch.tensor([[[3.0, 5.0]]])
    torch.testing.assert_close(norm.normalize(y), torch.tensor([[[1.0, 3.0]]]))
    torch.testing.assert_close(norm.denormalize(norm.normalize(y)), y)


def test_global_norm_statistics_load_from_a_state_dict_into_an_empty_module():
    source = GlobalNorm()
    source.set_stats(torch.full((3, 1, 1), 4.0), torch.full((3, 1, 1), 2.0))
    target = GlobalNorm()
    assert not target.is_set
    target.load_state_dict(source.state_dict())
    torch.testing.assert_close(target.normalize(torch.full((1, 1, 3, 2, 2), 8.0)), torch.full((1, 1, 3, 2, 2), 2.0))


def test_global_norm_errors_name_the_problem():
    with pytest.raises(UserError, match="no statistics"):
        GlobalNorm().normalize(torch.zeros(1, 2, 3))
    norm = GlobalNorm()
    norm.set_stats(torch.zeros(4), torch.ones(4))
    with pytest.raises(UserError, match="do not broadcast"):
        norm.normalize(torch.zeros(1, 2, 3))
    with pytest.raises(UserError, match="NaN"):
        GlobalNorm().set_stats(torch.tensor([float("nan")]), torch.ones(1))


# ---------------------------------------------------------------- decomposition
def test_decomposition_recovers_a_linear_trend_and_a_sinusoid_in_the_interior():
    kernel, steps = 7, 60
    t = torch.arange(steps, dtype=torch.float64)
    trend = 2.0 + 0.3 * t
    season = torch.sin(2 * math.pi * t / kernel + 0.4)  # its period equals the kernel: averages to 0
    y = (trend + season).view(1, steps, 1).repeat(2, 1, 3)
    seasonal, estimated = decompose(y, kernel)
    interior = slice(kernel // 2, steps - kernel // 2)
    torch.testing.assert_close(estimated[:, interior], trend[interior].view(1, -1, 1).expand(2, -1, 3))
    torch.testing.assert_close(seasonal[:, interior], season[interior].view(1, -1, 1).expand(2, -1, 3))
    torch.testing.assert_close(seasonal + estimated, y)


def test_moving_average_repeats_the_end_values_and_handles_fields():
    y = torch.tensor([1.0, 2.0, 4.0, 8.0]).view(1, 4, 1, 1, 1).expand(2, 4, 1, 2, 3)
    average = moving_average(y, 3)
    expected = torch.tensor([(1 + 1 + 2) / 3, (1 + 2 + 4) / 3, (2 + 4 + 8) / 3, (4 + 8 + 8) / 3])
    torch.testing.assert_close(average, expected.view(1, 4, 1, 1, 1).expand(2, 4, 1, 2, 3))
    with pytest.raises(UserError, match="odd"):
        check_kernel_size(4)


# ---------------------------------------------------------------- linear head
def test_linear_head_is_a_weighted_sum_of_the_last_window_steps_per_variable():
    head = LinearHead(window=2, horizon=2, num_variables=2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[[1.0, 2.0], [0.0, -1.0]], [[3.0, 0.0], [1.0, 1.0]]]))
        head.bias.copy_(torch.tensor([[0.5, 0.0], [0.0, -2.0]]))
    context = torch.tensor([[[9.0, 9.0], [1.0, 10.0], [2.0, 20.0]]])  # (B=1, T=3, V=2); the window is 2 steps
    out = head(context)
    expected = torch.tensor([[[1 * 1 + 2 * 2 + 0.5, 3 * 10 + 0 * 20], [-2.0, 10 + 20 - 2.0]]])
    torch.testing.assert_close(out, expected)


def test_shared_linear_head_uses_one_map_for_every_channel_and_pixel():
    head = LinearHead(window=3, horizon=1, num_variables=2, shared_weights=True)
    assert head.weight.shape == (1, 1, 3)
    context = torch.randn(2, 5, 2, 3, 3)
    torch.testing.assert_close(head(context), context[:, -3:].mean(1, keepdim=True))  # initial map: the mean
    with pytest.raises(UserError, match="longer than the context"):
        LinearHead(window=6, horizon=1, num_variables=2)(context)


@pytest.mark.parametrize("shared, cross", [(True, False), (False, False), (False, True)])
def test_least_squares_recovers_the_linear_maps_that_generated_the_data_from_streamed_batches(shared, cross):
    generator = torch.Generator().manual_seed(0)
    maps, inputs = (1 if shared else 2), (6 if cross else 3)  # window 3, of both variables when cross
    weight = torch.randn(maps, 2, inputs, generator=generator, dtype=torch.float64)  # (maps, horizon, inputs)
    bias = torch.randn(maps, 2, generator=generator, dtype=torch.float64)
    head = LinearHead(window=3, horizon=2, num_variables=2, shared_weights=shared, cross_variable=cross).double()
    gram = moment = 0
    for _ in range(3):  # three batches of fields (B, T, V, H, W)
        context = torch.randn(4, 5, 2, 2, 3, generator=generator, dtype=torch.float64)
        window = context[:, -3:]
        if cross:  # variable v's step h: sum over variables u and steps w of weight[v, h, 3 u + w] x[w, u]
            target = torch.einsum("vhuw,bwuxy->bhvxy", weight.view(2, 2, 2, 3), window)
        else:
            target = torch.einsum("vhw,bwvxy->bhvxy", weight.expand(2, -1, -1), window)
        target = target + bias.expand(2, -1).T.reshape(1, 2, 2, 1, 1)
        valid = torch.rand(target.shape, generator=generator) > 0.1
        target = torch.where(valid, target, torch.full_like(target, float("nan")))  # invalid rows are left out
        g, m = head.normal_equations(context, target, valid)
        gram, moment = gram + g, moment + m
    head.solve(gram, moment)
    torch.testing.assert_close(head.weight.data, weight)
    torch.testing.assert_close(head.bias.data, bias)
    context = torch.randn(2, 5, 2, generator=generator, dtype=torch.float64)  # a series: forward uses the maps
    expected = torch.einsum("vhuw,bwu->bhv", weight.view(2, 2, 2, 3), context[:, -3:]) if cross else \
        torch.einsum("vhw,bwv->bhv", weight.expand(2, -1, -1), context[:, -3:])
    torch.testing.assert_close(head(context), expected + bias.expand(2, -1).T)


def test_cross_variable_linear_head_starts_as_each_variables_own_average():
    head = LinearHead(window=2, horizon=1, num_variables=3, cross_variable=True)
    context = torch.randn(4, 5, 3)
    torch.testing.assert_close(head(context), context[:, -2:].mean(1, keepdim=True))
    with pytest.raises(UserError, match="cross_variable"):
        LinearHead(window=2, horizon=1, num_variables=3, shared_weights=True, cross_variable=True)


# ---------------------------------------------------------------- losses
@pytest.mark.parametrize("kind", ["mse", "mae", "huber"])
def test_masked_loss_equals_the_loss_on_the_unmasked_subset(kind):
    torch.manual_seed(0)
    pred = (3 * torch.randn(4, 6, 5)).requires_grad_()
    target = 3 * torch.randn(4, 6, 5)
    valid = torch.rand(4, 6, 5) > 0.4
    target_with_holes = torch.where(valid, target, torch.full_like(target, float("nan")))
    subset = {"mse": F.mse_loss, "mae": F.l1_loss, "huber": F.huber_loss}[kind](pred[valid], target[valid])
    loss = masked_loss(pred, target_with_holes, valid, kind)
    torch.testing.assert_close(loss, subset)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert (pred.grad[~valid] == 0).all()


def test_valid_mask_flags_nan_and_the_null_value():
    y = torch.tensor([1.0, float("nan"), -999.0, 0.0])
    assert valid_mask(y).tolist() == [True, False, True, True]
    assert valid_mask(y, null_value=-999.0).tolist() == [True, False, False, True]
    loss = masked_loss(torch.zeros(4), y, valid_mask(y, -999.0))
    assert loss.item() == pytest.approx((1.0 + 0.0) / 2)


def test_l2_penalty_is_the_sum_of_squared_trainable_parameters():
    layer = torch.nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0]]))
        layer.bias.fill_(3.0)
    assert l2_penalty(layer.parameters()).item() == pytest.approx(1 + 4 + 9)


# ---------------------------------------------------------------- scheduled sampling
def test_teacher_forcing_ratio_follows_the_inverse_sigmoid():
    assert teacher_forcing_ratio(0, 10) == pytest.approx(10 / 11)
    assert teacher_forcing_ratio(100, 10) == pytest.approx(10 / (10 + math.e**10))
    assert teacher_forcing_ratio(10 * math.log(10), 10) == pytest.approx(0.5)  # exp(step/k) = k
    assert teacher_forcing_ratio(10**9, 5) == 0.0
    with pytest.raises(UserError):
        teacher_forcing_ratio(0, 0.5)


def test_default_k_puts_the_ratio_at_one_half_at_mid_training():
    k = k_for_midpoint(2000)
    assert teacher_forcing_ratio(1000, k) == pytest.approx(0.5, abs=1e-9)
    assert teacher_forcing_ratio(0, k) > 0.9 and teacher_forcing_ratio(2000, k) < 0.1


def test_mix_with_truth_picks_whole_samples_and_never_missing_truth():
    prediction, truth = torch.zeros(4000, 2, 3), torch.ones(4000, 2, 3)
    valid = torch.ones_like(truth, dtype=torch.bool)
    valid[:, 0, 0] = False
    assert torch.equal(mix_with_truth(prediction, truth, valid, 0.0), prediction)
    always = mix_with_truth(prediction, truth, valid, 1.0)
    assert torch.equal(always, valid.float())
    half = mix_with_truth(prediction, truth, valid, 0.5, generator=torch.Generator().manual_seed(0))
    per_sample = half[:, 1]  # whole samples switch together
    assert torch.equal(per_sample.amin((1,)), per_sample.amax((1,)))
    assert 0.45 < per_sample[:, 0].mean().item() < 0.55
