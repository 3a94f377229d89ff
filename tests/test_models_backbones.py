"""Every registered grid backbone: shape contract on odd grids, gradients, seeded determinism, a tiny overfit."""

import pytest
import torch
import torch.nn.functional as F

from sfp.errors import UserError
from sfp.models import build, registry

# Small sizes so each test runs in a fraction of a second on one core.
TINY = {
    "simvp": dict(hidden_spatial=4, hidden_temporal=16, temporal_blocks=1, kernel_size=9),
    "convlstm": dict(hidden=8, layers=2, patch=2),
    "fno": dict(modes=4, width=8, layers=2, projection=16),
    "unet": dict(width=4, depth=2),
    "resnet": dict(width=8, blocks=2),
    "performer": dict(patch=2, model=dict(d_model=8, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=16,
                                          n_features=4)),
    "advection": dict(backbone="unet", backbone_kwargs=dict(width=4, depth=2)),
    "first_guess": dict(backbone="unet", backbone_kwargs=dict(width=4, depth=2)),
}


def test_every_shipped_backbone_has_a_tiny_config():
    # other test modules may register helpers of their own; only sfp's backbones must be covered here
    shipped = {name for name, cls in registry.BACKBONES.items() if cls.__module__.startswith("sfp.models.")}
    assert shipped == set(TINY)


# first_guess reads its guess as the input's last out_frames frames: it forecasts fewer frames than it reads
@pytest.mark.parametrize("name", sorted(set(TINY) - {"first_guess"}))
def test_default_size_maps_odd_grid_and_other_horizon(name):
    model = build(name, in_frames=3, out_frames=5, channels=2, seed=0)
    y = model(torch.randn(1, 3, 2, 37, 45))
    assert y.shape == (1, 5, 2, 37, 45)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("size", [(1, 1), (7, 5)])
def test_tiny_grids_still_work(name, size):
    model = build(name, in_frames=2, out_frames=1, channels=1, seed=0, **TINY[name])
    assert model(torch.randn(2, 2, 1, *size)).shape == (2, 1, 1, *size)


@pytest.mark.parametrize("name", sorted(TINY))
def test_gradient_reaches_every_parameter(name):
    """After one step, so that a residual behind a gate that starts at 0 (advection) counts too."""
    model = build(name, in_frames=3, out_frames=2, channels=1, seed=0, **TINY[name])
    x, target = torch.randn(2, 3, 1, 16, 20), torch.randn(2, 2, 1, 16, 20)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    F.mse_loss(model(x), target).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    F.mse_loss(model(x), target).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert dead == []


@pytest.mark.parametrize("name", sorted(TINY))
def test_seed_fixes_weights_and_outputs(name):
    x = torch.randn(1, 3, 1, 9, 11)
    a = build(name, in_frames=3, out_frames=2, channels=1, seed=7, **TINY[name])
    b = build(name, in_frames=3, out_frames=2, channels=1, seed=7, **TINY[name])
    c = build(name, in_frames=3, out_frames=2, channels=1, seed=8, **TINY[name])
    for (key, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb) if isinstance(pa, torch.Tensor) else pa == pb, key  # or extra state (counters)
    assert torch.equal(a(x), b(x))
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


# advection and first_guess start as their prior (an extrapolation, the input's guess), their residual behind a gate
# that grows step by step from 0: advection's 40-step learning test is in test_advection_backbone, first_guess's
# gate gradient in test_radar_first_guess
@pytest.mark.parametrize("name", sorted(set(TINY) - {"advection", "first_guess"}))
def test_loss_falls_when_fitting_one_batch(name):
    torch.manual_seed(0)
    model = build(name, in_frames=3, out_frames=2, channels=1, seed=0, **TINY[name])
    # a smooth moving pattern: learnable, unlike noise
    grid = torch.linspace(0, 6.28, 16)
    frames = torch.stack([torch.sin(grid[:, None] + 0.5 * t) * torch.cos(grid[None, :]) for t in range(5)])
    frames = frames[None, :, None].repeat(2, 1, 1, 1, 1) * torch.tensor([1.0, -1.0]).view(2, 1, 1, 1, 1)
    x, target = frames[:, :3], frames[:, 3:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        loss = F.mse_loss(model(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("shape", [(1, 4, 1, 8, 8), (1, 3, 2, 8, 8), (3, 1, 8, 8)])
def test_wrong_input_shape_is_a_user_error(name, shape):
    model = build(name, in_frames=3, out_frames=2, channels=1, **TINY[name])
    with pytest.raises(UserError, match=r"expects input of shape \(B, 3, 1, H, W\)"):
        model(torch.randn(*shape))
