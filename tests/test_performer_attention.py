"""Exact and FAVOR+ attention kernels: accuracy against softmax, padding masks, causality in time, state."""

import io
import math

import pytest
import torch

from sfp.errors import UserError
from sfp.models.common import notify_optimizer_steps
from sfp.models.performer import attention as attn
from sfp.models.performer.attention import (
    ExactAttention,
    FavorAttention,
    make_attention,
    orthogonal_gaussian_features,
)


def softmax_attention(q, k, v, mask=None):
    """Reference: softmax(q k^T / sqrt(d)) v written out, with a boolean (Lq, Lk) or (B, 1, 1, Lk) mask."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, -torch.inf)
    return scores.softmax(-1) @ v


def qkv(batch=2, heads=2, length=24, dim=8, value_dim=8, scale=0.5, seed=0, key_length=None):
    g = torch.Generator().manual_seed(seed)
    key_length = key_length or length
    q = torch.randn(batch, heads, length, dim, generator=g) * scale
    k = torch.randn(batch, heads, key_length, dim, generator=g) * scale
    v = torch.randn(batch, heads, key_length, value_dim, generator=g)
    return q, k, v


def relative_error(a, b):
    return float((a - b).norm() / b.norm())


def test_favor_error_falls_as_features_grow():
    errors = []
    for n_features in (16, 256, 1024):
        per_seed = []
        for seed in range(4):
            q, k, v = qkv(length=64, dim=16, value_dim=16, seed=seed)
            favor = FavorAttention(16, n_features, seed=seed)
            per_seed.append(relative_error(favor(q, k, v), softmax_attention(q, k, v)))
        errors.append(sum(per_seed) / len(per_seed))
    assert errors[0] > errors[1] > errors[2]
    assert errors[0] > 4 * errors[2]  # Monte Carlo: the error shrinks like 1 / sqrt(features)
    assert errors[2] < 0.15


def test_orthogonal_features_rows_orthogonal_within_a_block_with_chi_norms():
    w = orthogonal_gaussian_features(2000, 8, torch.Generator().manual_seed(0)).double()
    block = w[:8] / w[:8].norm(dim=1, keepdim=True)
    torch.testing.assert_close(block @ block.T, torch.eye(8, dtype=torch.float64), atol=1e-6, rtol=0)
    squared_norms = w.pow(2).sum(1)  # chi-square with 8 degrees of freedom: mean 8, variance 16
    assert abs(float(squared_norms.mean()) - 8) < 0.4
    assert abs(float(squared_norms.var()) - 16) < 3


def test_exact_kernel_matches_softmax_for_cross_attention_shapes():
    q, k, v = qkv(length=5, key_length=9, value_dim=3)
    out = ExactAttention()(q, k, v)
    assert out.shape == (2, 2, 5, 3)
    torch.testing.assert_close(out, softmax_attention(q, k, v), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel", ["softmax", "relu"])
def test_favor_shapes_and_constant_values_pass_through(kernel):
    q, k, _ = qkv(length=5, key_length=9)
    v = torch.full((2, 2, 9, 3), 2.5)
    out = FavorAttention(8, 32, kernel=kernel)(q, k, v)
    assert out.shape == (2, 2, 5, 3)
    torch.testing.assert_close(out, torch.full_like(out, 2.5))  # weights are positive and sum to one


@pytest.mark.parametrize("kind", ["exact", "favor"])
def test_padding_mask_equals_attention_over_unpadded_keys(kind):
    kernel = make_attention(kind, 8, n_features=64)
    q, k, v = qkv(length=10)
    valid = torch.ones(2, 10, dtype=torch.bool)
    valid[0, 6:] = False
    valid[1, 3:5] = False
    k_garbage, v_garbage = k.clone(), v.clone()
    k_garbage += 50.0 * (~valid)[:, None, :, None]  # padded keys must not matter, however large
    v_garbage.masked_fill_(~valid[:, None, :, None], 1e6)
    out = kernel(q, k_garbage, v_garbage, key_valid=valid)
    for b in range(2):
        keep = valid[b]
        expected = kernel(q[b : b + 1], k[b : b + 1, :, keep], v[b : b + 1, :, keep])
        torch.testing.assert_close(out[b : b + 1], expected, atol=1e-5, rtol=1e-5)


def causal_inputs(groups=3, steps=5, seed=0):
    return qkv(length=groups * steps, seed=seed)


@pytest.mark.parametrize("kind", ["exact", "favor"])
def test_causal_in_time_ignores_future_steps_and_sees_the_same_step(kind):
    steps, perturbed_step = 5, 3
    kernel = make_attention(kind, 8, n_features=64)
    q, k, v = causal_inputs(steps=steps)
    out = kernel(q, k, v, causal_steps=steps)
    time = torch.arange(q.shape[2]) % steps
    later = time >= perturbed_step
    q2, k2, v2 = q.clone(), k.clone(), v.clone()
    for t in (q2, k2, v2):
        t[:, :, later] += torch.randn_like(t[:, :, later])
    out2 = kernel(q2, k2, v2, causal_steps=steps)
    torch.testing.assert_close(out2[:, :, ~later], out[:, :, ~later], atol=1e-5, rtol=1e-5)
    assert (out2[:, :, later] - out[:, :, later]).abs().amax() > 1e-2
    # variable 2's token at step 1 (index 2*steps + 1) is seen by variable 0's token at step 1 (index 1)
    v3 = v.clone()
    v3[:, :, 2 * steps + 1] += 1.0
    assert (kernel(q, k, v3, causal_steps=steps)[:, :, 1] - out[:, :, 1]).abs().amax() > 1e-3


def test_exact_causal_equals_masked_softmax_by_time():
    steps = 4
    q, k, v = causal_inputs(steps=steps)
    time = torch.arange(q.shape[2]) % steps
    expected = softmax_attention(q, k, v, mask=time[None, :] <= time[:, None])
    torch.testing.assert_close(ExactAttention()(q, k, v, causal_steps=steps), expected, atol=1e-5, rtol=1e-5)


def test_favor_causal_prefix_sums_equal_masked_linear_attention_in_chunks(monkeypatch):
    steps = 6
    favor = FavorAttention(8, 32)
    q, k, v = causal_inputs(steps=steps)
    k.requires_grad_(True)
    time = torch.arange(q.shape[2]) % steps
    weights = (favor.features(q) @ favor.features(k, is_query=False).transpose(-2, -1)) * (time[None] <= time[:, None])
    expected = (weights @ v) / weights.sum(-1, keepdim=True)
    monkeypatch.setattr(attn, "CAUSAL_CHUNK_ELEMENTS", 1)  # one time step per chunk: exercises the carried state
    out = favor(q, k, v, causal_steps=steps)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    (grad,) = torch.autograd.grad(out.square().sum(), k)
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), k)
    torch.testing.assert_close(grad, expected_grad, atol=1e-4, rtol=1e-4)


def test_causal_needs_whole_time_steps():
    q, k, v = qkv(length=7)
    with pytest.raises(UserError, match="causal_steps"):
        FavorAttention(8, 16)(q, k, v, causal_steps=3)


def test_redraw_every_interval_optimizer_steps_from_a_seeded_sequence():
    favor = FavorAttention(8, 16, redraw_interval=3, seed=5)
    twin = FavorAttention(8, 16, redraw_interval=3, seed=5)
    other = FavorAttention(8, 16, redraw_interval=3, seed=6)
    assert not torch.equal(favor.projection, other.projection)
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    notify_optimizer_steps(favor, optimizer)
    seen = [favor.projection.clone()]
    for _ in range(7):
        weight.grad = torch.ones(1)
        optimizer.step()
        seen.append(favor.projection.clone())
    changed = [not torch.equal(a, b) for a, b in zip(seen, seen[1:])]
    assert changed == [False, False, True, False, False, True, False]
    assert int(favor.draws) == 2
    twin.redraw()
    twin.redraw()
    assert torch.equal(twin.projection, favor.projection)


def test_state_dict_round_trip_predicts_identically():
    favor = FavorAttention(8, 32, redraw_interval=1, seed=1)
    for _ in range(3):
        favor.note_optimizer_step()
    buffer = io.BytesIO()
    torch.save(favor.state_dict(), buffer)
    buffer.seek(0)
    reloaded = FavorAttention(8, 32, redraw_interval=1, seed=99)
    q, k, v = qkv()
    assert not torch.equal(reloaded(q, k, v), favor(q, k, v))
    reloaded.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(reloaded(q, k, v), favor(q, k, v))
    assert int(reloaded.optimizer_steps) == 3


def test_unknown_names_raise_user_errors():
    with pytest.raises(UserError, match="unknown attention 'linear'"):
        make_attention("linear", 8)
    with pytest.raises(UserError, match="unknown FAVOR\\+ kernel 'tanh'"):
        FavorAttention(8, kernel="tanh")
