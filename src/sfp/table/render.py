"""The table from the cells' JSON files alone: ``<name>.md``, ``<name>.json``, a bar chart of SFP's changes and each
cell's per-lead views (``<name>/leads/<cell>.png``).

A relative change is ``(sfp - baseline) / |baseline|`` as a fraction, on the dataset's headline metric and on
MSE. Seeds of one dataset/backbone are averaged first; the summary is the mean over backbones, as in the paper.
Where a dataset/backbone has several seeds, the table also gives each change's per-seed values, mean and sample
standard deviation (how much of a change one seed's luck could make).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from sfp.report.leads import plot_lead_curves
from sfp.table.spec import Cell
from sfp.task import TASKS

BASELINES = {"sfp_vs_baseline_steps": "baseline_steps", "sfp_vs_baseline_time": "baseline_time",
             "sfp_vs_surrogate": "surrogate"}
MODELS = ("persistence", "agent", "baseline_steps", "baseline_time", "surrogate", "sfp")


def relative(new: float | None, old: float | None) -> float | None:
    """``(new - old) / |old|``; None when either is missing or ``old`` is 0."""
    if new is None or old is None or old == 0 or not math.isfinite(old) or not math.isfinite(new):
        return None
    return (new - old) / abs(old)


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


def cell_changes(cell: dict[str, Any]) -> dict[str, float | None]:
    """SFP's relative changes in one cell: headline against each baseline, and MSE against the equal-step one."""
    headline, models = TASKS[cell["dataset"]].headline, cell["models"]
    sfp = models.get("sfp", {})
    changes = {key: relative(sfp.get(headline), models.get(name, {}).get(headline)) for key, name in BASELINES.items()}
    changes["mse_vs_baseline_steps"] = relative(sfp.get("mse"), models.get("baseline_steps", {}).get("mse"))
    return changes


def changes_by_backbone(cells: list[dict[str, Any]]) -> dict[str, dict[str, dict[int, dict[str, float | None]]]]:
    """``dataset -> backbone -> seed ->`` the cell's changes (:func:`cell_changes`), datasets in the cells' order,
    backbones and seeds sorted."""
    grouped: dict[str, dict[str, dict[int, dict[str, float | None]]]] = defaultdict(lambda: defaultdict(dict))
    for cell in cells:
        grouped[cell["dataset"]][cell["backbone"]][cell["seed"]] = cell_changes(cell)
    return {dataset: {backbone: dict(sorted(seeds.items())) for backbone, seeds in sorted(backbones.items())}
            for dataset, backbones in grouped.items()}


def summarize(cells: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per dataset: the headline metric and the mean over backbones of each change (seeds averaged first)."""
    summary = {}
    for dataset, backbones in changes_by_backbone(cells).items():
        per_backbone = {backbone: {key: _mean([c[key] for c in seeds.values()]) for key in next(iter(seeds.values()))}
                        for backbone, seeds in backbones.items()}
        keys = next(iter(per_backbone.values()))
        summary[dataset] = {"headline": TASKS[dataset].headline, "backbones": list(per_backbone),
                            **{key: _mean([changes[key] for changes in per_backbone.values()]) for key in keys}}
    return summary


def seed_spread(cells: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per ``dataset/backbone`` with more than one seed: the seeds and, for each change, the per-seed values, their
    mean and sample standard deviation."""
    spread = {}
    for dataset, backbones in sorted(changes_by_backbone(cells).items()):
        for backbone, seeds in backbones.items():
            if len(seeds) < 2:
                continue
            row: dict[str, Any] = {"seeds": list(seeds)}
            for key in next(iter(seeds.values())):
                values = [changes[key] for changes in seeds.values()]
                known = [value for value in values if value is not None]
                row[key] = {"values": values, "mean": _mean(known),
                            "std": statistics.stdev(known) if len(known) > 1 else None}
            spread[f"{dataset}/{backbone}"] = row
    return spread


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}%"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _count(value: float | None) -> str:
    """A whole number with thousands separators, or ``n/a``."""
    return "n/a" if value is None else f"{value:,.0f}"


def _name(cell: dict[str, Any]) -> str:
    """The cell's name (its JSON file's stem), from the cell's own fields."""
    return Cell(cell["dataset"], cell["backbone"], cell["seed"]).name


def _label(cell: dict[str, Any]) -> str:
    """``dataset/backbone/s<seed>``, as the table's rows name a cell."""
    return f"{cell['dataset']}/{cell['backbone']}/s{cell['seed']}"


def _beats(cell: dict[str, Any], metric: str) -> str:
    """Whether the agent is better than persistence on ``metric`` (higher or lower, by the metric)."""
    agent, persistence = (cell["models"].get(name, {}).get(metric) for name in ("agent", "persistence"))
    if agent is None or persistence is None:
        return "n/a"
    higher = metric == TASKS[cell["dataset"]].headline and TASKS[cell["dataset"]].higher_is_better
    return "yes" if (agent > persistence if higher else agent < persistence) else "**no**"


def _spread(change: dict[str, Any]) -> str:
    """``mean ± std (value, value, ...)`` in percent."""
    std = "n/a" if change["std"] is None else f"{100 * change['std']:.1f}%"
    return f"{_percent(change['mean'])} ± {std} ({', '.join(_percent(value) for value in change['values'])})"


def markdown(cells: list[dict[str, Any]], summary: dict[str, dict[str, Any]],
             spread: dict[str, dict[str, Any]] | None = None) -> str:
    """The summary (mean over backbones), the spread over seeds where there are several, each agent's size and
    training, and one row per cell."""
    lines = ["| dataset | headline | SFP vs equal steps | SFP vs equal time | SFP vs surrogate | MSE vs equal steps "
             "| backbones |", "|---|---|---|---|---|---|---|"]
    for dataset, row in summary.items():
        lines.append(f"| {dataset} | {row['headline']} | {_percent(row['sfp_vs_baseline_steps'])} | "
                     f"{_percent(row['sfp_vs_baseline_time'])} | {_percent(row['sfp_vs_surrogate'])} | "
                     f"{_percent(row['mse_vs_baseline_steps'])} | {', '.join(row['backbones'])} |")
    if spread:
        lines += ["", "| over seeds | seeds | SFP vs equal steps | SFP vs equal time | MSE vs equal steps |",
                  "|---|---|---|---|---|"]
        for pair, row in spread.items():
            lines.append(f"| {pair} | {', '.join(map(str, row['seeds']))} | {_spread(row['sfp_vs_baseline_steps'])} | "
                         f"{_spread(row['sfp_vs_baseline_time'])} | {_spread(row['mse_vs_baseline_steps'])} |")
    lines += ["", "| agent | parameters | steps | seconds |", "|---|---|---|---|"]
    lines += [f"| {_label(cell)} | {_count(cell.get('parameters'))} | "
              f"{_count(cell.get('steps', {}).get('agent'))} | {_count(cell['seconds'].get('agent'))} |"
              for cell in cells]
    lines += ["", "| cell | metric | " + " | ".join(MODELS) + " | agent beats persistence | seconds |",
              "|---" * (len(MODELS) + 4) + "|"]
    for cell in cells:
        headline = TASKS[cell["dataset"]].headline
        seconds = sum(value for value in cell["seconds"].values() if value)
        for metric in (headline, "mse"):
            values = [_number(cell["models"].get(model, {}).get(metric)) for model in MODELS]
            lines.append(f"| {_label(cell)} | {metric} | "
                         + " | ".join(values) + f" | {_beats(cell, metric)} | {seconds:.0f} |")
    return "\n".join(lines) + "\n"


def bar_chart(cells: list[dict[str, Any]], path: Path) -> Path:
    """SFP's headline change against the equal-step baseline, per backbone (seeds averaged, each seed a dot where
    there are several), one panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grouped = sorted(changes_by_backbone(cells).items())
    fig, axes = plt.subplots(1, len(grouped), figsize=(4 * len(grouped), 3.2), squeeze=False)
    for axis, (dataset, backbones) in zip(axes[0], grouped):
        rows = {backbone: [changes["sfp_vs_baseline_steps"] for changes in seeds.values()]
                for backbone, seeds in backbones.items()}
        names = list(rows)
        axis.bar(names, [100 * (_mean(rows[name]) or 0.0) for name in names])
        for name in names:  # each seed's change as a dot where there are several
            values = [100 * value for value in rows[name] if value is not None]
            if len(values) > 1:
                axis.scatter([name] * len(values), values, color="black", s=12, zorder=3)
        axis.axhline(0, color="black", lw=0.8)
        axis.set_title(f"{dataset}: {TASKS[dataset].headline}, SFP vs equal steps")
        axis.set_ylabel("change (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render(results: str | Path, name: str, digests: dict[str, str] | None = None) -> dict[str, Any]:
    """Rebuild ``<name>.md``, ``<name>.json`` and ``<name>.png`` in ``results`` from ``results/<name>/cells/*.json``.

    ``digests`` (cell file name -> current settings hash) leaves out cells computed with other settings.
    """
    results = Path(results)
    files = sorted((results / name / "cells").glob("*.json"))
    cells = [cell for cell in (json.loads(path.read_text()) for path in files)
             if digests is None or digests.get(_name(cell))
             == cell.get("settings")]
    summary, spread = summarize(cells), seed_spread(cells)
    table = {"cells": [{key: cell.get(key) for key in ("dataset", "backbone", "seed", "parameters", "steps",
                                                       "seconds", "models")}
                       for cell in cells], "summary": summary, "seeds": spread}
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(table, indent=2))
    (results / f"{name}.md").write_text(markdown(cells, summary, spread))
    if cells:
        bar_chart(cells, results / f"{name}.png")
    leads = results / name / "leads"
    for cell in (cell for cell in cells if cell.get("per_lead")):
        leads.mkdir(parents=True, exist_ok=True)
        plot_lead_curves(leads / f"{_name(cell)}.png", cell["per_lead"], f"{_name(cell)}, test split")
    return table
