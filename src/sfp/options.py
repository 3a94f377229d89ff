"""Typed option groups: frozen dataclasses that own their defaults and validate themselves once.

A concept with several settings (the imagination, a planner, pseudo-labels, a world model's architecture, a
Forecaster's normalization ...) is one dataclass. Its field defaults are the only defaults; its
``__post_init__`` is the only validation. Constructors take the dataclass, a plain mapping of its fields (YAML,
a checkpoint's hyperparameters) or None (every default), through :func:`coerce`. Checkpoints keep option groups
as plain dicts (:func:`plain`, :func:`save_plain_hyperparameters`): a checkpoint holds data, never classes.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from collections.abc import Container, Iterable, Mapping
from typing import Any, TypeVar

from sfp.errors import UserError

T = TypeVar("T")


def _dataclass_of(annotation: Any) -> type | None:
    """The dataclass named by a field's type (``X`` or ``X | None``), if any."""
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    candidates = typing.get_args(annotation) if is_union else (annotation,)
    return next((c for c in candidates if dataclasses.is_dataclass(c) and isinstance(c, type)), None)


def coerce(cls: type[T], value: T | Mapping[str, Any] | None) -> T:
    """``value`` as a ``cls``: the instance itself, ``cls(**mapping)`` (nested groups too) or ``cls()`` for None.

    An unknown key is a one-line :class:`UserError` listing the known ones; so is a missing one without a default.
    """
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise UserError(f"{cls.__name__} options must be a mapping, got {value!r}"[:300])
    hints = typing.get_type_hints(cls)
    known = [field.name for field in dataclasses.fields(cls)]
    unknown = [key for key in value if key not in known]
    if unknown:
        raise UserError(f"{cls.__name__}: unknown option {unknown[0]!r}; known: {', '.join(known)}")
    missing = [field.name for field in dataclasses.fields(cls) if field.init and field.name not in value
               and field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING]
    if missing:
        raise UserError(f"{cls.__name__}: missing option {missing[0]!r}")
    arguments = {}
    for key, item in value.items():
        nested = _dataclass_of(hints[key])
        arguments[key] = coerce(nested, item) if nested is not None and item is not None else item
    return cls(**arguments)


def plain(value: Any) -> Any:
    """Dataclasses as dicts (recursively), tuples as lists; anything else unchanged."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [plain(item) for item in value]
    return value


def grouped(settings: Mapping[str, Any], moves: Mapping[str, str], accepted: Container[str] = ()) -> dict[str, Any]:
    """Flat settings of an earlier version sorted into the option groups they moved to (``moves``: old key ->
    ``"group.field"``); a key the constructor still takes (``accepted``), or that did not move, stays as it is."""
    result: dict[str, Any] = {}
    for key, value in settings.items():
        if key in moves and key not in accepted:
            group, field = moves[key].split(".")
            result.setdefault(group, {})[field] = value
        else:
            result[key] = value
    return result


def save_plain_hyperparameters(module: Any, frame: Any = None, logger: bool = True, **resolved: Any) -> None:
    """``module.save_hyperparameters()`` for the calling ``__init__`` (or ``frame``'s), option groups as plain dicts.

    ``resolved`` replaces or adds arguments with their coerced values (an option group with every default filled
    in), so a checkpoint keeps the settings it was trained with even if a default changes later; ``logger``: whether
    the run's logger records them too.
    """
    module.save_hyperparameters(frame=frame or inspect.currentframe().f_back, logger=logger)
    module.save_hyperparameters({key: plain(value) for key, value in {**module.hparams, **resolved}.items()},
                                logger=logger)


def require(condition: bool, message: str) -> None:
    """Raise a one-line :class:`UserError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise UserError(message)


def require_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """``value`` must be one of ``choices``."""
    choices = tuple(choices)
    require(value in choices, f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def require_finite(name: str, value: float, minimum: float | None = None) -> None:
    """``value`` must be a finite number (and at least ``minimum``)."""
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (minimum is None or value >= minimum)
    bound = f" and >= {minimum:g}" if minimum is not None else ""
    require(ok, f"{name} must be finite{bound}, got {value!r}")


MAX_SEED = 2**32 - 1  # numpy's and Lightning's seeds: 0 .. 2**32 - 1


def check_seed(seed: Any, name: str = "seed_everything") -> None:
    """A seed numpy accepts (or a bool, Lightning's "random" or "none"), checked before any work."""
    if not isinstance(seed, bool) and not 0 <= seed <= MAX_SEED:
        raise UserError(f"{name} must be in 0 .. {MAX_SEED}, got {seed}")
