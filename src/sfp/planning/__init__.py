"""The SFP parts: the generative world model (stage 1), rewards, the planner and self-training."""

from sfp.planning.diagnostics import diagnose
from sfp.planning.quantizer import Quantized, VectorQuantizer
from sfp.planning.world_model import WorldModel, WorldModelOutput
from sfp.planning.world_model_module import WorldModelModule, usage_statistics

__all__ = [
    "Quantized", "VectorQuantizer", "WorldModel", "WorldModelOutput", "WorldModelModule", "diagnose",
    "usage_statistics",
]
