"""A table cell's JSON file: the one place such a file is read (and checked), and how results are written.

:func:`read_cell` turns any file that is not a cell of the expected shape (not JSON, not UTF-8, nested deeper than a
cell ever is, a number too large to draw, a field of the wrong type, a cell of another table, a file named for another
cell) into one :class:`~sfp.errors.UserError` naming the file and the problem. It checks what the table reads:
``dataset`` (its row; ``task``, the row's dataset, where other), ``backbone``, ``seed``, ``spec`` and ``code`` (or an
earlier sfp's ``settings`` hash), each model's metrics in ``models`` (``metric``, the one the cell is judged on, where
given), and, where present, ``seconds``, ``steps``, ``parameters``, ``step_cost`` and ``per_lead``. NaN and +-Infinity
metrics are valid JSON numbers here (a diverged run): the table marks them (:mod:`sfp.table.render`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from sfp.errors import UserError
from sfp.options import require
from sfp.table.spec import Cell
from sfp.task import TASKS, TaskSpec

LARGEST = 1e300  # a number beyond this is no measurement, and the charts cannot draw it
DEEPEST = 8  # a cell nests 5 levels (per_lead.sfp.csi_per_lead.16[0]); more is not a cell
LEAD_VIEWS = ("csi_per_lead", "ssim_per_lead", "spectrum")  # what the per-lead plots draw
LEAD_MODELS = ("persistence", "baseline_steps", "surrogate", "sfp", "truth")  # those a cell's per_lead keeps


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(values: Any) -> bool:
    return isinstance(values, list) and all(map(_is_number, values))


def _shown(text: str) -> str:
    """``text`` as one line of at most 60 characters."""
    return text[:60] if text.isprintable() else repr(text)[:60]


def _check_numbers(value: Any, where: str, depth: int = 0) -> None:
    """Every number in ``value`` is finite and at most :data:`LARGEST` in size, or NaN/+-Infinity; no deep nesting."""
    require(depth <= DEEPEST, f"{where} nests deeper than a cell ({DEEPEST} levels)")
    require(not _is_number(value) or not abs(value) > LARGEST or abs(value) == math.inf,  # NaN is no size
            f"{where} is too large (at most {LARGEST:g}, or Infinity)")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        _check_numbers(item, f"{where}.{_shown(str(key))}" if where else _shown(str(key)), depth + 1)


def _mapping_of_numbers(cell: dict[str, Any], key: str) -> None:
    """``cell[key]``, where present, maps names to numbers or null."""
    value = cell.get(key, {})
    require(isinstance(value, dict) and all(v is None or _is_number(v) for v in value.values()),
            f"{key} must map names to numbers or null")


def _check_per_lead(per_lead: Any) -> None:
    """The per-lead views the plots draw: the same views and thresholds for every model."""
    require(isinstance(per_lead, dict) and all(isinstance(views, dict) for views in per_lead.values()),
            "per_lead must map each model to its views")
    for model in per_lead:
        require(model in LEAD_MODELS, f"per_lead: unknown model {_shown(model)!r}; known: {', '.join(LEAD_MODELS)}")
    for model, views in per_lead.items():
        csi = views.get("csi_per_lead", {})
        require(isinstance(csi, dict) and all(_is_threshold(t) and _numbers(v) for t, v in csi.items()),
                 f"per_lead.{model}.csi_per_lead must map thresholds (numbers) to lists of numbers")
        for view in ("ssim_per_lead", "spectrum"):
            require(_numbers(views.get(view, [])), f"per_lead.{model}.{view} must be a list of numbers")
    shapes = {tuple((view, tuple(views[view]) if view == "csi_per_lead" else ()) for view in LEAD_VIEWS
                    if view in views) for views in per_lead.values()}
    require(len(shapes) <= 1, "per_lead: every model needs the same views and thresholds")


def _check_per_window(found: Any) -> None:
    """The per-window states, where present: a sequence per window and, per model, one row of numbers per window
    (:mod:`sfp.table.intervals` sums and resamples them)."""
    if found is None:
        return
    sequences = found.get("sequence") if isinstance(found, dict) else None
    models = found.get("models") if isinstance(found, dict) else None
    require(isinstance(sequences, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in sequences)
            and isinstance(models, dict), "per_window must hold a sequence (whole numbers) and models")
    for model, rows in models.items():
        require(isinstance(rows, list) and len(rows) == len(sequences) and all(_numbers(row) for row in rows)
                and len({len(row) for row in rows}) <= 1,
                f"per_window.models.{_shown(str(model))} must hold one row of numbers per window")


def _is_threshold(key: str) -> bool:
    try:
        float(key)
    except ValueError:
        return False
    return True


def _check_cell(cell: Any, stem: str, cells: Collection[Cell] | None) -> None:
    """``cell`` is a cell of the table (where ``cells`` are known), the one its file's name ``stem`` says."""
    require(isinstance(cell, dict), f"a cell is a JSON object, got {type(cell).__name__}")
    _check_numbers(cell, "")
    dataset, backbone, seed = (cell.get(key) for key in ("dataset", "backbone", "seed"))
    require(isinstance(dataset, str) and dataset != "", "dataset must be the name of the cell's row")
    task = cell.get("task", dataset)
    key = "task" if "task" in cell else "dataset"
    require(isinstance(task, str) and task in TASKS,
            f"{key} must be one of {', '.join(TASKS)}, got {_shown(str(task))!r}")
    require(isinstance(backbone, str) and backbone != "", "backbone must be a backbone's name")
    require(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, "seed must be a whole number >= 0")
    fraction = cell.get("fraction", 1.0)
    require(_is_number(fraction) and 0 < fraction <= 1, "fraction must be a number in (0, 1]")
    named = Cell(dataset, backbone, seed, fraction)
    label = _shown(f"{dataset}/{backbone}/{seed}" + ("" if fraction == 1 else f"/{fraction:g}"))
    require(named.name == stem, f"holds the cell {label}, not the one its name says")
    require(cells is None or named in cells, f"{label} is not a cell of this table (its config has no such "
            "dataset, backbone or seed); move the file away")
    require(isinstance(cell.get("settings", ""), str), "settings must be a string (a hash)")
    for key in ("spec", "code"):
        require(isinstance(cell.get(key, {}), dict), f"{key} must be a mapping")
    models = cell.get("models")
    require(isinstance(models, dict) and all(isinstance(metrics, dict) for metrics in models.values()),
            "models must map each model to its metrics")
    judged = cell.get("metric", TASKS[task].headline)
    require(isinstance(judged, str), "metric must be a metric's name")
    for model, metrics in models.items():
        for metric in (judged, "mse"):
            require(metrics.get(metric) is None or _is_number(metrics[metric]),
                    f"models.{_shown(model)}.{metric} must be a number")
    for key in ("seconds", "steps"):
        _mapping_of_numbers(cell, key)
    for key in ("parameters", "step_cost"):
        require(cell.get(key) is None or _is_number(cell[key]), f"{key} must be a number")
    _check_per_window(cell.get("per_window"))
    check = cell.get("convergence", {})
    require(isinstance(check, dict) and all(check.get(key) is None or _is_number(check[key])
                                            for key in ("agent_val_mse_gain", "equal_time_test_mse_gain"))
            and check.get("converged") in (None, True, False),
            "convergence must hold agent_val_mse_gain and equal_time_test_mse_gain (numbers or null) and converged "
            "(true, false or null)")
    _check_per_lead(cell.get("per_lead", {}))


def cell_task(cell: dict[str, Any]) -> TaskSpec:
    """The task of a (checked) cell's data: its ``task``, else its row's name (a table of one row per dataset)."""
    return TASKS[cell.get("task", cell["dataset"])]


def read_cell(path: Path, cells: Collection[Cell] | None = None) -> dict[str, Any]:
    """The cell in ``path``, checked (see the module docstring); ``cells``: those of the table, where known."""
    try:
        cell = _load(path)
        _check_cell(cell, path.stem, cells)
    except UserError as err:
        raise UserError(f"{path if str(path).isprintable() else repr(str(path))}: {err}") from None
    return cell


def _load(path: Path) -> Any:
    """The JSON content of ``path``; NaN and +-Infinity are numbers."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except OSError as err:
        raise UserError(f"cannot read the cell ({err.strerror or err.__class__.__name__})") from None
    except UnicodeDecodeError:
        raise UserError("not valid JSON (not UTF-8 text)") from None
    except RecursionError:
        raise UserError("not valid JSON for a cell (nested too deeply)") from None
    except json.JSONDecodeError as err:
        raise UserError(f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    except ValueError:  # Python's limit on an integer's digits
        raise UserError("not valid JSON for a cell (a number of too many digits)") from None


_NUMBER = r"(?:-?[\d.eE+-]+|NaN|-?Infinity)"
_NUMBER_LIST = re.compile(rf"\[\s*({_NUMBER}(?:,\s*{_NUMBER})*)\s*\]")


def cell_text(cell: dict[str, Any]) -> str:
    """A cell as its JSON file holds it: indented, each list of numbers on one line (a cell keeps thousands of
    per-window numbers, one a line would be most of the file)."""
    return _NUMBER_LIST.sub(lambda match: "[" + ", ".join(part.strip() for part in match.group(1).split(",")) + "]",
                            json.dumps(cell, indent=2))


def read_cells(folder: Path, cells: Collection[Cell] | None = None) -> list[dict[str, Any]]:
    """Every cell JSON in ``folder``, in file name order, each checked by :func:`read_cell`."""
    return [read_cell(path, cells) for path in sorted(folder.glob("*.json"))]


