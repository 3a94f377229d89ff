"""Small helpers shared across sfp."""

from __future__ import annotations

import importlib
from typing import Any

from sfp.errors import UserError


def import_object(path: str) -> Any:
    """Import ``package.module:name`` or ``package.module.name``; a bad path is a one-line UserError."""
    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise UserError(f"{path!r} is not an import path like 'package.module:name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise UserError(f"cannot import {module_name!r} (from {path!r}): {err}") from err
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise UserError(f"module {module_name!r} has no {attribute!r} (from {path!r})") from None
