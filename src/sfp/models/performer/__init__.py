"""SpatioTemporal Performer: Spacetimeformer-style (variable, time) tokens with exact or FAVOR+ attention."""

from sfp.models.performer.attention import (
    ExactAttention,
    FavorAttention,
    attach_feature_redraw,
    make_attention,
    note_optimizer_step,
)
from sfp.models.performer.grid import PerformerGridBackbone
from sfp.models.performer.model import PerformerEncoderDecoder, SpatioTemporalPerformer

__all__ = [
    "ExactAttention",
    "FavorAttention",
    "PerformerEncoderDecoder",
    "PerformerGridBackbone",
    "SpatioTemporalPerformer",
    "attach_feature_redraw",
    "make_attention",
    "note_optimizer_step",
]
