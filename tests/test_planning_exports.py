"""`sfp.planning` exports: every public name resolves to its defining module's object, imported lazily."""

import importlib
import subprocess
import sys

import pytest

import sfp.planning

DEFINED_IN = {
    "quantizer": ["Quantized", "VectorQuantizer", "usage_statistics"],
    "world_model": ["WorldModel", "WorldModelOutput"],
    "world_model_module": ["WorldModelModule"],
    "diagnostics": ["Diagnostics", "diagnose"],
    "rewards": ["AdditiveReward", "Reward", "WeightedSum", "available_rewards", "get_reward", "register_reward",
                "reward_for_task"],
    "planner": ["BeamSearchPlanner", "BestOfKPlanner", "MosaicPlanner", "PLANNERS", "PlanResult", "Planner",
                "build_planner"],
    "options": ["Imagination", "PlannerOptions", "PseudoLabels", "WorldModelArchitecture"],
    "pseudo_labels": ["make_label", "raise_label", "spectrum_label"],
    "self_training": ["SFPModule"],
    "selection": ["SelectionGain", "SelectionGains", "selection_gains"],
    "weighted_labels": ["weighted_label"],
}


@pytest.mark.parametrize("module, name", [(m, n) for m, names in DEFINED_IN.items() for n in names])
def test_each_name_is_its_modules_object(module, name):
    assert getattr(sfp.planning, name) is getattr(importlib.import_module(f"sfp.planning.{module}"), name)
    assert name in sfp.planning.__all__ and name in dir(sfp.planning)


def test_all_lists_exactly_these_names_and_unknown_names_fail():
    assert sorted(sfp.planning.__all__) == sorted(n for names in DEFINED_IN.values() for n in names)
    with pytest.raises(AttributeError, match="no attribute 'Planner9'"):
        _ = sfp.planning.Planner9


@pytest.mark.slow
def test_importing_the_package_or_the_world_model_does_not_load_lightning():
    code = ("import sys, sfp.planning; from sfp.planning import WorldModel, get_reward; "
            "print('lightning' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
