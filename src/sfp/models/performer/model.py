"""The SpatioTemporal Performer: a Spacetimeformer-style encoder-decoder over (variable, time step) tokens.

The encoder reads the context tokens (values given), the decoder the target tokens (values unknown: 0 and "not
given", or partly given through ``target_y_in``) and cross-attends to the encoder; a linear read-out maps each
decoder token back to its value. Attention in every slot is pluggable: ``"exact"`` (fused softmax) or ``"favor"``
(FAVOR+, linear in the number of tokens). Default: exact along time (short local sequences), FAVOR+ over all
tokens (global).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from sfp.errors import UserError
from sfp.models.common import require_positive
from sfp.models.performer.attention import make_attention
from sfp.models.performer.config import PerformerConfig
from sfp.models.performer.embedding import TokenEmbedding
from sfp.models.performer.layers import DecoderLayer, EncoderLayer, LayerSpec
from sfp.options import coerce

SEEDS_PER_MODEL = 10_000  # FAVOR+ modules of one model take seeds seed * SEEDS_PER_MODEL + slot


class PerformerEncoderDecoder(nn.Module):
    """The token-level model shared by the series model and the grid backbone.

    value_dim: values per token; d_x: time features; config: :class:`PerformerConfig` (or a mapping of it).
    """

    def __init__(self, value_dim: int = 1, d_x: int = 1,
                 config: PerformerConfig | Mapping[str, object] | None = None) -> None:
        super().__init__()
        require_positive(value_dim=value_dim, d_x=d_x)
        self.config = c = coerce(PerformerConfig, config)
        seed = c.seed
        if seed is None:  # drawn like the initial weights, so torch.manual_seed fixes both
            seed = int(torch.randint(0, 2**31 - 1, ()))
        d_q_k, d_v = c.head_sizes
        spec = LayerSpec(c.d_model, d_q_k, d_v, c.n_heads, c.d_ff or 4 * c.d_model, c.dropout_qkv,
                         c.dropout_attn_out, c.dropout_ff)
        kernel_for = self._kernel_factory(d_q_k, c.n_features, c.kernel, c.redraw_interval, seed)
        self.causal_decoder = c.causal_decoder
        self.embedding = TokenEmbedding(value_dim, d_x, c.d_model, c.time_emb_dim, c.dropout_emb)
        self.encoder = nn.ModuleList(
            EncoderLayer(spec, kernel_for(c.local_attention), kernel_for(c.global_attention))
            for _ in range(c.n_encoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(c.d_model)
        self.decoder = nn.ModuleList(
            DecoderLayer(
                spec, kernel_for(c.local_attention), kernel_for(c.global_attention),
                kernel_for(c.local_cross_attention), kernel_for(c.global_cross_attention),
            )
            for _ in range(c.n_decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(c.d_model)
        self.readout = nn.Linear(c.d_model, value_dim)

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
    """SpatioTemporal Performer for sensor series: each time step of a group of variables is one token.

    ``forward(context_x (B, Tc, d_x), context_y (B, Tc, d_y_context), target_x (B, Tt, d_x), target_y_in
    (B, Tt, d_y_target) or None) -> (B, Tt, d_y_target)``. The targets are the first ``d_y_target`` context
    variables. Non-finite values (missing context, or target values not yet known) enter as "not given";
    ``target_y_in=None`` means no target value is known. ``config``: see :class:`PerformerConfig`.

    variables_per_token: 1 (the default) gives Spacetimeformer's layout, one token per (variable, step), where
    attention across variables is learned from the data; ``d_y_context`` puts a whole time step in one token (the
    "temporal" layout of Informer-style models: far fewer tokens, cross-variable structure in the embedding);
    values in between put that many consecutive variables in a token, the last group padded with zeros.
    """

    def __init__(self, d_y_context: int, d_y_target: int | None = None, d_x: int = 1,
                 config: PerformerConfig | Mapping[str, object] | None = None, variables_per_token: int = 1) -> None:
        d_y_target = d_y_target or d_y_context
        require_positive(d_y_context=d_y_context, d_y_target=d_y_target, variables_per_token=variables_per_token)
        if d_y_target > d_y_context:
            raise UserError(f"d_y_target ({d_y_target}) cannot exceed d_y_context ({d_y_context})")
        if variables_per_token > d_y_context:
            raise UserError(f"variables_per_token ({variables_per_token}) cannot exceed d_y_context ({d_y_context})")
        super().__init__(value_dim=variables_per_token, d_x=d_x, config=config)
        self.d_x, self.d_y_context, self.d_y_target = d_x, d_y_context, d_y_target
        self.variables_per_token = variables_per_token
        self.variables = nn.Embedding(-(-d_y_context // variables_per_token), self.embedding.d_model)

    def forward(
        self, context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y_in: Tensor | None = None
    ) -> Tensor:
        self._check_inputs(context_x, context_y, target_x, target_y_in)
        if target_y_in is None:
            target_y_in = context_y.new_full((*target_x.shape[:2], self.d_y_target), torch.nan)
        context, target = self._tokens(context_y), self._tokens(target_y_in)
        variables = self.variables.weight
        out = self.forward_tokens(context_x, context, target_x, target, variables, variables[: target.shape[1]])
        return out.transpose(1, 2).flatten(2)[..., : self.d_y_target]

    def _tokens(self, values: Tensor) -> Tensor:
        """``(B, T, d)`` -> ``(B, groups, T, variables_per_token)``, the last group padded with zeros."""
        group = self.variables_per_token
        missing = -values.shape[2] % group
        if missing:
            values = torch.cat([values, values.new_zeros((*values.shape[:2], missing))], dim=2)
        return values.unflatten(2, (-1, group)).transpose(1, 2)

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
