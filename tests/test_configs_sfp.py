"""The shipped SFP pipeline configs name only options their stages accept (a typo would fail at the stage)."""

import inspect
from pathlib import Path

import lightning as L
import pytest

from sfp.pipeline import REQUIRED, load_config
from sfp.planning.self_training import SFPModule
from sfp.planning.world_model_module import WorldModelModule

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TRAINER_OPTIONS = set(inspect.signature(L.Trainer).parameters) | {"checkpoint_every"}


@pytest.mark.parametrize("name", ["storms", "navier_stokes", "flame"])
def test_sfp_config_options_exist(name):
    config = load_config(CONFIGS / f"{name}_sfp.yaml")
    assert set(REQUIRED) <= set(config)
    assert set(config["sfp"]) <= set(inspect.signature(SFPModule).parameters)
    assert set(config["world_model"]) <= set(inspect.signature(WorldModelModule).parameters)
    for section in ("agent_trainer", "world_model_trainer", "sfp_trainer"):
        assert set(config[section]) <= TRAINER_OPTIONS, section
