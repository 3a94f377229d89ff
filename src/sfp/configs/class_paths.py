"""A config's ``class_path`` values checked before anything is imported: the module's source is found (its parent
packages are not imported either) and read, without running it, for a definition of the class's name. Only a class
that its module defines is then imported (running that module's top-level code) and checked against the base class
expected at its place; a mistyped or unknown name is one line and runs nothing."""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sfp.errors import UserError

CLASS_OPTIONS = ("--model", "--data", "--agent")  # the command-line options that take a class path as their value


def config_class_paths(node: Any) -> Iterator[str]:
    """Every ``class_path`` string in a parsed config, however deep."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "class_path" and isinstance(value, str):
                yield value
            else:
                yield from config_class_paths(value)
    elif isinstance(node, list):
        for item in node:
            yield from config_class_paths(item)


def argument_class_paths(argv: list[str]) -> Iterator[str]:
    """The class paths given on the command line (``--data PATH``, ``--model.class_path PATH``, ...)."""
    for option, value in zip(argv, argv[1:]):
        if (option in CLASS_OPTIONS or option.endswith(".class_path")) and not value.lstrip().startswith(("{", "[")):
            yield value


def _source(module: str) -> Path | None:
    """The source file of ``module``, found without importing it or its packages; None where it has none to read
    (a compiled or built-in module, or one already imported)."""
    if module in sys.modules:
        return None
    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(parts[0]) if parts[0] not in sys.modules else sys.modules[parts[0]].__spec__
        for depth in range(1, len(parts)):
            locations = spec.submodule_search_locations if spec is not None else None
            if not locations:
                raise UserError(f"cannot import {module!r}: {'.'.join(parts[:depth])!r} is not a package")
            name = ".".join(parts[:depth + 1])
            spec = (sys.modules[name].__spec__ if name in sys.modules
                    else importlib.machinery.PathFinder.find_spec(name, list(locations)))
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise UserError(f"cannot import {module!r}: no such module")
    return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None


def _defines(tree: ast.Module, name: str) -> bool:
    """Whether a module's top level binds ``name`` (a class, an assignment or an import), or may (a star import or a
    module ``__getattr__``)."""
    for statement in tree.body:
        if isinstance(statement, ast.ClassDef | ast.FunctionDef) and statement.name in (name, "__getattr__"):
            return True
        if isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if any(isinstance(target, ast.Name) and target.id == name for target in targets):
                return True
        if isinstance(statement, ast.Import | ast.ImportFrom):
            if any((alias.asname or alias.name.split(".")[0]) in (name, "*") for alias in statement.names):
                return True
    return False


def check_defined(class_path: str) -> None:
    """One line, before any import, when ``class_path`` (``package.module.Class``) names no class its module
    defines."""
    module, _, name = class_path.rpartition(".")
    if not module or not name:
        raise UserError(f"class_path {class_path!r} is not a dotted path like 'package.module.Class'")
    source = _source(module)
    if source is None:
        return  # already imported or compiled: the import and the base-class check follow
    try:
        tree = ast.parse(source.read_text(), str(source))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return  # the import will say what is wrong
    if not _defines(tree, name):
        raise UserError(f"class_path {class_path!r}: module {module!r} defines no {name!r} (read without running it)")


def check_class_paths(configs: list[Any], argv: list[str]) -> None:
    """:func:`check_defined` for every class path of the parsed ``--config`` files and of the command line."""
    for config in configs:
        for class_path in config_class_paths(config):
            check_defined(class_path)
    for class_path in argument_class_paths(argv):
        check_defined(class_path)
