"""The SpatioTemporal Performer's settings, one owner for the series model, the grid backbone and the forecaster."""

from __future__ import annotations

from dataclasses import dataclass

from sfp.options import require


@dataclass(frozen=True)
class PerformerConfig:
    """Token-level model settings.

    d_q_k, d_v: per-head sizes (default ``d_model // n_heads``); d_ff: feed-forward width (default 4 d_model);
    time_emb_dim: Time2Vec size; dropout_*: rates of the embedding, the q/k/v projections, the feed-forward blocks
    and the attention output. Attention in each slot (local: along time within a variable; global: over all
    tokens; the decoder's cross-attention likewise) is ``exact`` or ``favor`` (FAVOR+); n_features (per head,
    default ``d ln d``), kernel (``softmax`` or ``relu``), redraw_interval (optimizer steps between redraws of the
    random features, 0 never) and seed (of those features; drawn from torch's generator when None) are FAVOR+'s.
    causal_decoder: the decoder's self-attention sees only earlier or equal time steps.
    """

    d_model: int = 128
    d_q_k: int | None = None
    d_v: int | None = None
    n_heads: int = 8
    n_encoder_layers: int = 4
    n_decoder_layers: int = 4
    d_ff: int | None = None
    time_emb_dim: int = 6
    dropout_emb: float = 0.0
    dropout_qkv: float = 0.0
    dropout_ff: float = 0.0
    dropout_attn_out: float = 0.0
    local_attention: str = "exact"
    global_attention: str = "favor"
    local_cross_attention: str = "exact"
    global_cross_attention: str = "favor"
    n_features: int | None = None
    kernel: str = "softmax"
    redraw_interval: int = 1000
    causal_decoder: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("d_model", "n_heads", "n_encoder_layers", "n_decoder_layers", "time_emb_dim"):
            require(getattr(self, name) >= 1, f"model.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("d_q_k", "d_v", "d_ff", "n_features"):
            value = getattr(self, name)
            require(value is None or value >= 1, f"model.{name} must be >= 1 (or None), got {value}")
        for name in ("dropout_emb", "dropout_qkv", "dropout_ff", "dropout_attn_out"):
            rate = getattr(self, name)
            require(0.0 <= rate < 1.0, f"model.{name} must be in [0, 1), got {rate!r}")
        # the attention kinds, kernel and redraw interval are checked by the attention modules they build

    @property
    def head_sizes(self) -> tuple[int, int]:
        """``(d_q_k, d_v)`` with their defaults filled in."""
        return self.d_q_k or self.d_model // self.n_heads, self.d_v or self.d_model // self.n_heads
