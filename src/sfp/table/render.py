"""The table from the cells' JSON files alone: ``<name>.md``, ``<name>.json``, a bar chart of SFP's changes and each
cell's per-lead views (``<name>/leads/<cell>.png``).

A relative change is ``(sfp - baseline) / |baseline|`` as a fraction, on the metric a row is judged on (its
dataset's headline unless its runs set ``evaluation.metric``) and on MSE. Seeds of one dataset/backbone are averaged
first; the summary is the mean over backbones, as in the paper. Where a dataset/backbone has several seeds, the
table also gives each change's per-seed values, mean and sample standard deviation (how much of a change one seed's
luck could make).

The table never averages over a hole silently. A cell is left out of every mean, the spread and the chart when
its JSON is missing (not computed yet), stale (computed with other settings) or holds a hole (:func:`cell_hole`:
a metric the summary needs that is absent, NaN or infinite, a baseline of 0, a change out of range). The table
is still rendered (a partial table is useful while cells are being computed), and says so: each dataset's summary
gives the backbones actually averaged, ``averaged_cells`` of ``table_cells`` and its ``missing`` cells with why
(``<name>.json``); the markdown counts the cells, lists each one left out under the summary and marks a present
one in its rows; ``sfp table`` prints one line per cell left out. A cell file that cannot be read as a cell is
an error naming it (:func:`sfp.table.cellfile.read_cell`), raised before anything is written.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sfp.data.writing import write_text
from sfp.metrics.task_metrics import higher_is_better
from sfp.report.figures import pyplot, save_figure
from sfp.report.leads import plot_lead_curves
from sfp.table.cellfile import LARGEST, cell_task, read_cells
from sfp.table.convergence import convergence
from sfp.table.data_fraction import data_fraction, fraction_of, plot_data_fraction
from sfp.table.intervals import cell_draws, dataset_intervals, shared_weights
from sfp.table.spec import Cell
from sfp.task import TASKS

BASELINES = {"sfp_vs_baseline_steps": "baseline_steps", "sfp_vs_baseline_time": "baseline_time",
             "sfp_vs_surrogate": "surrogate"}
# compared where a cell has them
OPTIONAL_PEERS = {"sfp_vs_balanced_mse": "balanced_mse", "sfp_vs_facl": "facl", "sfp_vs_qmap": "qmap"}
CHANGES = (*BASELINES, "mse_vs_baseline_steps", *OPTIONAL_PEERS)
PEERS = {"surrogate": "sfp_vs_surrogate", **{peer: key for key, peer in OPTIONAL_PEERS.items()}}  # at SFP's MSE
MODELS = ("persistence", "agent", "baseline_steps", "baseline_time", "surrogate", *OPTIONAL_PEERS.values(), "sfp")


def relative(new: float | None, old: float | None) -> float | None:
    """``(new - old) / |old|``; None when either is missing or not finite, ``old`` is 0 or the change is beyond
    :data:`~sfp.table.cellfile.LARGEST`."""
    if new is None or old is None or old == 0 or not math.isfinite(old) or not math.isfinite(new):
        return None
    change = (new - old) / abs(old)
    return change if abs(change) <= LARGEST else None


def _mean(values: list[float | None]) -> float | None:
    """The mean of the values that are there (an optional peer a cell lacks is None), or None."""
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


def _cell(cell: dict[str, Any]) -> Cell:
    return Cell(cell["dataset"], cell["backbone"], cell["seed"], cell.get("fraction", 1.0))


def cell_metric(cell: dict[str, Any]) -> str:
    """The metric a cell is judged on: its run's ``evaluation.metric``, else its task's headline."""
    return cell.get("metric") or cell_task(cell).headline


def _row_metric(cells: list[dict[str, Any]], dataset: str) -> str | None:
    """The metric a dataset's row is judged on (its cells'), the task's headline where it has none yet."""
    return next((cell_metric(cell) for cell in cells if cell["dataset"] == dataset),
                TASKS[dataset].headline if dataset in TASKS else None)


def _compared(cell: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Each change of the summary -> the metric and the two models it compares (SFP first)."""
    headline = cell_metric(cell)
    return {**{key: (headline, "sfp", name) for key, name in BASELINES.items()},
            "mse_vs_baseline_steps": ("mse", "sfp", "baseline_steps")}


def _all_compared(cell: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """:func:`_compared` and each optional peer."""
    headline = cell_metric(cell)
    return {**_compared(cell), **{key: (headline, "sfp", peer) for key, peer in OPTIONAL_PEERS.items()}}


def cell_changes(cell: dict[str, Any]) -> dict[str, float | None]:
    """SFP's relative changes in one cell: headline against each baseline and each optional peer it has (None for
    one it lacks), and MSE against the equal-step one."""
    models = cell["models"]
    return {key: relative(models.get(sfp, {}).get(metric), models.get(baseline, {}).get(metric))
            for key, (metric, sfp, baseline) in _all_compared(cell).items()}


def cell_hole(cell: dict[str, Any]) -> str | None:
    """Why the summary cannot use the cell (e.g. ``NaN sfp csi_m``), or None when it can."""
    changes = cell_changes(cell)
    for key, (metric, *models) in _compared(cell).items():
        for model in models:
            value = cell["models"].get(model, {}).get(metric)
            if value is None or not math.isfinite(value):
                return f"{'no' if value is None else 'NaN' if math.isnan(value) else value} {model} {metric}"
        if changes[key] is None:
            return f"{models[1]} {metric} is 0" if cell["models"][models[1]][metric] == 0 else f"{key} out of range"
    return None


def changes_by_backbone(cells: list[dict[str, Any]]) -> dict[str, dict[str, dict[int, dict[str, float]]]]:
    """``dataset -> backbone -> seed ->`` the changes (:func:`cell_changes`) of each cell without a hole, datasets
    in the cells' order, backbones and seeds sorted."""
    grouped: dict[str, dict[str, dict[int, dict[str, float]]]] = defaultdict(lambda: defaultdict(dict))
    for cell in (cell for cell in cells if cell_hole(cell) is None):
        grouped[cell["dataset"]][cell["backbone"]][cell["seed"]] = cell_changes(cell)
    return {dataset: {backbone: dict(sorted(seeds.items())) for backbone, seeds in sorted(backbones.items())}
            for dataset, backbones in grouped.items()}


def summarize(cells: list[dict[str, Any]], absent: Iterable[tuple[Cell, str]] = ()) -> dict[str, dict[str, Any]]:
    """Per dataset (sorted): the headline metric, the mean over backbones of each change (seeds averaged first) over
    the cells without a hole, the backbones averaged, how many cells of how many, and each cell left out with why:
    those of ``cells`` with a hole (:func:`cell_hole`) and ``absent`` ones (no JSON with the current settings)."""
    left_out = [(_cell(cell), hole) for cell in cells if (hole := cell_hole(cell))] + list(absent)
    grouped = changes_by_backbone(cells)
    usable = {(cell["dataset"], cell["backbone"], cell["seed"]): cell for cell in cells if cell_hole(cell) is None}
    weights = shared_weights()
    summary = {}
    for dataset in sorted({cell["dataset"] for cell in cells} | {cell.dataset for cell, _ in left_out}):
        backbones = grouped.get(dataset, {})
        per_backbone = {backbone: {key: _mean([c[key] for c in seeds.values()]) for key in CHANGES}
                        for backbone, seeds in backbones.items()}
        missing = [{"cell": _label(cell), "reason": why} for cell, why in left_out if cell.dataset == dataset]
        averaged = sum(len(seeds) for seeds in backbones.values())
        means = {key: _mean([changes[key] for changes in per_backbone.values()]) for key in CHANGES}
        higher = _headline_higher(cells, dataset)
        best = _best_peer(means, higher)
        ci95 = dataset_intervals({backbone: {seed: cell_draws(usable[dataset, backbone, seed],
                                                              _all_compared(usable[dataset, backbone, seed]), weights)
                                             for seed in seeds} for backbone, seeds in backbones.items()})
        if ci95 is not None and best["best_peer"] and PEERS[best["best_peer"]] in ci95:
            ci95["sfp_vs_best_peer"] = ci95[PEERS[best["best_peer"]]]
        summary[dataset] = {"headline": _row_metric(cells, dataset), "higher_is_better": higher,
                            "backbones": list(per_backbone), **means, **best,
                            "ci95": ci95, "significant": None if ci95 is None else
                            {key: low > 0 or high < 0 for key, (low, high) in ci95.items()},
                            "averaged_cells": averaged, "table_cells": averaged + len(missing), "missing": missing}
    return summary


def _best_peer(means: dict[str, float | None], higher: bool) -> dict[str, Any]:
    """The strongest peer (:data:`PEERS`): the one SFP's mean change of the headline is worst against (smallest
    where ``higher`` values are better, largest where lower ones are), and that change (None where no peer has
    one)."""
    against = {peer: means[key] for peer, key in PEERS.items() if means[key] is not None}
    worst_for_sfp = min if higher else max
    best = worst_for_sfp(against, key=against.__getitem__) if against else None
    return {"best_peer": best, "sfp_vs_best_peer": against.get(best)}


def _headline_higher(cells: list[dict[str, Any]], dataset: str) -> bool:
    """Whether a larger value of the metric a dataset's row is judged on is better."""
    task = next((cell_task(cell) for cell in cells if cell["dataset"] == dataset),
                TASKS[dataset] if dataset in TASKS else None)
    metric = _row_metric(cells, dataset)
    return True if task is None or metric is None else higher_is_better(metric, task)


def seed_spread(cells: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per ``dataset/backbone`` with more than one seed: the seeds and, for each change, the per-seed values, their
    mean and sample standard deviation."""
    spread = {}
    for dataset, backbones in sorted(changes_by_backbone(cells).items()):
        for backbone, seeds in backbones.items():
            if len(seeds) < 2:
                continue
            row: dict[str, Any] = {"seeds": list(seeds)}
            for key in CHANGES:
                values = [changes[key] for changes in seeds.values() if changes[key] is not None]
                row[key] = ({"values": values, "mean": _mean(values), "std": statistics.stdev(values)}
                            if len(values) > 1 else None)
            spread[f"{dataset}/{backbone}"] = row
    return spread


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}%"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _count(value: float | None) -> str:
    """A whole number with thousands separators, or ``n/a``."""
    return "n/a" if value is None else f"{value:,.0f}"


def _label(cell: Cell) -> str:
    """``dataset/backbone/s<seed>``, as the table's rows name a cell."""
    return f"{cell.dataset}/{cell.backbone}/s{cell.seed}"


def _row_label(cell: dict[str, Any]) -> str:
    """The label of a cell's rows, marked where the cell is left out of the means."""
    return _label(_cell(cell)) + (" (left out)" if cell_hole(cell) else "")


def _yes_no(value: bool | None) -> str:
    return "n/a" if value is None else "yes" if value else "**no**"


def cell_convergence(cell: dict[str, Any]) -> dict[str, Any]:
    """The cell's convergence check as computed with it, or (a cell from before the check) its equal-time part
    from its metrics (:func:`sfp.table.convergence.convergence`)."""
    return cell.get("convergence") or convergence(None, cell["models"])


def _beats(cell: dict[str, Any], metric: str) -> str:
    """Whether the agent is better than persistence on ``metric`` (higher or lower, by the metric)."""
    agent, persistence = (cell["models"].get(name, {}).get(metric) for name in ("agent", "persistence"))
    if agent is None or persistence is None or math.isnan(agent) or math.isnan(persistence):
        return "n/a"
    higher = higher_is_better(metric, cell_task(cell))
    return "yes" if (agent > persistence if higher else agent < persistence) else "**no**"


def _spread(change: dict[str, Any]) -> str:
    """``mean ± std (value, value, ...)`` in percent."""
    values = ", ".join(_percent(value) for value in change["values"])
    return f"{_percent(change['mean'])} ± {100 * change['std']:.1f}% ({values})"


def markdown(cells: list[dict[str, Any]], summary: dict[str, dict[str, Any]],
             spread: dict[str, dict[str, Any]] | None = None) -> str:
    """The summary (mean over backbones of each relative change of the headline, whose better direction the arrow
    gives; how many cells it averages, and each one left out with why), the spread
    over seeds where there are several, each agent's size and training, and one row per cell (a cell left out of
    the means marked)."""
    lines = ["| dataset | headline | SFP vs equal steps | SFP vs equal time | SFP vs surrogate | SFP vs best peer "
             "| MSE vs equal steps | backbones | cells |", "|---|---|---|---|---|---|---|---|---|"]
    for dataset, row in summary.items():
        def change(key: str, row: dict[str, Any] = row) -> str:
            """The change, with its 95 % interval where the cells keep per-window states."""
            found = (row.get("ci95") or {}).get(key)
            return _percent(row[key]) + (f" [{_percent(found[0])}, {_percent(found[1])}]" if found else "")

        best = f"{change('sfp_vs_best_peer')} ({row['best_peer']})" if row["best_peer"] else "n/a"
        arrow = "" if row["headline"] is None else " ↑" if row["higher_is_better"] else " ↓"
        lines.append(f"| {dataset} | {row['headline']}{arrow} | {change('sfp_vs_baseline_steps')} | "
                     f"{change('sfp_vs_baseline_time')} | {change('sfp_vs_surrogate')} | {best} | "
                     f"{change('mse_vs_baseline_steps')} | {', '.join(row['backbones'])} | "
                     f"{row['averaged_cells']} of {row['table_cells']} |")
    missing = [f"- {hole['cell']}: {hole['reason']}" for row in summary.values() for hole in row["missing"]]
    lines += ["", "Left out of the means above:", *missing] if missing else []
    if spread:
        lines += ["", "| over seeds | seeds | SFP vs equal steps | SFP vs equal time | MSE vs equal steps |",
                  "|---|---|---|---|---|"]
        for pair, row in spread.items():
            lines.append(f"| {pair} | {', '.join(map(str, row['seeds']))} | {_spread(row['sfp_vs_baseline_steps'])} | "
                         f"{_spread(row['sfp_vs_baseline_time'])} | {_spread(row['mse_vs_baseline_steps'])} |")
    lines += ["", "| agent | parameters | steps | seconds | val. MSE gain, last quarter | equal-time test MSE gain "
              "| converged | SFP step, in baseline steps |", "|---|---|---|---|---|---|---|---|"]
    for cell in cells:
        check = cell_convergence(cell)
        cost = f"{cell['step_cost']:.2f}" if cell.get("step_cost") else "n/a (stage seconds)"
        lines.append(f"| {_row_label(cell)} | {_count(cell.get('parameters'))} | "
                     f"{_count(cell.get('steps', {}).get('agent'))} | {_count(cell.get('seconds', {}).get('agent'))} | "
                     f"{_percent(check['agent_val_mse_gain'])} | {_percent(check['equal_time_test_mse_gain'])} | "
                     f"{_yes_no(check['converged'])} | {cost} |")
    shown = [model for model in MODELS  # an optional peer where some cell has it
             if model not in OPTIONAL_PEERS.values() or any(model in cell["models"] for cell in cells)]
    lines += ["", "| cell | metric | " + " | ".join(shown) + " | agent beats persistence | seconds |",
              "|---" * (len(shown) + 4) + "|"]
    for cell in cells:
        headline = cell_metric(cell)
        seconds = sum(value for value in cell.get("seconds", {}).values() if value)
        for metric in (headline, "mse"):
            values = [_number(cell["models"].get(model, {}).get(metric)) for model in shown]
            lines.append(f"| {_row_label(cell)} | {metric} | "
                         + " | ".join(values) + f" | {_beats(cell, metric)} | {seconds:.0f} |")
    return "\n".join(lines) + "\n"


def bar_chart(cells: list[dict[str, Any]], path: Path) -> Path:
    """SFP's headline change against the equal-step baseline, per backbone (seeds averaged, each seed a dot where
    there are several), one panel per dataset."""
    plt = pyplot()

    grouped = sorted(changes_by_backbone(cells).items())
    fig, axes = plt.subplots(1, len(grouped), figsize=(4 * len(grouped), 3.2), squeeze=False)
    for axis, (dataset, backbones) in zip(axes[0], grouped):
        rows = {backbone: [changes["sfp_vs_baseline_steps"] for changes in seeds.values()]
                for backbone, seeds in backbones.items()}
        names = list(rows)
        axis.bar(names, [100 * _mean(rows[name]) for name in names])
        for name in names:  # each seed's change as a dot where there are several
            values = [100 * value for value in rows[name]]
            if len(values) > 1:
                axis.scatter([name] * len(values), values, color="black", s=12, zorder=3)
        axis.axhline(0, color="black", lw=0.8)
        axis.set_title(f"{dataset}: {_row_metric(cells, dataset)}, SFP vs equal steps")
        axis.set_ylabel("change (%)")
    return save_figure(fig, path, 110)


def fraction_markdown(axis: dict[str, dict[str, Any]], absent: list[tuple[Cell, str]]) -> str:
    """The data-scarce axis as a table (none where no cell runs on a share of the data), and its cells left out."""
    if not axis and not absent:
        return ""
    lines = ["", "| data-scarce | share of training data | SFP vs equal steps | vs equal time | vs best peer "
             "| MSE vs equal steps | seeds |", "|---|---|---|---|---|---|---|"]
    for pair, rows in axis.items():
        lines += [f"| {pair} | {fraction} | {_percent(row['sfp_vs_baseline_steps'])} | "
                  f"{_percent(row['sfp_vs_baseline_time'])} | {_percent(row['sfp_vs_best_peer'])} | "
                  f"{_percent(row['mse_vs_baseline_steps'])} | {row['seeds']} |" for fraction, row in rows.items()]
    lines += ["", "Left out of the data-scarce axis:", *(f"- {_label(cell)}/{cell.fraction:g}: {reason}"
                                                         for cell, reason in absent)] if absent else []
    return "\n".join(lines) + "\n"


def render(results: str | Path, name: str, states: dict[Cell, str | None] | None = None,
           summary_by: str = "dataset") -> dict[str, Any]:
    """Rebuild ``<name>.md``, ``<name>.json`` and ``<name>.png`` in ``results`` from ``results/<name>/cells/*.json``.

    ``states``: every cell of the table -> None where its JSON is current, else why it is left out ("not computed",
    "stale: ...": :func:`sfp.table.cells.cell_state`); without it every cell file found is used. A file of a cell
    not in ``states`` is an error. Every file is read and checked before anything is written. ``summary_by``:
    the JSON's summary keyed by ``dataset`` or by each dataset's ``headline`` metric (then with its ``dataset``).
    """
    results = Path(results)
    found = read_cells(results / name / "cells", states)
    current = [cell for cell in found if states is None or states[_cell(cell)] is None]
    cells = [cell for cell in current if fraction_of(cell) == 1]  # the table proper: all the training data
    absent = [(cell, reason) for cell, reason in (states or {}).items() if reason]
    summary = summarize(cells, [(cell, reason) for cell, reason in absent if cell.fraction == 1])
    spread = seed_spread(cells)
    axis = data_fraction(current, lambda cell: None if cell_hole(cell) else cell_changes(cell),
                         lambda means, dataset: _best_peer(means, _headline_higher(current, dataset)))
    table = {"cells": [{**{key: cell.get(key) for key in ("dataset", "backbone", "seed", "parameters", "steps",
                                                          "seconds", "step_cost", "models")},
                        "fraction": fraction_of(cell), "converged": cell_convergence(cell)["converged"]}
                       for cell in current],
             "summary": summary, "seeds": spread, "data_fraction": axis}
    keyed = summary if summary_by == "dataset" else {row["headline"]: {"dataset": dataset, **row}
                                                      for dataset, row in summary.items()}
    write_text(results / f"{name}.json", json.dumps({**table, "summary": keyed}, indent=2))
    scarce = [(cell, reason) for cell, reason in absent if cell.fraction != 1]
    write_text(results / f"{name}.md", markdown(cells, summary, spread) + fraction_markdown(axis, scarce))
    chart = results / f"{name}.png"
    if changes_by_backbone(cells):
        bar_chart(cells, chart)
    else:
        chart.unlink(missing_ok=True)  # no chart of cells no longer in the table
    if axis:
        plot_data_fraction(axis, results / name / "data_fraction.png")
    leads = results / name / "leads"
    for cell in (cell for cell in cells if cell.get("per_lead")):
        leads.mkdir(parents=True, exist_ok=True)
        plot_lead_curves(leads / f"{_cell(cell).name}.png", cell["per_lead"], f"{_cell(cell).name}, test split")
    return table
