"""The fused AdamW that every training module uses takes the same steps as torch's reference loop.

Both optimizers are given the same gradients each step (a real backward pass of a small Performer, scaled per step
so that some fall to 1e-20, where squared values are subnormal): a training run would feed each the gradients of
its own, rounding-different weights, which Adam amplifies where a gradient is zero but for rounding (the key bias
of softmax attention), and that would test Adam, not the fusion.
"""

import torch

from sfp.forecasting.optim import adamw
from sfp.models.performer import SpatioTemporalPerformer


def _small_performer() -> SpatioTemporalPerformer:
    torch.manual_seed(0)
    return SpatioTemporalPerformer(d_y_context=3, d_y_target=3, d_x=1, config=dict(
        d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32, n_features=8))


def _gradients(model: SpatioTemporalPerformer) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    cx, cy = torch.randn(2, 6, 1, generator=generator), torch.randn(2, 6, 3, generator=generator)
    tx, ty = torch.randn(2, 2, 1, generator=generator), torch.randn(2, 2, 3, generator=generator)
    torch.nn.functional.mse_loss(model(cx, cy, tx), ty).backward()
    return [p.grad.clone() for p in model.parameters()]


def test_cpu_parameters_get_the_fused_kernel():
    assert adamw(_small_performer().parameters(), 1e-3).defaults["fused"] is True


def test_fused_steps_match_the_reference_loop():
    model = _small_performer()
    gradients = _gradients(model)
    start = [p.detach().clone() for p in model.parameters()]
    fast, reference = ([torch.nn.Parameter(p.clone()) for p in start] for _ in range(2))
    optimizers = adamw(fast, 1e-2, weight_decay=0.1), torch.optim.AdamW(reference, lr=1e-2, weight_decay=0.1,
                                                                        foreach=False)
    for scale in (1.0, 1e-3, 1e-20, 3.0, 1e-10):
        for params, optimizer in zip((fast, reference), optimizers):
            for p, g in zip(params, gradients):
                p.grad = g * scale
            optimizer.step()
    for a, b in zip(fast, reference):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert sum((b - s).abs().sum().item() for b, s in zip(reference, start)) > 0.1  # the steps did move them
