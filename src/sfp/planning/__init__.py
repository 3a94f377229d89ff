"""The SFP parts: the generative world model (stage 1), rewards, the planner and self-training.

Names are imported from their modules on first access (PEP 562), so ``import sfp.planning`` stays cheap and a
module here may import its siblings (``self_training`` imports ``world_model_module``) without a cycle.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "quantizer": ("Quantized", "VectorQuantizer", "usage_statistics"),
    "world_model": ("WorldModel", "WorldModelOutput"),
    "world_model_module": ("WorldModelModule",),
    "diagnostics": ("Diagnostics", "diagnose"),
    "rewards": ("AdditiveReward", "Reward", "WeightedSum", "available_rewards", "get_reward", "register_reward",
                "reward_for_task"),
    "planner": ("BeamSearchPlanner", "BestOfKPlanner", "MosaicPlanner", "PLANNERS", "PlanResult", "Planner",
                "build_planner"),
    "options": ("Imagination", "PlannerOptions", "PseudoLabels", "WorldModelArchitecture"),
    "pseudo_labels": ("make_label", "raise_label", "spectrum_label"),
    "self_training": ("SFPModule",),
    "selection": ("SelectionGain", "SelectionGains", "selection_gains"),
    "weighted_labels": ("weighted_label",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    """Import an exported name from its module on first access (then cached in this module)."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Exported names show up before their first access."""
    return sorted({*globals(), *__all__})
