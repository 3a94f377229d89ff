"""LSTMForecaster: persistence before training, learning a rule persistence misses, series only."""

import pytest
import torch

from sfp.errors import UserError
from sfp.forecasting import LSTMForecaster

CONTEXT, TARGET = 12, 4


def _sines(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two variables: sines of one period (8 steps) with random phases and amplitudes, split context / target."""
    generator = torch.Generator().manual_seed(seed)
    phase, amplitude = torch.rand(2, n, 1, 2, generator=generator)
    t = torch.arange(CONTEXT + TARGET, dtype=torch.float32)[None, :, None]
    y = (0.5 + amplitude) * torch.sin(2 * torch.pi * (t / 8 + phase))
    return y[:, :CONTEXT], y[:, CONTEXT:]


def _forecast(model: LSTMForecaster, context_y: torch.Tensor) -> torch.Tensor:
    n = context_y.shape[0]
    return model.forecast(torch.zeros(n, CONTEXT, 1), context_y, torch.zeros(n, TARGET, 1))


def test_untrained_model_is_persistence():
    torch.manual_seed(0)
    model = LSTMForecaster(d_y_context=2, d_y_target=2, context_len=CONTEXT, target_len=TARGET, hidden_size=8)
    context_y, _ = _sines(5, seed=0)
    with torch.no_grad():
        torch.testing.assert_close(_forecast(model, context_y), context_y[:, -1:].expand(-1, TARGET, -1))


def test_learns_to_continue_sines_far_better_than_persistence():
    torch.manual_seed(0)
    model = LSTMForecaster(d_y_context=2, d_y_target=2, context_len=CONTEXT, target_len=TARGET, hidden_size=32,
                           num_layers=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    context_y, target_y = _sines(64, seed=1)
    for _ in range(300):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(_forecast(model, context_y), target_y)
        loss.backward()
        optimizer.step()
    test_context, test_target = _sines(32, seed=2)
    with torch.no_grad():
        mse = (_forecast(model, test_context) - test_target).square().mean()
    persistence = (test_context[:, -1:] - test_target).square().mean()
    assert mse < 0.05 * persistence


def test_fields_and_bad_sizes_are_user_errors():
    model = LSTMForecaster(d_y_context=1, d_y_target=1, context_len=3, target_len=2, hidden_size=4)
    with pytest.raises(UserError, match=r"series \(B, T, d_y\)"):
        model.forecast(torch.zeros(1, 3, 1), torch.zeros(1, 3, 1, 4, 4), torch.zeros(1, 2, 1))
    with pytest.raises(UserError, match="hidden_size >= 1"):
        LSTMForecaster(d_y_context=1, d_y_target=1, hidden_size=0)
