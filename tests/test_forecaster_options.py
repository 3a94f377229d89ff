"""The Forecaster's option groups: each validates its own fields; MOVED names an existing field for every old name;
old flat settings (checkpoints of earlier versions, the seed's constructor) land in their groups."""

import dataclasses
import inspect

import pytest
import torch

from sfp.errors import UserError
from sfp.forecasting import DLinearForecaster, Forecaster, GridForecaster, LinearForecaster
from sfp.forecasting.moved import group_flat
from sfp.forecasting.options import MOVED, LinearHeadOptions, Normalization, Objective, Optimization, Rollout
from sfp.forecasting.performer import SpatioTemporalPerformer_Forecaster, SpatioTemporalPerformerForecaster
from sfp.models.performer import PerformerConfig

GROUPS = {"objective": Objective, "normalization": Normalization, "linear_head": LinearHeadOptions,
          "rollout": Rollout, "optimization": Optimization}
FORECASTERS = (Forecaster, GridForecaster, DLinearForecaster, LinearForecaster, SpatioTemporalPerformerForecaster)


def test_every_moved_name_points_at_a_field_and_is_no_longer_a_constructor_argument():
    for old, new in MOVED.items():
        group, field = new.split(".")
        assert field in {f.name for f in dataclasses.fields(GROUPS[group])}, old
        for cls in FORECASTERS:
            assert old not in inspect.signature(cls.__init__).parameters, (cls.__name__, old)


def test_flat_settings_of_an_older_checkpoint_are_gathered_into_their_groups():
    grouped = group_flat(GridForecaster, {"context_len": 4, "use_revin": True, "loss": "mae", "huber_delta": 2.0,
                                        "ar_step": 3})
    assert grouped == {"context_len": 4, "normalization": {"revin": True}, "rollout": {"ar_step": 3},
                       "objective": {"loss": "mae", "huber_delta": 2.0}}
    performer = group_flat(SpatioTemporalPerformerForecaster, {"d_model": 8, "feature_seed": 5, "initial_lr": 0.1})
    assert performer == {"model": {"d_model": 8, "seed": 5}, "optimization": {"initial_lr": 0.1}}


def test_the_seed_constructor_builds_the_same_model_as_the_grouped_form():
    seed = {"d_y_context": 3, "d_y_target": 3, "d_x": 1, "d_model": 8, "n_heads": 2, "n_encoder_layers": 1,
            "n_decoder_layers": 1, "d_ff": 16, "use_revin": True, "initial_lr": 0.01, "feature_seed": 3}
    torch.manual_seed(0)
    flat = SpatioTemporalPerformer_Forecaster(**seed)
    torch.manual_seed(0)
    grouped = SpatioTemporalPerformerForecaster(
        d_y_context=3, d_y_target=3, d_x=1, normalization={"revin": True}, optimization={"initial_lr": 0.01},
        model={"d_model": 8, "n_heads": 2, "n_encoder_layers": 1, "n_decoder_layers": 1, "d_ff": 16, "seed": 3,
               "dropout_emb": 0.1, "dropout_ff": 0.1})
    for (name, a), b in zip(flat.state_dict().items(), grouped.state_dict().values()):
        assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b, name


@pytest.mark.parametrize("build, words", [
    (lambda: Objective(loss="mape"), "objective.loss"),
    (lambda: Objective(huber_delta=0.0), "huber_delta"),
    (lambda: Objective(l2_weight=-1.0), "l2_weight"),
    (lambda: Normalization(seasonal_decomp=True, decomp_kernel_size=4), "odd"),
    (lambda: Normalization(log1p=True, global_norm=True), "log1p replaces"),
    (lambda: LinearHeadOptions(window=-1), "linear_head.window"),
    (lambda: LinearHeadOptions(fit="ridge", window=2), "linear_head.fit"),
    (lambda: LinearHeadOptions(fit="least_squares"), "linear_head.window >= 1"),
    (lambda: Rollout(autoregressive=True, ar_step=0), "ar_step"),
    (lambda: Rollout(scheduled_sampling_k=0.5), "scheduled_sampling_k"),
    (lambda: Optimization(initial_lr=0.0), "initial_lr"),
    (lambda: Optimization(decay_factor=1.5), "decay_factor"),
    (lambda: Optimization(warmup_steps=-1), "warmup_steps"),
    (lambda: Optimization(plateau_patience=-1), "plateau_patience"),
    (lambda: Optimization(warmup_steps=10, num_training_steps=5), "exceeds"),
    (lambda: PerformerConfig(n_heads=0), "n_heads"),
    (lambda: PerformerConfig(dropout_ff=1.0), "dropout_ff"),
])
def test_each_group_rejects_its_own_bad_settings(build, words):
    with pytest.raises(UserError, match=words):
        build()


def test_an_even_kernel_is_fine_while_decomposition_is_off():
    assert Normalization(decomp_kernel_size=4).decomp_kernel_size == 4


class _Identity(Forecaster):
    """Forecasts the last context frame in model space (what it is given, unchanged)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.weight = torch.nn.Parameter(torch.ones(()))

    def forward_model_pass(self, context_x, context_y, target_x, target_y):
        return self.weight * context_y[:, -1:].expand_as(target_y)


def test_log1p_trains_in_log_space_and_forecasts_in_original_units():
    model = _Identity(context_len=2, target_len=1, d_y_context=1, d_y_target=1, normalization={"log1p": True})
    rain = torch.tensor([0.0, 1.0, 10.0, 100.0]).reshape(1, 1, 1, 4)
    context = torch.cat([torch.zeros_like(rain), rain], dim=1)  # (B=1, T=2, C=1, 4 pixels)
    time = torch.zeros(1, 2, 1)
    torch.testing.assert_close(model.forecast(time, context, time[:, :1]), rain)  # exp(log(1 + y)) - 1 = y
    truth = 2 * rain + 1  # the loss compares log(1 + forecast) with log(1 + truth)
    loss = model._shared_step((time, context, time[:, :1], truth), "fit")
    torch.testing.assert_close(loss, (torch.log1p(rain) - torch.log1p(truth)).pow(2).mean())
    with pytest.raises(UserError, match="values >= 0"):
        model.forecast(time, -context, time[:, :1])
