"""sfp's modules import one another without a cycle, and the lower floors (data, models, metrics, forecasting,
planning) never import the upper ones (configs, the pipeline, tables, the command line): read from the source with
ast, so imports inside functions count too."""

import ast
from pathlib import Path

import sfp

SOURCE = Path(sfp.__file__).parent
LOWER = ("sfp.data", "sfp.models", "sfp.metrics", "sfp.forecasting", "sfp.planning")
UPPER = ("sfp.configs", "sfp.cli", "sfp.pipeline", "sfp.pipeline_config", "sfp.run_spec", "sfp.stages", "sfp.table",
         "sfp.radar_heldout")


def _modules() -> dict[str, Path]:
    modules = {}
    for path in SOURCE.rglob("*.py"):
        name = ".".join(("sfp", *path.relative_to(SOURCE).with_suffix("").parts))
        modules[name.removesuffix(".__init__")] = path
    return modules


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The sfp modules ``path`` imports (``from package import module`` counts as the module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sfp"):
            found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                      for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("sfp")}
    return {name for name in found if name in modules}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None (depth-first search, iterative)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if start in state:
            continue
        path, pending = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while pending:
            following = next(pending[-1], None)
            if following is None:
                state[path.pop()] = 2
                pending.pop()
            elif state.get(following) == 1:
                return path[path.index(following):] + [following]
            elif following not in state:
                state[following] = 1
                path.append(following)
                pending.append(iter(sorted(graph[following])))
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_itself_back():
    assert _cycle(_graph()) is None


def test_lower_floors_never_import_upper_ones():
    upward = {(name, target) for name, targets in _graph().items() if name.startswith(LOWER)
              for target in targets if target.startswith(UPPER)}
    assert upward == set()


def test_reports_import_neither_planning_nor_the_pipeline():
    """Reports render and score what the stages made; they never plan or run stages themselves."""
    found = {(name, target) for name, targets in _graph().items() if name.startswith("sfp.report")
             for target in targets if target.startswith(("sfp.planning", "sfp.pipeline"))}
    assert found == set()


def test_no_module_is_over_400_lines():
    """Small modules with one job each: a module that outgrows 400 lines is split by concern."""
    long = {name: lines for name, path in _modules().items() if (lines := len(path.read_text().splitlines())) > 400}
    assert long == {}
