"""The SpatioTemporal Performer: a Spacetimeformer-style encoder-decoder over (variable, time step) tokens.

The encoder reads the context tokens (values given), the decoder the target tokens (values unknown: 0 and "not
given", or partly given through ``target_y_in``) and cross-attends to the encoder; a linear read-out maps each
decoder token back to its value. Attention in every slot is pluggable: ``"exact"`` (fused softmax) or ``"favor"``
(FAVOR+, linear in the number of tokens). Default: exact along time (short local sequences), FAVOR+ over all
tokens (global).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from sfp.errors import UserError
from sfp.models.common import require_positive
from sfp.models.performer.attention import make_attention
from sfp.models.performer.embedding import TokenEmbedding
from sfp.models.performer.layers import DecoderLayer, EncoderLayer, LayerSpec

SEEDS_PER_MODEL = 10_000  # FAVOR+ modules of one model take seeds seed * SEEDS_PER_MODEL + slot


class PerformerEncoderDecoder(nn.Module):
    """The token-level model shared by the series model and the grid backbone.

    d_q_k, d_v: per-head sizes (default ``d_model // n_heads``); d_ff: feed-forward width (default 4 d_model).
    *_attention: ``"exact"`` or ``"favor"`` for each slot. n_features, kernel, redraw_interval, seed: FAVOR+
    settings (features per head, ``"softmax"`` or ``"relu"``, optimizer steps between redraws, 0 = never; the
    seed of the random features, drawn from torch's global generator when None).
    causal_decoder: the decoder's self-attention sees only earlier or equal time steps, so a forecast of step t
    does not depend on later steps' tokens.
    """

    def __init__(
        self, value_dim: int = 1, d_x: int = 1, d_model: int = 128, d_q_k: int | None = None,
        d_v: int | None = None, n_heads: int = 8, n_encoder_layers: int = 4, n_decoder_layers: int = 4,
        d_ff: int | None = None, time_emb_dim: int = 6, dropout_emb: float = 0.0, dropout_qkv: float = 0.0,
        dropout_ff: float = 0.0, dropout_attn_out: float = 0.0, local_attention: str = "exact",
        global_attention: str = "favor", local_cross_attention: str = "exact", global_cross_attention: str = "favor",
        n_features: int | None = None, kernel: str = "softmax", redraw_interval: int = 1000,
        causal_decoder: bool = False, seed: int | None = None,
    ) -> None:
        super().__init__()
        if seed is None:  # drawn like the initial weights, so torch.manual_seed fixes both
            seed = int(torch.randint(0, 2**31 - 1, ()))
        d_q_k = d_q_k or d_model // max(n_heads, 1)
        d_v = d_v or d_model // max(n_heads, 1)
        require_positive(
            value_dim=value_dim, d_x=d_x, d_model=d_model, d_q_k=d_q_k, d_v=d_v, n_heads=n_heads,
            n_encoder_layers=n_encoder_layers, n_decoder_layers=n_decoder_layers, time_emb_dim=time_emb_dim,
        )
        for name, rate in dict(
            dropout_emb=dropout_emb, dropout_qkv=dropout_qkv, dropout_ff=dropout_ff, dropout_attn_out=dropout_attn_out
        ).items():
            if not 0.0 <= rate < 1.0:
                raise UserError(f"{name} must be in [0, 1), got {rate!r}")
        spec = LayerSpec(
            d_model, d_q_k, d_v, n_heads, d_ff or 4 * d_model, dropout_qkv, dropout_attn_out, dropout_ff
        )
        kernel_for = self._kernel_factory(d_q_k, n_features, kernel, redraw_interval, seed)
        self.causal_decoder = causal_decoder
        self.embedding = TokenEmbedding(value_dim, d_x, d_model, time_emb_dim, dropout_emb)
        self.encoder = nn.ModuleList(
            EncoderLayer(spec, kernel_for(local_attention), kernel_for(global_attention))
            for _ in range(n_encoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(d_model)
        self.decoder = nn.ModuleList(
            DecoderLayer(
                spec, kernel_for(local_attention), kernel_for(global_attention), kernel_for(local_cross_attention),
                kernel_for(global_cross_attention),
            )
            for _ in range(n_decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(d_model)
        self.readout = nn.Linear(d_model, value_dim)

    @staticmethod
    def _kernel_factory(
        dim_head: int, n_features: int | None, kernel: str, redraw_interval: int, seed: int
    ) -> Callable[[str], nn.Module]:
        slots = iter(range(SEEDS_PER_MODEL))

        def kernel_for(kind: str) -> nn.Module:
            return make_attention(
                kind, dim_head, n_features, kernel, redraw_interval, seed * SEEDS_PER_MODEL + next(slots)
            )

        return kernel_for

    def forward_tokens(
        self, context_x: Tensor, context: Tensor, target_x: Tensor, target: Tensor, context_variables: Tensor,
        target_variables: Tensor,
    ) -> Tensor:
        """Predict the target tokens' values.

        context ``(B, Nc, Tc, v)`` and target ``(B, Nt, Tt, v)`` values (NaN = not given) at time features
        ``(B, T, d_x)``; variable embeddings ``(Nc, d)`` and ``(Nt, d)``, the target's variables being the first
        Nt of the context's. Returns ``(B, Nt, Tt, v)``.
        """
        memory = self.embedding(context_x, context, context_variables)
        for layer in self.encoder:
            memory = layer(memory)
        memory = self.encoder_norm(memory)
        x = self.embedding(target_x, target, target_variables, first_step=context.shape[2])
        for layer in self.decoder:
            x = layer(x, memory, self.causal_decoder)
        return self.readout(self.decoder_norm(x))


class SpatioTemporalPerformer(PerformerEncoderDecoder):
    """SpatioTemporal Performer for sensor series: each (time step, variable) value is one token.

    ``forward(context_x (B, Tc, d_x), context_y (B, Tc, d_y_context), target_x (B, Tt, d_x), target_y_in
    (B, Tt, d_y_target) or None) -> (B, Tt, d_y_target)``. The targets are the first ``d_y_target`` context
    variables. Non-finite values (missing context, or target values not yet known) enter as "not given";
    ``target_y_in=None`` means no target value is known. Other options: see :class:`PerformerEncoderDecoder`.
    """

    def __init__(self, d_y_context: int, d_y_target: int | None = None, d_x: int = 1, **options: object) -> None:
        d_y_target = d_y_target or d_y_context
        require_positive(d_y_context=d_y_context, d_y_target=d_y_target)
        if d_y_target > d_y_context:
            raise UserError(f"d_y_target ({d_y_target}) cannot exceed d_y_context ({d_y_context})")
        super().__init__(value_dim=1, d_x=d_x, **options)
        self.d_x, self.d_y_context, self.d_y_target = d_x, d_y_context, d_y_target
        self.variables = nn.Embedding(d_y_context, self.embedding.d_model)

    def forward(
        self, context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y_in: Tensor | None = None
    ) -> Tensor:
        self._check_inputs(context_x, context_y, target_x, target_y_in)
        if target_y_in is None:
            target_y_in = context_y.new_full((*target_x.shape[:2], self.d_y_target), torch.nan)
        variables = self.variables.weight
        out = self.forward_tokens(
            context_x, context_y.transpose(1, 2)[..., None], target_x, target_y_in.transpose(1, 2)[..., None],
            variables, variables[: self.d_y_target],
        )
        return out[..., 0].transpose(1, 2)

    def _check_inputs(
        self, context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y_in: Tensor | None
    ) -> None:
        _check_shape("context_y", context_y, (None, None, self.d_y_context))
        batch, context_len = context_y.shape[:2]
        _check_shape("context_x", context_x, (batch, context_len, self.d_x))
        _check_shape("target_x", target_x, (batch, None, self.d_x))
        if target_y_in is not None:
            _check_shape("target_y_in", target_y_in, (batch, target_x.shape[1], self.d_y_target))


def _check_shape(name: str, tensor: Tensor, shape: tuple[int | None, ...]) -> None:
    """Raise UserError unless ``tensor`` has ``shape`` (None matches any size)."""
    if tensor.ndim != len(shape) or any(want not in (None, got) for want, got in zip(shape, tensor.shape)):
        wanted = ", ".join("*" if size is None else str(size) for size in shape)
        raise UserError(f"{name} must have shape ({wanted}), got {tuple(tensor.shape)}")
