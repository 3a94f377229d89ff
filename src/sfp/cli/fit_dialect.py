"""``sfp fit | validate | test | predict`` read the pipeline's words: one dialect for every command.

A config's ``agent`` (or, in a config without one, its ``world_model``: :class:`~sfp.planning.WorldModelModule`'s
arguments), the matching ``agent_trainer`` / ``world_model_trainer`` section and ``run_dir`` are what Lightning's CLI
calls ``model``, ``trainer`` and ``trainer.default_root_dir``; ``--agent.init_args.x``, ``--agent_trainer.x``,
``--world_model.x`` and ``--run_dir`` override them. So a pipeline config trains its agent with ``sfp fit``, with the
pipeline's data and settings; its other sections (``sfp``, the comparisons, ...) belong to the pipeline and are set
aside, named in one line. Lightning's own words (``model``, ``trainer``) are read too.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Literal

import yaml

from sfp.run_spec import RunSpec

Role = Literal["agent", "world_model"]
WORLD_MODEL_CLASS = "sfp.planning.WorldModelModule"
_SHARED = {"data", "seed_everything", "checkpoint_every", "force"}  # the same key in both dialects
_MODELS = {"agent", "agent_trainer", "world_model", "world_model_trainer", "run_dir"}
PIPELINE_ONLY = {field.name for field in dataclasses.fields(RunSpec)} - _SHARED - _MODELS


def role_of(configs: list[dict[str, Any]], argv: list[str]) -> Role | None:
    """Which model the configs (or overrides) in the pipeline's words train: the agent where one is named, else
    the world model; None for a config in Lightning's words alone."""
    keys = {key for config in configs for key in config} | {item[2:].partition("=")[0].partition(".")[0]
                                                            for item in argv if item.startswith("--")}
    if keys & {"agent", "agent_trainer"}:
        return "agent"
    if keys & {"world_model", "world_model_trainer"}:
        return "world_model"
    return "agent" if "run_dir" in keys else None


def lightning_config(config: dict[str, Any], role: Role) -> tuple[dict[str, Any], list[str]]:
    """``config`` in Lightning's words for the model ``role`` names, and the sections it set aside (sorted)."""
    other: Role = "world_model" if role == "agent" else "agent"
    aside = sorted(key for key in config if key in PIPELINE_ONLY or key in (other, f"{other}_trainer"))
    result = {key: value for key, value in config.items() if key not in _MODELS and key not in aside}
    if role in config:
        result["model"] = (config[role] if role == "agent"
                           else {"class_path": WORLD_MODEL_CLASS, "init_args": config[role] or {}})
    trainer = dict(config.get("trainer") or {})
    trainer.update(config.get(f"{role}_trainer") or {})
    if "run_dir" in config:
        trainer["default_root_dir"] = config["run_dir"]
    if trainer:
        result["trainer"] = trainer
    return result, aside


def lightning_arguments(argv: list[str], role: Role) -> list[str]:
    """Overrides in the pipeline's words (``--agent.init_args.x``, ``--agent_trainer.x``, ``--run_dir``,
    ``--world_model.x``) in Lightning's."""
    prefixes = {"--agent_trainer.": "--trainer.", "--world_model_trainer.": "--trainer.", "--agent.": "--model.",
                "--world_model.": "--model.init_args.", "--run_dir": "--trainer.default_root_dir"}
    exact = {"--agent": "--model"} if role == "agent" else {}
    if role == "world_model":
        del prefixes["--agent."]
    result = []
    for item in argv:
        key, equals, value = item.partition("=")
        if key in exact:
            key = exact[key]
        else:
            key = next((new + key[len(old):] for old, new in prefixes.items()
                        if key == old or (old.endswith(".") and key.startswith(old))), key)
        result.append(key + equals + value)
    return result


def in_pipeline_words(message: str, role: Role) -> str:
    """A parser's message about Lightning's keys in the pipeline's words (``model.init_args.x`` -> ``agent...``)."""
    model = "agent.init_args." if role == "agent" else "world_model."
    message = re.sub(r"(?<![\w.])trainer\.default_root_dir", "run_dir", message)
    message = re.sub(r"(?<![\w.])model\.init_args\.", model, message)
    message = re.sub(r"(?<![\w.])model(?![\w.])", role, message)
    return re.sub(r"(?<![\w.])trainer(?=[.\"' ]|$)", f"{role}_trainer", message)


def write_lightning_configs(argv: list[str], configs: dict[Path, dict[str, Any]], role: Role,
                            folder: Path) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """``argv`` with each ``--config FILE`` replaced by its translation written into ``folder`` and its overrides
    translated; the translated configs; and the sections set aside."""
    translated, results, aside = {}, [], set()
    for index, (path, config) in enumerate(configs.items()):
        result, skipped = lightning_config(config, role)
        results.append(result)
        aside.update(skipped)
        translated[str(path)] = folder / f"{index}-{path.name}"
        translated[str(path)].write_text(yaml.safe_dump(result, sort_keys=False))
    argv = [str(translated.get(item, item)) for item in argv]
    argv = [f"--config={translated[item[9:]]}" if item.startswith("--config=") and item[9:] in translated else item
            for item in argv]
    return lightning_arguments(argv, role), results, sorted(aside)
