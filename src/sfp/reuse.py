"""Reuse by comparing specs: what a finished stage (or table cell) ran with against today's run spec.

A stage stores the settings it read, as plain JSON, beside its outputs. To compare them with today's, the stored
settings are parsed again by today's parser over today's spec: an option that did not exist when the stage ran is
filled in at the default declared on the option itself, so it counts as equal there (a new option never re-runs a
finished stage), while a stored value that was then a default and is not today's default differs (a changed default
does re-run it). An option that moved into an option group is read where it lives now (a data module's flat
arguments, :func:`sfp.configs.moved.upgrade_stored`); one that no longer exists makes the stored settings
unparseable: a difference, named.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

from sfp.errors import UserError


def plain(value: Any) -> Any:
    """``value`` as JSON would give it back (tuples as lists, objects as their text)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def read(spec: Mapping[str, Any], key: str) -> Any:
    """``spec``'s value at ``key`` (``section`` or ``section.option``); None where absent."""
    section, _, option = key.partition(".")
    value = spec.get(section)
    return value.get(option) if option and isinstance(value, Mapping) else value


def settings(spec: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The plain values of ``keys`` in ``spec``: what a stage stores of the spec it ran with."""
    return {key: plain(read(spec, key)) for key in keys}


def _write(spec: dict[str, Any], key: str, value: Any) -> None:
    section, _, option = key.partition(".")
    if option and isinstance(spec.get(section), dict):
        spec[section][option] = value
    else:
        spec[section] = value


def _difference(stored: Any, current: Any, where: str) -> str | None:
    """The first field (dotted, sorted) where two plain values differ, as ``field: stored -> current``."""
    if isinstance(stored, dict) and isinstance(current, dict):
        for key in sorted(set(stored) | set(current)):
            found = _difference(stored.get(key), current.get(key), f"{where}.{key}")
            if found:
                return found
        return None
    return None if stored == current else f"{where}: {json.dumps(stored)} -> {json.dumps(current)}"


def _remove(spec: dict[str, Any], key: str) -> None:
    section, _, option = key.partition(".")
    if option and isinstance(spec.get(section), dict):
        spec[section].pop(option, None)
    else:
        spec.pop(section, None)


def first_difference(stored: Mapping[str, Any], spec: Mapping[str, Any], keys: Iterable[str] = ()) -> str | None:
    """The first setting where ``stored`` (key -> value, as :func:`settings` wrote it) differs from the run spec
    ``spec`` (a resolved pipeline config), after today's parser filled in the options ``stored`` lacks; ``keys``:
    the keys read today (one ``stored`` lacks counts at its declared default). None when every field is equal."""
    from sfp.configs.moved import upgrade_stored
    from sfp.pipeline_config import reparse

    stored = upgrade_stored(stored)
    merged = copy.deepcopy(dict(spec))
    for key in keys:
        if key not in stored:
            _remove(merged, key)  # read today, not then: at its declared default
    for key, value in stored.items():
        _write(merged, key, copy.deepcopy(value))
    try:
        filled = reparse(merged)
    except UserError as err:
        return f"its settings no longer parse ({err})"
    for key in sorted(set(stored) | set(keys)):
        found = _difference(plain(read(filled, key)), plain(read(spec, key)), key)
        if found:
            return found
    return None
