"""LinearForecaster: the least-squares linear reference, per variable or reading every variable."""

import torch

from forecaster_helpers import TinyDataModule, tiny_trainer
from sfp.forecasting import LinearForecaster
from sfp.task import SENSORS


def _led_series(n: int, seed: int) -> list[torch.Tensor]:
    """Variable 0 is white noise; variable 1 repeats it one step later: only variable 0's past predicts 1."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 7, generator=generator)
    y = torch.stack([noise[:, 1:], noise[:, :-1]], -1)  # (n, 6, 2): y[t, 1] = y[t - 1, 0]
    x = torch.arange(6.0).view(1, 6, 1).expand(n, 6, 1)
    return [x[:, :5], y[:, :5], x[:, 5:], y[:, 5:]]


def test_a_cross_variable_fit_predicts_a_lagged_copy_exactly_and_training_steps_change_nothing():
    data = TinyDataModule(*(_led_series(64, seed) for seed in range(3)), task=SENSORS, batch_size=16)
    context_x, context_y, target_x, target_y = data.splits["test"]
    errors = {}
    for cross in (True, False):
        model = LinearForecaster(d_y_context=2, d_y_target=2, context_len=5, target_len=1,
                                 linear_head={"window": 2, "cross_variable": cross})
        tiny_trainer(max_epochs=2, limit_val_batches=0).fit(model, datamodule=data)
        solved = LinearForecaster(d_y_context=2, d_y_target=2, context_len=5, target_len=1,
                                  linear_head={"window": 2, "cross_variable": cross})
        solved.fit_linear_head(data.train_dataloader())
        torch.testing.assert_close(model.linear_head.weight, solved.linear_head.weight)
        with torch.no_grad():
            errors[cross] = (model.forecast(context_x, context_y, target_x) - target_y).pow(2).mean((0, 1))
    assert errors[True][1] < 1e-8  # variable 1's next value is variable 0's last one
    assert errors[False][1] > 0.5  # its own past says nothing about it (unit-variance noise)
    assert errors[True][0] > 0.5 and errors[False][0] > 0.5  # white noise stays unpredictable
