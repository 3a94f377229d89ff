"""SpatioTemporal Performer (series) and its grid backbone: shapes, invariants, causality, state, learning."""

import io

import pytest
import torch

from sfp.errors import UserError
from sfp.models.common import note_optimizer_step, notify_optimizer_steps
from sfp.models.performer import FavorAttention, PerformerGridBackbone, SpatioTemporalPerformer
from sfp.models.performer.grid import from_patches, to_patches

TINY = dict(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32, n_features=16)
GRID = dict(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, n_features=16)


def tiny_model(**options):
    torch.manual_seed(0)
    return SpatioTemporalPerformer(d_y_context=3, d_y_target=2, d_x=2, config={**TINY, **options}).eval()


def batch(context_len=6, target_len=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(2, context_len, 2, generator=g), torch.randn(2, context_len, 3, generator=g),
        torch.randn(2, target_len, 2, generator=g),
    )


def test_output_shape_has_the_target_variables():
    context_x, context_y, target_x = batch()
    assert tiny_model()(context_x, context_y, target_x).shape == (2, 3, 2)


def test_bad_shapes_and_options_raise_user_errors():
    context_x, context_y, target_x = batch()
    with pytest.raises(UserError, match=r"context_y must have shape \(\*, \*, 3\)"):
        tiny_model()(context_x, context_y[..., :2], target_x)
    with pytest.raises(UserError, match="target_y_in"):
        tiny_model()(context_x, context_y, target_x, torch.zeros(2, 3, 3))
    with pytest.raises(UserError, match="d_y_target"):
        SpatioTemporalPerformer(d_y_context=2, d_y_target=3)
    with pytest.raises(UserError, match="dropout_ff"):
        SpatioTemporalPerformer(d_y_context=2, config={"dropout_ff": 1.5})
    with pytest.raises(UserError, match="variables_per_token"):
        SpatioTemporalPerformer(d_y_context=2, variables_per_token=3)
    with pytest.raises(UserError, match="unknown attention"):
        SpatioTemporalPerformer(d_y_context=2, config={"global_attention": "sparse"})


def test_unknown_targets_as_nan_equal_no_targets_and_given_targets_are_used():
    model = tiny_model()
    context_x, context_y, target_x = batch()
    out = model(context_x, context_y, target_x)
    torch.testing.assert_close(model(context_x, context_y, target_x, torch.full((2, 3, 2), torch.nan)), out)
    assert not torch.allclose(model(context_x, context_y, target_x, torch.ones(2, 3, 2)), out)


def test_missing_context_values_give_finite_outputs_and_gradients():
    model = tiny_model().train()
    context_x, context_y, target_x = batch()
    context_y[0, 2, 1] = torch.nan
    out = model(context_x, context_y, target_x)
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("kind", ["exact", "favor"])
def test_causal_decoder_forecast_of_a_step_ignores_later_target_tokens(kind):
    model = tiny_model(causal_decoder=True, local_attention=kind, global_attention=kind)
    context_x, context_y, target_x = batch(target_len=4)
    out = model(context_x, context_y, target_x)
    changed_x = target_x.clone()
    changed_x[:, 2:] += 3.0
    changed = model(context_x, context_y, changed_x)
    torch.testing.assert_close(changed[:, :2], out[:, :2], atol=1e-5, rtol=1e-5)
    assert (changed[:, 2:] - out[:, 2:]).abs().amax() > 1e-3


def test_state_dict_round_trip_after_redraws_predicts_identically():
    model = tiny_model(redraw_interval=2)
    for _ in range(5):
        note_optimizer_step(model)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)
    reloaded = SpatioTemporalPerformer(d_y_context=3, d_y_target=2, d_x=2, config={**TINY, "seed": 7}).eval()
    reloaded.load_state_dict(torch.load(buffer, weights_only=True))
    context_x, context_y, target_x = batch()
    assert torch.equal(reloaded(context_x, context_y, target_x), model(context_x, context_y, target_x))


def test_favor_slots_get_distinct_seeds_and_redraw_with_the_optimizer():
    model = tiny_model(redraw_interval=2)
    favors = [m for m in model.modules() if isinstance(m, FavorAttention)]
    assert len(favors) == 3  # encoder global self, decoder global self and global cross
    assert len({m.projection.sum().item() for m in favors}) == 3
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    notify_optimizer_steps(model, optimizer)
    for _ in range(4):
        optimizer.step()
    assert [int(m.draws) for m in favors] == [2, 2, 2]


def loss_ratio_after_training(model, context_y, target, steps):
    """Last over first training loss of ``model`` fit to ``target`` from ``context_y`` (time features zero)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    context_x, target_x = torch.zeros(*context_y.shape[:2], 1), torch.zeros(len(target), target.shape[1], 1)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(context_x, context_y, target_x), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses[-1] / losses[0]


def test_learns_to_repeat_the_last_context_value():
    torch.manual_seed(0)
    model = SpatioTemporalPerformer(d_y_context=3, d_y_target=3, d_x=1, config=TINY)
    context_y = torch.randn(16, 6, 3, generator=torch.Generator().manual_seed(0))
    assert loss_ratio_after_training(model, context_y, context_y[:, -1:].expand(-1, 2, -1), steps=60) < 0.2


def test_grouped_tokens_hold_consecutive_variables_and_pad_the_last_group_with_zeros():
    model = SpatioTemporalPerformer(d_y_context=5, d_x=1, config=TINY, variables_per_token=2)
    values = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(2, 3, 5)
    tokens = model._tokens(values)
    assert tokens.shape == (2, 3, 3, 2)  # (batch, groups, steps, variables per token)
    assert tokens[1, 1, 2].tolist() == values[1, 2, 2:4].tolist()
    assert tokens[0, 2, 0].tolist() == [values[0, 0, 4].item(), 0.0]


@pytest.mark.parametrize("group", [2, 3])
def test_grouped_tokens_forecast_the_target_variables_with_one_token_per_group_and_step(group):
    torch.manual_seed(0)
    model = SpatioTemporalPerformer(d_y_context=3, d_y_target=2, d_x=2, config=TINY, variables_per_token=group).eval()
    seen = []
    model.encoder[0].register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].shape))
    context_x, context_y, target_x = batch()
    out = model(context_x, context_y, target_x)
    assert out.shape == (2, 3, 2) and torch.isfinite(out).all()
    assert seen == [(2, -(-3 // group), 6, TINY["d_model"])]


def test_a_token_with_one_missing_value_still_reads_its_other_values():
    torch.manual_seed(0)
    model = SpatioTemporalPerformer(d_y_context=3, d_x=2, config=TINY, variables_per_token=3).eval()
    context_x, context_y, target_x = batch()
    context_y[:, 2, 1] = torch.nan
    out = model(context_x, context_y, target_x)
    assert torch.isfinite(out).all()
    context_y[:, 2, 0] += 1.0  # the missing value's neighbour in the same token
    assert (model(context_x, context_y, target_x) - out).abs().amax() > 1e-4


def test_a_time_step_per_token_learns_a_cross_variable_map():
    """Each target is the previous step's other variable: only a model that mixes variables can fit it."""
    torch.manual_seed(0)
    model = SpatioTemporalPerformer(d_y_context=2, d_x=1, config=TINY, variables_per_token=2)
    context_y = torch.randn(16, 6, 2, generator=torch.Generator().manual_seed(0))
    assert loss_ratio_after_training(model, context_y, context_y[:, -1:].flip(-1), steps=80) < 0.2


def test_patches_round_trip_and_hold_row_major_blocks():
    frames = torch.randn(2, 3, 2, 8, 12)
    tokens = to_patches(frames, 4)
    assert tokens.shape == (2, 6, 3, 32)
    torch.testing.assert_close(tokens[1, 4, 2], frames[1, 2, :, 4:8, 4:8].flatten())  # row 1, column 1
    assert torch.equal(from_patches(tokens, 2, 3, 2, 4), frames)


def test_grid_backbone_maps_any_size_to_the_future_frames():
    torch.manual_seed(0)
    backbone = PerformerGridBackbone(in_frames=3, out_frames=2, channels=2, patch=4, model=GRID)
    out = backbone(torch.randn(2, 3, 2, 10, 13))
    assert out.shape == (2, 2, 2, 10, 13)
    out.square().mean().backward()
    assert backbone.patch_positions.weight.grad.abs().sum() > 0
    with pytest.raises(UserError, match="expects input of shape"):
        backbone(torch.randn(2, 4, 2, 8, 8))


def test_grid_backbone_weights_and_features_follow_the_torch_seed():
    def build(seed):
        torch.manual_seed(seed)
        return PerformerGridBackbone(in_frames=2, out_frames=1, channels=1, patch=4, model=GRID)

    first, again, other = build(0), build(0), build(1)
    frames = torch.randn(1, 2, 1, 8, 8)
    assert torch.equal(first(frames), again(frames))
    projections = [[m.projection for m in b.modules() if isinstance(m, FavorAttention)] for b in (first, other)]
    assert all(not torch.equal(a, b) for a, b in zip(*projections))
