"""Config keys of earlier sfp versions and where they live now: an old config fails with one line naming the new key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sfp.errors import UserError
from sfp.forecasting.moved import GONE, forecaster_moves

_ARCHITECTURE = ("in_frames", "out_frames", "channels", "width", "encoder_blocks", "decoder_blocks", "downsample",
                 "code_dim", "codebook_size", "decay", "dead_code_threshold")
_IMAGINATION = ("samples", "candidates", "temperature")

WORLD_MODEL_MODULE: dict[str, str] = {
    **{key: f"architecture.{key}" for key in _ARCHITECTURE},
    **{key: f"imagination.{key}" for key in _IMAGINATION},
    "l1_weight": GONE, "agent_class": GONE,
}
SFP_MODULE: dict[str, str] = {
    **{key: f"planner.imagination.{key}" for key in _IMAGINATION},
    "beam_width": "planner.beam_width", "expansions": "planner.expansions",
    "pseudo_label": "pseudo_labels.kind", "pseudo_loss": "pseudo_labels.loss", "pseudo_weight": "pseudo_labels.weight",
    "lambda_warmup_steps": "pseudo_labels.warmup_steps", "refresh_every": "pseudo_labels.refresh_every",
    "agent_class": GONE,
}
PIPELINE: dict[str, str] = {"seed": "seed_everything", "evaluate": GONE}


def moves_for(class_path: str) -> Mapping[str, str]:
    """The moved constructor arguments of the class a config names (by its class name)."""
    name = str(class_path).replace(":", ".").rpartition(".")[2]
    return {"WorldModelModule": WORLD_MODEL_MODULE, "SFPModule": SFP_MODULE}.get(name) or forecaster_moves(name)


def check(arguments: Mapping[str, Any], moves: Mapping[str, str], prefix: str) -> None:
    """Raise one line for the first argument in ``arguments`` that ``moves`` says has moved (or is gone)."""
    for key, value in arguments.items():
        if key == "planner" and isinstance(value, str):
            raise UserError(f"{prefix}planner is a section now: write {prefix}planner.kind: {value}")
        if key in moves:
            target = moves[key]
            if target == GONE:
                raise UserError(f"{prefix}{key} was removed; delete it from the config")
            raise UserError(f"{prefix}{key} moved to {prefix}{target}")


def check_pipeline(config: Mapping[str, Any]) -> None:
    """Old keys anywhere in a pipeline config (a mapping as read from YAML)."""
    check(config, PIPELINE, "")
    for section, moves in (("world_model", WORLD_MODEL_MODULE), ("sfp", SFP_MODULE)):
        if isinstance(config.get(section), Mapping):
            check(config[section], moves, f"{section}.")
    agent = config.get("agent")
    if isinstance(agent, Mapping) and isinstance(agent.get("init_args"), Mapping):
        check(agent["init_args"], moves_for(agent.get("class_path", "")), "agent.init_args.")


def check_fit(config: Mapping[str, Any]) -> None:
    """Old keys in the model section of an ``sfp fit`` config."""
    model = config.get("model")
    if isinstance(model, Mapping) and isinstance(model.get("init_args"), Mapping):
        check(model["init_args"], moves_for(model.get("class_path", "")), "model.init_args.")


def check_arguments(argv: list[str], sections: Mapping[str, Mapping[str, str]]) -> None:
    """Old keys among ``--section.key value`` command-line overrides; ``sections`` maps a prefix to its moves."""
    for item in argv:
        if item == "--set" or item.startswith("--set="):
            raise UserError("--set KEY=VALUE is gone: write --KEY VALUE (e.g. --sfp.pseudo_labels.weight 3)")
        if not item.startswith("--"):
            continue
        key = item[2:].partition("=")[0]
        for prefix, moves in sections.items():
            if key.startswith(prefix) and "." not in key[len(prefix):]:
                check({key[len(prefix):]: None}, moves, prefix)
