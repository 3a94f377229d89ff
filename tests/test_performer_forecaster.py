"""Performer forecasters: the seed's README example, training under Lightning, redraws, checkpoints, grid backbone."""

import pytest
import torch

from forecaster_helpers import TinyDataModule, field_batch, series_batch, tiny_trainer
from sfp.forecasting import GridForecaster
from sfp.forecasting.performer import SpatioTemporalPerformerForecaster
from sfp.models.performer import FavorAttention
from sfp.task import SENSORS, TaskSpec

TINY = dict(d_model=16, d_q_k=4, d_v=4, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32, n_features=8)


def test_seed_readme_example_constructs_and_forecasts():
    from sfp.forecasting import SpatioTemporalPerformer_Forecaster

    model = SpatioTemporalPerformer_Forecaster(
        d_y_context=49, d_y_target=49, d_x=1, d_model=128, use_seasonal_decomp=True, use_revin=True,
        use_global_norm=False, num_training_steps=30000, autoregressive_training=False,
    )
    assert isinstance(model, SpatioTemporalPerformerForecaster) and model.model.config.d_model == 128
    assert model.normalization.seasonal_decomp and model.normalization.revin and not model.normalization.global_norm
    assert model.optimization.num_training_steps == 30000 and not model.rollout.autoregressive
    assert model.model.config.dropout_emb == model.model.config.dropout_ff == 0.1  # the seed's defaults
    context_x, context_y, target_x, _ = series_batch(n=2, context=8, target=3, n_vars=49)
    with torch.no_grad():
        forecast = model.eval().forecast(context_x, context_y, target_x)
    assert forecast.shape == (2, 3, 49) and torch.isfinite(forecast).all()


def _data(n_vars: int = 3) -> TinyDataModule:
    splits = [series_batch(8, context=6, target=3, n_vars=n_vars, seed=s) for s in range(3)]
    splits[0][1][1, 2, 0] = torch.nan  # a missing context value in training
    return TinyDataModule(*splits, task=SENSORS, batch_size=4)


def test_trains_under_lightning_redraws_per_optimizer_step_and_reloads_identically(tmp_path):
    torch.manual_seed(0)
    model = SpatioTemporalPerformerForecaster(
        d_y_context=3, d_y_target=3, d_x=1, model={**TINY, "redraw_interval": 2},
        normalization={"seasonal_decomp": True, "decomp_kernel_size": 3, "revin": True},
        optimization={"num_training_steps": 4, "warmup_steps": 2},
    )
    before = [p.detach().clone() for p in model.parameters()]
    data = _data()
    trainer = tiny_trainer(max_steps=4, limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    assert trainer.global_step == 4
    assert [int(m.draws) for m in model.modules() if isinstance(m, FavorAttention)] == [2, 2, 2]
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert torch.isfinite(trainer.callback_metrics["train/loss"])

    path = tmp_path / "performer.ckpt"
    trainer.save_checkpoint(path)
    reloaded = SpatioTemporalPerformerForecaster.load_from_checkpoint(path, weights_only=True)
    context_x, context_y, target_x, _ = data.splits["test"]
    with torch.no_grad():
        expected = model.eval().forecast(context_x, context_y, target_x)
        assert torch.equal(reloaded.eval().forecast(context_x, context_y, target_x), expected)


def test_autoregressive_training_with_scheduled_sampling_runs():
    model = SpatioTemporalPerformerForecaster(
        d_y_context=2, d_y_target=2, d_x=1, rollout={"autoregressive": True, "ar_step": 1, "scheduled_sampling_k": 5.0},
        model={**TINY, "causal_decoder": True, "kernel": "relu"},
    )
    trainer = tiny_trainer(max_steps=2, limit_val_batches=1)
    trainer.fit(model, datamodule=_data(n_vars=2))
    assert trainer.global_step == 2
    assert torch.isfinite(trainer.callback_metrics["val/loss"])


def test_grid_forecaster_trains_the_registered_performer_backbone_and_redraws_its_features():
    torch.manual_seed(0)
    model = GridForecaster(backbone="performer", context_len=3, target_len=2, backbone_kwargs=dict(
        patch=4, model=dict(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, n_features=8,
                            redraw_interval=1, local_cross_attention="exact", global_cross_attention="favor")))
    splits = [field_batch(4, context=3, target=2, size=10, seed=s) for s in range(3)]
    trainer = tiny_trainer(max_steps=3, limit_val_batches=0)
    trainer.fit(model, datamodule=TinyDataModule(*splits, task=TaskSpec("generic")))
    assert trainer.global_step == 3
    favor = [m for m in model.modules() if isinstance(m, FavorAttention)]
    assert len(favor) == 3 and all(int(m.draws) == 3 for m in favor)  # encoder global, decoder global + cross
    forecast = model.forecast(*splits[2][:3])
    assert forecast.shape == (4, 2, 1, 10, 10) and torch.isfinite(forecast).all()


@pytest.mark.parametrize("group", [1, 3])
def test_with_a_least_squares_head_the_performer_starts_as_that_linear_forecast(group):
    model = SpatioTemporalPerformerForecaster(
        d_y_context=3, d_y_target=3, d_x=1, context_len=6, target_len=3, model=TINY, variables_per_token=group,
        linear_head={"window": 4, "cross_variable": True, "fit": "least_squares"})
    context_x, context_y, target_x, _ = series_batch(n=2, context=6, target=3, n_vars=3)
    with torch.no_grad():
        forecast = model.eval().forecast(context_x, context_y, target_x)
        torch.testing.assert_close(forecast, model.linear_head(context_y))
    assert not any(p.requires_grad for p in model.linear_head.parameters())
