"""Attention kernels of the SpatioTemporal Performer: exact softmax (fused SDPA) and FAVOR+ (linear in length).

Every kernel maps ``q (B, H, Lq, dk), k (B, H, Lk, dk), v (B, H, Lk, dv) -> (B, H, Lq, dv)`` and accepts
- ``key_valid``: ``(B, Lk)`` bool, True where a key takes part (padding mask); padded keys must be finite;
- ``causal_steps``: ``None``, or the number of time steps ``T`` of a *variable-major* token layout (token ``i`` is
  at time ``i % T``). A query at time ``t`` then sees every key at a time ``<= t``: causal in time, not in token
  order, so tokens of the same time step see each other. Needs ``Lq == Lk``.

FAVOR+ (Choromanski et al., "Rethinking Attention with Performers", 2021) replaces ``softmax(q k^T / sqrt(d))``
by ``phi(q) phi(k)^T`` with positive orthogonal random features. Its projection matrix is a buffer and its
counters are extra state, so the state dict carries them and a reloaded model predicts identically. The features
are redrawn every ``redraw_interval`` optimizer steps from a generator seeded by ``(seed, draw number)`` (through
numpy's SeedSequence). Steps are counted by hooking the optimizer (:func:`sfp.models.common.notify_optimizer_steps`),
so gradient accumulation and several forward passes per step (autoregressive training) do not distort the
interval.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from sfp.errors import UserError

ATTENTION_KINDS = ("exact", "favor")
FAVOR_KERNELS = ("softmax", "relu")
RELU_KERNEL_EPSILON = 1e-3  # keeps ReLU features positive so every normaliser is > 0 (as in the Performer code)
CAUSAL_CHUNK_ELEMENTS = 1 << 22  # prefix-sum states held at once by causal FAVOR+ (16 MiB in float32)


def require_whole_steps(length: int, causal_steps: int) -> None:
    """Raise UserError unless ``length`` tokens split into whole groups of ``causal_steps`` time steps."""
    if causal_steps < 1 or length % causal_steps:
        raise UserError(f"causal attention over {length} tokens needs a multiple of causal_steps={causal_steps}")


def step_of_token(length: int, causal_steps: int, device: torch.device) -> Tensor:
    """Time step of each token of a variable-major layout with ``causal_steps`` steps."""
    require_whole_steps(length, causal_steps)
    return torch.arange(length, device=device) % causal_steps


class ExactAttention(nn.Module):
    """Softmax attention through the fused ``scaled_dot_product_attention``; a row with no valid key gives NaN."""

    def forward(
        self, q: Tensor, k: Tensor, v: Tensor, key_valid: Tensor | None = None, causal_steps: int | None = None
    ) -> Tensor:
        length = q.shape[-2]
        if causal_steps == length == k.shape[-2] and key_valid is None:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        mask = None
        if causal_steps is not None:
            step = step_of_token(length, causal_steps, q.device)
            mask = step[None, :] <= step[:, None]
        if key_valid is not None:
            valid = key_valid[:, None, None, :]
            mask = valid if mask is None else mask & valid
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def orthogonal_gaussian_features(n_features: int, dim: int, generator: torch.Generator) -> Tensor:
    """``(n_features, dim)`` random projections: Haar-orthogonal blocks of ``dim`` rows, row norms ~ chi(dim).

    The norms make each row distributed like a standard Gaussian vector, which unbiased softmax features need;
    orthogonality within a block lowers the estimator's variance.
    """
    blocks = []
    for _ in range(math.ceil(n_features / dim)):
        gaussian = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
        q, r = torch.linalg.qr(gaussian)
        blocks.append((q * torch.sign(torch.diagonal(r))).T)  # sign fix: uniform over the orthogonal group
    directions = torch.cat(blocks)[:n_features]
    norms = torch.randn(n_features, dim, generator=generator, dtype=torch.float64).norm(dim=1, keepdim=True)
    return (directions * norms).float()


class FavorAttention(nn.Module):
    """FAVOR+ linear attention with the positive softmax kernel or the ReLU kernel.

    softmax: ``phi(x) = exp(w.x - |x|^2 / 2) / sqrt(m)`` on ``x / d^(1/4)``, so that ``phi(q).phi(k)`` is an
    unbiased estimate of ``exp(q.k / sqrt(d))``. Factors common to a query's numerator and normaliser cancel and
    are not computed (``1 / sqrt(m)``, a query's ``|q|^2`` term); as stabilisers, each query's features are divided
    by their largest value and all keys' by the largest over the valid keys.
    relu: ``phi(x) = relu(w.x) + epsilon`` (a different, non-softmax kernel).
    """

    def __init__(
        self, dim_head: int, n_features: int | None = None, kernel: str = "softmax", redraw_interval: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if kernel not in FAVOR_KERNELS:
            raise UserError(f"unknown FAVOR+ kernel {kernel!r}; choose one of: {', '.join(FAVOR_KERNELS)}")
        if redraw_interval < 0:
            raise UserError(f"redraw_interval must be >= 0 (0 never redraws), got {redraw_interval}")
        self.dim_head = dim_head
        self.n_features = n_features or max(dim_head, round(dim_head * math.log(dim_head)))
        self.kernel = kernel
        self.redraw_interval = redraw_interval
        self.seed = seed
        self.draws = 0
        self.optimizer_steps = 0
        self.register_buffer("projection", self._draw(0))

    def get_extra_state(self) -> dict[str, int]:
        """The counters travel in the state dict as plain ints (no device sync on each optimizer step)."""
        return {"draws": self.draws, "optimizer_steps": self.optimizer_steps}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.draws, self.optimizer_steps = int(state["draws"]), int(state["optimizer_steps"])

    def _draw(self, number: int) -> Tensor:
        seed = int(np.random.SeedSequence((self.seed, number)).generate_state(1)[0])
        generator = torch.Generator().manual_seed(seed)
        return orthogonal_gaussian_features(self.n_features, self.dim_head, generator)

    @torch.no_grad()
    def redraw(self) -> None:
        """Replace the projection by the next draw of this module's seeded sequence."""
        self.draws += 1
        self.projection.copy_(self._draw(self.draws))

    @torch.no_grad()
    def note_optimizer_step(self) -> None:
        """Count one optimizer step; redraw the features when the interval is reached."""
        self.optimizer_steps += 1
        if self.redraw_interval and self.optimizer_steps % self.redraw_interval == 0:
            self.redraw()

    def features(self, x: Tensor, key_valid: Tensor | None = None, is_query: bool = True) -> Tensor:
        """``phi(x)`` of shape ``(B, H, L, m)``; for keys, padded positions get all-zero features.

        A query's ``|x|^2`` term is a factor common to its numerator and normaliser, so it is left out; a key's
        enters the same product as ``w.x`` through one more input column.
        """
        scale = self.dim_head**-0.25
        projection = self.projection.to(x.dtype) * scale
        if self.kernel == "relu":
            phi = F.relu(x @ projection.T) + RELU_KERNEL_EPSILON
        elif is_query:
            logits = x @ projection.T
            phi = logits.sub_(logits.detach().amax(-1, keepdim=True)).exp_()  # in place: mm keeps no output
        else:
            x = torch.cat([x, x.square().sum(-1, keepdim=True)], dim=-1)
            projection = F.pad(projection, (0, 1), value=-0.5 * scale * scale)
            logits = x @ projection.T
            phi = logits.sub_(self._key_stabiliser(logits.detach(), key_valid)).exp_()
        if key_valid is not None:
            phi = torch.where(key_valid[:, None, :, None], phi, 0.0)
        return phi

    def _key_stabiliser(self, logits: Tensor, key_valid: Tensor | None) -> Tensor:
        """The largest logit over the valid keys: a constant factor of every feature, so it cancels."""
        largest = logits.amax(-1)
        if key_valid is not None:
            largest = largest.masked_fill(~key_valid[:, None, :], -torch.inf)
        return largest.amax(-1)[..., None, None]

    def forward(
        self, q: Tensor, k: Tensor, v: Tensor, key_valid: Tensor | None = None, causal_steps: int | None = None
    ) -> Tensor:
        if key_valid is not None:
            v = v.masked_fill(~key_valid[:, None, :, None], 0.0)
        phi_q = self.features(q)
        phi_k = self.features(k, key_valid, is_query=False)
        v_one = F.pad(v, (0, 1), value=1.0)  # a column of ones yields the normaliser in the same products
        if causal_steps is None:
            state = (v_one.transpose(-2, -1) @ phi_k).transpose(-2, -1)  # phi_k's gradient comes out row-major
            out = phi_q @ state
        else:
            out = causal_linear_attention(phi_q, phi_k, v_one, causal_steps)
        return out[..., :-1] / out[..., -1:].clamp_min(torch.finfo(out.dtype).tiny)


def causal_linear_attention(phi_q: Tensor, phi_k: Tensor, v: Tensor, causal_steps: int) -> Tensor:
    """``sum over keys at steps <= step(query) of (phi_q . phi_k) v`` by prefix sums over time steps.

    Tokens are variable-major, so ``(B, H, G*T, .)`` views as ``(B, H, G, T, .)``. Each step's outer products
    ``phi_k v^T`` are summed over the G tokens of that step and prefix-summed over steps, chunk by chunk with a
    carried state, so at most ``CAUSAL_CHUNK_ELEMENTS`` state entries exist at once; under autograd each chunk is
    recomputed in the backward pass (checkpointing) to keep that bound in training too.
    """
    batch, heads, length, n_features = phi_k.shape
    require_whole_steps(length, causal_steps)
    groups, width = length // causal_steps, v.shape[-1]
    phi_q = phi_q.reshape(batch, heads, groups, causal_steps, n_features)
    phi_k = phi_k.reshape(batch, heads, groups, causal_steps, n_features)
    v = v.reshape(batch, heads, groups, causal_steps, width)
    chunk = max(1, CAUSAL_CHUNK_ELEMENTS // (batch * heads * n_features * width))
    state = phi_k.new_zeros(batch, heads, 1, n_features, width)
    outputs = []
    for start in range(0, causal_steps, chunk):
        part = slice(start, start + chunk)
        args = (phi_q[:, :, :, part], phi_k[:, :, :, part], v[:, :, :, part], state)
        if chunk < causal_steps and torch.is_grad_enabled():
            out, state = checkpoint(_causal_chunk, *args, use_reentrant=False)
        else:
            out, state = _causal_chunk(*args)
        outputs.append(out)
    return torch.cat(outputs, dim=3).reshape(batch, heads, length, width)


def _causal_chunk(phi_q: Tensor, phi_k: Tensor, v: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
    prefix = torch.einsum("bhgtm,bhgtd->bhtmd", phi_k, v).cumsum(2) + state
    return torch.einsum("bhgtm,bhtmd->bhgtd", phi_q, prefix), prefix[:, :, -1:]


def make_attention(
    kind: str, dim_head: int, n_features: int | None = None, kernel: str = "softmax", redraw_interval: int = 1000,
    seed: int = 0,
) -> nn.Module:
    """The attention kernel named ``kind`` (``"exact"`` or ``"favor"``)."""
    if kind == "exact":
        return ExactAttention()
    if kind == "favor":
        return FavorAttention(dim_head, n_features, kernel, redraw_interval, seed)
    raise UserError(f"unknown attention {kind!r}; choose one of: {', '.join(ATTENTION_KINDS)}")
