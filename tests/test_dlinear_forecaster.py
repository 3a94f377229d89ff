"""DLinearForecaster: exact fits of linear rules, the least-squares optimum, per-variable maps, Lightning round trip."""

import pytest
import torch

from forecaster_helpers import TinyDataModule, series_batch, tiny_trainer
from sfp.errors import UserError
from sfp.forecasting import DLinearForecaster
from sfp.task import SENSORS

CONTEXT, TARGET = 12, 3


def _fit(model: DLinearForecaster, context_y: torch.Tensor, target_y: torch.Tensor, steps: int = 60) -> float:
    """Minimise the forecast MSE with L-BFGS (the problem is a linear least-squares one); returns the final MSE."""
    batch = context_y.shape[0]
    context_x, target_x = torch.zeros(batch, CONTEXT, 1), torch.zeros(batch, TARGET, 1)
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=steps, tolerance_grad=1e-12,
                                  tolerance_change=1e-15, history_size=50, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model.forecast(context_x, context_y, target_x), target_y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return closure().item()


def _lines(n: int, n_vars: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Straight lines ``a + b t`` with random intercepts and slopes, split into context and target."""
    generator = torch.Generator().manual_seed(seed)
    a, b = torch.randn(2, n, 1, n_vars, generator=generator)
    y = a + b * torch.arange(CONTEXT + TARGET, dtype=torch.float32)[None, :, None]
    return y[:, :CONTEXT], y[:, CONTEXT:]


@pytest.mark.parametrize("shared_weights", [False, True])
def test_continues_unseen_straight_lines_exactly_after_fitting_a_few(shared_weights):
    torch.manual_seed(0)
    model = DLinearForecaster(d_y_context=2, d_y_target=2, context_len=CONTEXT, target_len=TARGET, kernel_size=5,
                              shared_weights=shared_weights)
    _fit(model, *_lines(16, 2, seed=0))
    context_y, expected = _lines(5, 2, seed=1)
    with torch.no_grad():
        forecast = model.forecast(torch.zeros(5, CONTEXT, 1), context_y, torch.zeros(5, TARGET, 1))
    torch.testing.assert_close(forecast, expected, atol=1e-4, rtol=1e-4)


def test_shared_model_reaches_the_ordinary_least_squares_optimum_on_noise():
    # trend and seasonal maps A_t M + A_s (I - M) span every linear map of the context, so the best DLinear is the
    # least-squares regression of each target step on the context steps (plus an intercept)
    generator = torch.Generator().manual_seed(3)
    context_y = torch.randn(64, CONTEXT, 2, generator=generator)
    target_y = torch.randn(64, TARGET, 2, generator=generator)
    design = torch.cat([context_y.transpose(1, 2).reshape(-1, CONTEXT), torch.ones(128, 1)], 1).double()
    answers = target_y.transpose(1, 2).reshape(-1, TARGET).double()
    solution = torch.linalg.lstsq(design, answers).solution
    optimum = (design @ solution - answers).square().mean().item()

    torch.manual_seed(0)
    model = DLinearForecaster(d_y_context=2, d_y_target=2, context_len=CONTEXT, target_len=TARGET, kernel_size=5,
                              shared_weights=True)
    assert _fit(model, context_y, target_y, steps=200) == pytest.approx(optimum, rel=1e-5)


def test_per_variable_maps_learn_different_rules_that_one_shared_map_cannot():
    generator = torch.Generator().manual_seed(4)
    context_y = torch.randn(32, CONTEXT, 2, generator=generator)
    last = context_y[:, -1:, 0].expand(-1, TARGET)  # variable 0: repeat the last value
    mean = context_y[:, :, 1].mean(1, keepdim=True).expand(-1, TARGET)  # variable 1: the context mean
    target_y = torch.stack([last, mean], -1)
    losses = {}
    for shared in (False, True):
        torch.manual_seed(0)
        model = DLinearForecaster(d_y_context=2, d_y_target=2, context_len=CONTEXT, target_len=TARGET,
                                  kernel_size=3, shared_weights=shared)
        losses[shared] = _fit(model, context_y, target_y, steps=200)
    assert losses[False] < 1e-6
    assert losses[True] > 0.05


def test_trains_under_lightning_and_reloads_identically(tmp_path):
    splits = [series_batch(8, context=6, target=2, n_vars=3, seed=s) for s in range(3)]
    model = DLinearForecaster(d_y_context=3, d_y_target=3, context_len=6, target_len=2, kernel_size=3,
                              normalization={"revin": True})
    trainer = tiny_trainer(max_steps=2, limit_val_batches=1)
    trainer.fit(model, datamodule=TinyDataModule(*splits, task=SENSORS))
    assert trainer.global_step == 2 and torch.isfinite(trainer.callback_metrics["val/mse"])
    path = tmp_path / "dlinear.ckpt"
    trainer.save_checkpoint(path)
    reloaded = DLinearForecaster.load_from_checkpoint(path, weights_only=True)
    with torch.no_grad():
        assert torch.equal(reloaded.eval().forecast(*splits[2][:3]), model.eval().forecast(*splits[2][:3]))


def test_even_kernel_is_a_user_error():
    with pytest.raises(UserError, match="positive odd integer, got 4"):
        DLinearForecaster(d_y_context=1, d_y_target=1, context_len=8, target_len=2, kernel_size=4)
