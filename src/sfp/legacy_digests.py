"""The settings hashes sfp stored before stages kept their settings (run manifests and table cells until
2026-12-07), frozen as they were: only to recognise a finished stage or cell made with today's settings, once, so
that it is upgraded to the stored-settings form (:mod:`sfp.manifest`, :mod:`sfp.table.cells`) instead of re-run.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from sfp.data.options import MOVED as DATA_MODULE
from sfp.stage_graph import RENAMED

_FINE_TUNING = ("sfp.lr", "sfp.weight_decay", "sfp_trainer")
_SECTIONS = {
    "data": ("data", "seed_everything"), "agent": ("agent", "agent_trainer", "agent_patience"),
    "baseline": _FINE_TUNING, "world_model": ("world_model", "world_model_trainer", "world_model_from"),
    "sfp": ("sfp", "sfp_trainer"), "baseline_time": ("equal_time_baseline", *_FINE_TUNING),
    "surrogate": ("surrogate_baseline", "surrogate_weights", *_FINE_TUNING),
    "evaluate": (), "report": ("report",),
}
_NEEDS = {
    "data": (), "agent": ("data",), "baseline": ("agent",), "world_model": ("data",),
    "sfp": ("agent", "world_model"), "baseline_time": ("agent", "sfp"), "surrogate": ("baseline", "sfp"),
    "evaluate": ("baseline", "sfp", "baseline_time", "surrogate"), "report": ("evaluate",),
}
_ORDER = ("data", "world_model", "agent", "baseline", "sfp", "baseline_time", "surrogate", "evaluate", "report")
_VERSIONS = {"evaluate": 2}
# options in a hashed section that the hashes never saw, left out at their defaults (those from sfp.gauges on came
# with the stored settings: a manifest from before them was hashed without them)
_ADDED_LATER = {("sfp", "planner", "centring"): "none", ("sfp", "planner", "wet"): None, ("sfp", "gauges"): 0.0,
                ("data", "init_args", "train_fraction"): 1.0, ("sfp", "pseudo_labels", "beta"): None}
_CELL_KEYS = ("name", "seed_everything", "checkpoint_every", "report", "agent_patience", "world_model_from",
              "equal_time_baseline", "surrogate_baseline", "surrogate_weights", "data", "agent", "world_model", "sfp",
              "agent_trainer", "world_model_trainer", "sfp_trainer")  # a cell's settings as they were then


def _without_added_defaults(section: str, value: Any) -> Any:
    value = copy.deepcopy(value)
    for (first, *parents, last), default in _ADDED_LATER.items():
        node = value if first == section else None
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node and node[last] == default:
            del node[last]
    return value


def _flat_data(value: Any) -> Any:
    """A data section's option groups as the flat constructor arguments the hashes saw."""
    if not isinstance(value, dict) or not isinstance(value.get("init_args"), dict):
        return value
    arguments = copy.deepcopy(value["init_args"])
    for old, new in DATA_MODULE.items():
        group, field = new.split(".")
        if isinstance(arguments.get(group), dict) and field in arguments[group]:
            arguments[old] = arguments[group].pop(field)
    groups = {new.split(".")[0] for new in DATA_MODULE.values()}
    return {**value, "init_args": {key: item for key, item in arguments.items() if not (key in groups and item == {})}}


def _section(config: dict[str, Any], section: str) -> Any:
    value = config.get(section)
    return _without_added_defaults(section, _flat_data(value) if section == "data" else value)


def _setting(config: dict[str, Any], key: str) -> Any:
    section, _, option = key.partition(".")
    value = _section(config, section)
    return value.get(option) if option and isinstance(value, dict) else value


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stage_digests(config: dict[str, Any]) -> dict[str, str]:
    """Each stage's old hash (by the stage's name then): its own settings and the hashes of the stages it
    needed."""
    digests: dict[str, str] = {}
    for stage in _ORDER:
        parts = [[_setting(config, key) for key in _SECTIONS[stage]], [digests[need] for need in _NEEDS[stage]]]
        if stage in _VERSIONS:
            parts.append(_VERSIONS[stage])
        digests[stage] = _hash(parts)
    return digests


def legacy_name(stage: str) -> str:
    """The name the hashes knew ``stage`` (today's name) by."""
    return {new: old for old, new in RENAMED.items()}.get(stage, stage)


def legacy_code(stage: str) -> int:
    """The code version ``stage`` (today's name) had when the hashes were made (a stage added since has none: 0)."""
    old = legacy_name(stage)
    return _VERSIONS.get(old, 1) if old in _ORDER else 0


def cell_digest(config: dict[str, Any]) -> str:
    """A table cell's old hash, of its resolved pipeline config (where its run lived left out)."""
    settings = {key: _section(config, key) for key in _CELL_KEYS if key in config}
    return _hash({**settings, "stage_versions": _VERSIONS})
