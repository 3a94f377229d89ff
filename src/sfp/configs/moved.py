"""Config keys of earlier sfp versions and where they live now: an old config fails with one line naming the new key."""

from __future__ import annotations

import inspect
from collections.abc import Container, Mapping
from typing import Any

from sfp.data.options import MOVED as DATA_MODULE
from sfp.errors import UserError
from sfp.forecasting.moved import GONE, forecaster_moves
from sfp.options import grouped
from sfp.utils import import_object

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
        if prefix == "" and key == "surrogate_soft_csi":
            raise UserError("surrogate_soft_csi is surrogate_loss now: write surrogate_loss: {name: soft_csi, ...the "
                            "same options}")
        if key in moves:
            target = moves[key]
            if target == GONE:
                raise UserError(f"{prefix}{key} was removed; delete it from the config")
            raise UserError(f"{prefix}{key} moved to {prefix}{target}")


def _data_moves(class_path: Any) -> tuple[Mapping[str, str], Container[str]]:
    """The moved constructor arguments of sfp's data module ``class_path`` and those it takes today (a class of
    another package, or one that does not import: none moved)."""
    if not str(class_path).startswith("sfp."):
        return {}, ()
    try:
        cls = import_object(str(class_path))
    except UserError:
        return {}, ()
    return DATA_MODULE, inspect.signature(cls).parameters


def check_data(configs: list[Mapping[str, Any]], argv: list[str]) -> None:
    """Old keys of sfp's data modules, in the configs' ``data`` sections or among ``--data.init_args.*`` overrides."""
    class_path = None
    for config in configs:
        data = config.get("data")
        if not isinstance(data, Mapping) or not isinstance(data.get("init_args"), Mapping):
            continue
        class_path = data.get("class_path", class_path)
        moves, accepted = _data_moves(class_path)
        _check_augment(class_path, data["init_args"].get("augment"))
        check({key: value for key, value in data["init_args"].items() if key not in accepted}, moves,
              "data.init_args.")
    for i, item in enumerate(argv[:-1]):
        if item in ("--data", "--data.class_path"):
            class_path = argv[i + 1]
    moves, accepted = _data_moves(class_path)
    check_arguments(argv, {"data.init_args.": {key: moves[key] for key in moves if key not in accepted}})
    for key, value in zip(argv, argv[1:]):
        if key == "--data.init_args.augment":
            _check_augment(class_path, {"true": True, "false": False}.get(value.lower()))


def _check_augment(class_path: Any, value: Any) -> None:
    """A series module's ``augment`` is an option group (a radar module's is a switch)."""
    if str(class_path).endswith("SeriesDataModule") and isinstance(value, bool):
        raise UserError("data.init_args.augment is a section now (noise_std, freq_noise_std): write augment: {} "
                        "for the defaults, or augment: null for none")


def upgrade_stored(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Settings a stage or table cell stored under an earlier sfp, with their keys where they live now: a data
    module's flat arguments in its option groups, ``surrogate_soft_csi`` as ``surrogate_loss: {name: soft_csi}``."""
    upgraded = {key: upgrade_data(value) if key == "data" else value for key, value in stored.items()}
    if "surrogate_soft_csi" in upgraded:
        options = upgraded.pop("surrogate_soft_csi")
        upgraded["surrogate_loss"] = None if options is None else {"name": "soft_csi", **options}
    return upgraded


def upgrade_data(data: Any) -> Any:
    """A data section stored by an earlier sfp (flat constructor arguments) with its arguments in today's option
    groups, so that today's parser reads it; anything else unchanged."""
    if not isinstance(data, Mapping) or not isinstance(data.get("init_args"), Mapping):
        return data
    moves, accepted = _data_moves(data.get("class_path"))
    return {**data, "init_args": grouped(data["init_args"], moves, accepted)}


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
