"""SpatioTemporal Performer: Spacetimeformer-style (variable, time) tokens with exact or FAVOR+ attention."""

from sfp.models.performer.attention import (
    ExactAttention,
    FavorAttention,
    make_attention,
)
from sfp.models.performer.config import PerformerConfig
from sfp.models.performer.grid import PerformerGridBackbone
from sfp.models.performer.model import PerformerEncoderDecoder, SpatioTemporalPerformer

__all__ = [
    "ExactAttention",
    "FavorAttention",
    "PerformerConfig",
    "PerformerEncoderDecoder",
    "PerformerGridBackbone",
    "SpatioTemporalPerformer",
    "make_attention",
]
