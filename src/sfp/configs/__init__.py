"""The configs shipped with sfp: ``--config NAME`` finds ``NAME.yaml`` here; a path to a file reads that file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sfp.configs.bounded_yaml import load_bounded
from sfp.errors import UserError

HERE = Path(__file__).resolve().parent


def shipped() -> list[str]:
    """Names of the shipped configs, sorted."""
    return sorted(path.stem for path in HERE.glob("*.yaml"))


def resolve(config: str | Path) -> Path:
    """The file ``config`` names: an existing path, else a shipped config of that name (``.yaml`` optional)."""
    path = Path(config)
    if path.is_file():
        return path
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a config file")
    name = path.name.removesuffix(".yaml") if path.parent == Path(".") or path.parent == Path("configs") else None
    if name is not None and (HERE / f"{name}.yaml").is_file():
        return HERE / f"{name}.yaml"
    raise UserError(f"{config}: no such config file, and no shipped config of that name "
                    f"(shipped: {', '.join(shipped())})")


def resolve_arguments(argv: list[str]) -> list[str]:
    """``argv`` with every ``--config NAME`` (or ``--config=NAME``) resolved to a file, and every value that holds
    YAML structure checked against the bounds of :mod:`sfp.configs.bounded_yaml` (the parser reads values as YAML)."""
    for item in argv:
        value = item.partition("=")[2] if item.startswith("--") else item
        if any(mark in value for mark in "[{&*"):
            _check_value(value)
    resolved = list(argv)
    for i, item in enumerate(argv):
        if item == "--config" and i + 1 < len(argv):
            resolved[i + 1] = str(resolve(argv[i + 1]))
        elif item.startswith("--config="):
            resolved[i] = f"--config={resolve(item.partition('=')[2])}"
    return resolved


def _check_value(value: str) -> None:
    """A command-line value within the YAML bounds; a value that is not YAML is left to the parser."""
    try:
        load_bounded(value, f"the value {value[:40]!r}")
    except UserError as err:
        if "not valid YAML" not in str(err):
            raise


def config_files(argv: list[str]) -> list[Path]:
    """The files of the ``--config`` arguments of an already resolved ``argv``."""
    return [Path(argv[i + 1]) for i, item in enumerate(argv[:-1]) if item == "--config"] + [
        Path(item.partition("=")[2]) for item in argv if item.startswith("--config=")]


def read_yaml(path: Path) -> dict[str, Any]:
    """A config file as a mapping (safe loader); invalid YAML or a non-mapping is one line."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read the config ({err.__class__.__name__})") from err
    content = load_bounded(text, str(path))
    if content is None:
        raise UserError(f"{path}: the config is empty")
    if not isinstance(content, dict):
        raise UserError(f"{path}: a config is a mapping of sections, got {type(content).__name__}")
    return content
