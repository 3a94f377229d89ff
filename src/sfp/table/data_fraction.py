"""The data-scarce axis of a table: SFP's changes for the cells run on a share of the training sequences, beside
the same dataset/backbone on all of them (issue 32; the cells: :attr:`TableSpec.fractions`)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from sfp.report.figures import pyplot, save_figure

FRACTION_CHANGES = ("sfp_vs_baseline_steps", "sfp_vs_baseline_time", "sfp_vs_best_peer", "mse_vs_baseline_steps")


def fraction_of(cell: dict[str, Any]) -> float:
    """The share of the training sequences a cell ran on (1: all)."""
    return float(cell.get("fraction", 1.0))


def data_fraction(cells: list[dict[str, Any]], changes: Any, best_peer: Any) -> dict[str, dict[str, Any]]:
    """Per ``dataset/backbone`` that has cells on a share of the data: per fraction (``"0.1"`` ... ``"1"``) the
    mean over seeds of each of :data:`FRACTION_CHANGES`; ``changes(cell)`` gives a cell's changes (None where it
    cannot be used) and ``best_peer(means, dataset)`` the best peer of a set of a dataset's mean changes."""
    grouped: dict[tuple[str, str], dict[float, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for cell in cells:
        found = changes(cell)
        if found is not None:
            grouped[cell["dataset"], cell["backbone"]][fraction_of(cell)].append(found)
    axis = {}
    for (dataset, backbone), by_fraction in sorted(grouped.items()):
        if all(fraction == 1 for fraction in by_fraction):
            continue
        rows = {}
        for fraction, seeds in sorted(by_fraction.items()):
            means = {key: _mean([seed.get(key) for seed in seeds]) for key in seeds[0]}
            means.update(best_peer(means, dataset))
            rows[f"{fraction:g}"] = {key: means.get(key) for key in FRACTION_CHANGES} | {"seeds": len(seeds)}
        axis[f"{dataset}/{backbone}"] = rows
    return axis


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


def plot_data_fraction(axis: dict[str, dict[str, Any]], path: Path) -> Path:
    """Each change against the share of the training data, one panel per dataset/backbone."""
    plt = pyplot()

    fig, axes = plt.subplots(1, len(axis), figsize=(4.5 * len(axis), 3.2), squeeze=False)
    for panel, (pair, rows) in zip(axes[0], axis.items()):
        fractions = [float(fraction) for fraction in rows]
        for key in FRACTION_CHANGES[:3]:
            values = [rows[fraction][key] for fraction in rows]
            if any(value is not None for value in values):
                panel.plot(fractions, [None if v is None else 100 * v for v in values], marker="o",
                           label=key.replace("sfp_vs_", "vs "))
        panel.axhline(0, color="black", lw=0.8)
        panel.set_xscale("log")
        panel.set_xlabel("share of the training sequences")
        panel.set_ylabel("SFP's change (%)")
        panel.set_title(pair)
        panel.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, 110)
