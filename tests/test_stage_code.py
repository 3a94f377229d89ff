"""Each stage's code version answers for the source its outputs come from (``Stage.sources``): when that source
changes, the stage's recorded fingerprint must be renewed on purpose, after deciding whether the stage now makes
other outputs from the same settings (then bump its ``code`` in :mod:`sfp.stage_graph`, so finished runs and table
cells redo it) or not (a refactor: the same ``code``). Renew with ``SFP_RENEW_STAGE_CODE=1 pytest
tests/test_stage_code.py``. Docstrings and comments are not part of the fingerprint."""

import ast
import hashlib
import importlib.util
import json
import os
from pathlib import Path

import pytest

from sfp.stage_graph import GRAPH

RECORD = Path(__file__).parent / "stage_code.json"


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def fingerprint(modules: tuple[str, ...]) -> str:
    """A hash of the modules' code (their syntax trees without docstrings; comments never reach the tree)."""
    digest = hashlib.sha256()
    for name in modules:
        source = Path(importlib.util.find_spec(name).origin).read_text()
        digest.update(ast.dump(_without_docstrings(ast.parse(source))).encode())
    return digest.hexdigest()[:16]


def test_every_stage_names_the_source_of_its_outputs():
    for stage in GRAPH:
        assert stage.sources, stage.name
        for name in stage.sources:
            assert importlib.util.find_spec(name) is not None, f"{stage.name}: no module {name}"


def test_a_stage_whose_source_changed_was_looked_at():
    current = {stage.name: {"code": stage.code, "fingerprint": fingerprint(stage.sources)} for stage in GRAPH}
    if os.environ.get("SFP_RENEW_STAGE_CODE"):
        RECORD.write_text(json.dumps(current, indent=2) + "\n")
    recorded = json.loads(RECORD.read_text())
    changed = [name for name in current if recorded.get(name) != current[name]]
    if changed:
        pytest.fail(f"the code of stage(s) {', '.join(changed)} changed since its code version was last decided: "
                    "see this file's docstring")


def test_the_fingerprint_ignores_docstrings_and_sees_code(tmp_path, monkeypatch):
    for name, text in {"one": '"""A."""\nx = 1  # a\n', "two": '"""B."""\n\nx = 1\n', "three": "x = 2\n"}.items():
        (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert fingerprint(("one",)) == fingerprint(("two",)) != fingerprint(("three",))
