"""Layers of the SpatioTemporal Performer: attention over a token grid, feed-forward, encoder and decoder layers.

Tokens are held as ``(B, N, T, d)``: N variables, T time steps, variable-major. LOCAL attention runs along time
within each variable (the variables fold into the batch, a free view); GLOBAL attention runs over all N*T tokens.
Every sub-block is a pre-norm residual ``x + block(LayerNorm(x))``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn


@dataclass(frozen=True)
class LayerSpec:
    """Sizes and dropout rates shared by every layer; ``d_q_k`` and ``d_v`` are per head."""

    d_model: int
    d_q_k: int
    d_v: int
    n_heads: int
    d_ff: int
    dropout_qkv: float = 0.0
    dropout_attn_out: float = 0.0
    dropout_ff: float = 0.0


class TokenAttention(nn.Module):
    """Multi-head attention of ``x (B, N, T, d)`` over itself or over ``memory (B, N', T', d)``.

    local: each variable's tokens attend to the same variable's tokens only (for cross attention: to the same
    variable of the memory, which must list the query's variables first). The kernel (exact or FAVOR+) does the
    rest; with ``causal`` a token sees only tokens of its own or earlier time steps.
    """

    def __init__(self, spec: LayerSpec, kernel: nn.Module, local: bool, cross: bool = False) -> None:
        super().__init__()
        self.n_heads, self.local, self.cross = spec.n_heads, local, cross
        self.widths = (spec.n_heads * spec.d_q_k, spec.n_heads * spec.d_q_k, spec.n_heads * spec.d_v)
        if cross:
            self.query = nn.Linear(spec.d_model, self.widths[0])
            self.key_value = nn.Linear(spec.d_model, self.widths[1] + self.widths[2])
        else:
            self.query_key_value = nn.Linear(spec.d_model, sum(self.widths))
        self.kernel = kernel
        self.out = nn.Linear(self.widths[2], spec.d_model)
        self.dropout_qkv = nn.Dropout(spec.dropout_qkv)
        self.dropout_out = nn.Dropout(spec.dropout_attn_out)

    def forward(self, x: Tensor, memory: Tensor | None = None, causal: bool = False) -> Tensor:
        batch, n_vars, steps, _ = x.shape
        if self.cross:
            if self.local:
                memory = memory[:, :n_vars]
            q = self.query(x)
            k, v = self.key_value(memory).split(self.widths[1:], dim=-1)
        else:
            q, k, v = self.query_key_value(x).split(self.widths, dim=-1)
        q, k, v = (self._heads(self.dropout_qkv(t)) for t in (q, k, v))
        out = self.kernel(q, k, v, causal_steps=steps if causal else None)
        out = out.transpose(1, 2).reshape(batch, n_vars, steps, self.widths[2])
        return self.dropout_out(self.out(out))

    def _heads(self, t: Tensor) -> Tensor:
        """``(B, N, T, H*e)`` -> ``(B*N, H, T, e)`` (local) or ``(B, H, N*T, e)`` (global), as views."""
        batch, n_vars, steps, width = t.shape
        shape = (batch * n_vars, steps) if self.local else (batch, n_vars * steps)
        return t.reshape(*shape, self.n_heads, width // self.n_heads).transpose(1, 2)


class FeedForward(nn.Sequential):
    """Position-wise ``Linear -> GELU -> Linear -> Dropout`` (one dropout, on the narrow output: on CPU a
    dropout mask costs about as much as the GELU, so none on the wide hidden layer)."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__(
            nn.Linear(spec.d_model, spec.d_ff), nn.GELU(), nn.Linear(spec.d_ff, spec.d_model),
            nn.Dropout(spec.dropout_ff),
        )


class Residual(nn.Module):
    """``x + block(LayerNorm(x), ...)``: the pre-norm residual around every sub-block."""

    def __init__(self, d_model: int, block: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.block = block

    def forward(self, x: Tensor, *args: object, **kwargs: object) -> Tensor:
        return x + self.block(self.norm(x), *args, **kwargs)


class EncoderLayer(nn.Module):
    """Local self-attention, global self-attention, feed-forward."""

    def __init__(self, spec: LayerSpec, local_kernel: nn.Module, global_kernel: nn.Module) -> None:
        super().__init__()
        self.local_attention = Residual(spec.d_model, TokenAttention(spec, local_kernel, local=True))
        self.global_attention = Residual(spec.d_model, TokenAttention(spec, global_kernel, local=False))
        self.feed_forward = Residual(spec.d_model, FeedForward(spec))

    def forward(self, x: Tensor) -> Tensor:
        return self.feed_forward(self.global_attention(self.local_attention(x)))


class DecoderLayer(nn.Module):
    """Local and global self-attention (optionally causal in time), local and global cross-attention to the
    encoder output, feed-forward."""

    def __init__(
        self, spec: LayerSpec, local_kernel: nn.Module, global_kernel: nn.Module, local_cross_kernel: nn.Module,
        global_cross_kernel: nn.Module,
    ) -> None:
        super().__init__()
        self.local_attention = Residual(spec.d_model, TokenAttention(spec, local_kernel, local=True))
        self.global_attention = Residual(spec.d_model, TokenAttention(spec, global_kernel, local=False))
        self.local_cross_attention = Residual(
            spec.d_model, TokenAttention(spec, local_cross_kernel, local=True, cross=True)
        )
        self.global_cross_attention = Residual(
            spec.d_model, TokenAttention(spec, global_cross_kernel, local=False, cross=True)
        )
        self.feed_forward = Residual(spec.d_model, FeedForward(spec))

    def forward(self, x: Tensor, memory: Tensor, causal: bool = False) -> Tensor:
        x = self.global_attention(self.local_attention(x, causal=causal), causal=causal)
        x = self.global_cross_attention(self.local_cross_attention(x, memory), memory)
        return self.feed_forward(x)
