"""``sfp table``: compute the cells of a results table (resumable, one JSON each) and render it from the JSONs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register ``table``."""
    table = subparsers.add_parser("table", help="compute and render a results table (e.g. --config table1)")
    table.add_argument("--config", required=True, help="a table config: shipped name or YAML file")
    table.add_argument("--cell", action="append", default=[], metavar="DATASET/BACKBONE/SEED[/FRACTION]",
                       help="compute only these cells (repeatable); default: every cell")
    table.add_argument("--render", action="store_true", help="only rebuild the table from the cells' JSON files")
    table.add_argument("--explain", action="store_true",
                       help="print, per cell, whether it would be reused or why not, and compute nothing")
    table.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Check the table config, the cells asked for, every cell's pipeline config and the cells' JSON files before
    any work; compute the cells asked for (those done with the same settings are skipped), then render the table,
    printing one line per cell left out of its means."""
    from sfp.errors import UserError
    from sfp.table.cellfile import read_cells
    from sfp.table.cells import cell_path, cell_state, compute_cell, upgrade_cell
    from sfp.table.render import render
    from sfp.table.spec import Cell, load_table

    table = load_table(args.config)
    cells = table.cells()
    chosen = [Cell.parse(text) for text in args.cell] or cells
    unknown = [text for text, cell in zip(args.cell, chosen) if cell not in cells]
    if unknown:
        raise UserError(f"no such cell in {args.config}: {', '.join(unknown)}")
    configs = {cell: _cell_config(args.config, table, cell) for cell in cells}
    read_cells(Path(table.results) / table.name / "cells", cells)
    for cell in cells:  # cells an earlier sfp wrote with today's settings keep them in today's form
        if cell_path(table, cell).exists() and upgrade_cell(cell_path(table, cell), configs[cell]):
            print(f"{cell_path(table, cell)}: upgraded to stored settings (computed with today's)")
    if args.explain:
        for cell in chosen:
            print(f"[{cell.name}] " + (f"computed: {state}" if (state := cell_state(table, cell, configs[cell]))
                                      else "reused"))
        return
    if not args.render:
        for cell in chosen:
            compute_cell(table, cell, configs[cell])
    states = {cell: cell_state(table, cell, configs[cell]) for cell in cells}
    summary = render(table.results, table.name, states, table.summary_by)["summary"]
    output = f"{table.results}/{table.name}.md"
    for hole in (hole for row in summary.values() for hole in row["missing"]):
        print(f"{output}: left out of the means: {hole['cell']} ({hole['reason']})")
    print(f"{output}: SFP vs equal steps: " + ", ".join(
        f"{d} {s['headline']} " + ("n/a" if s["sfp_vs_baseline_steps"] is None else
                                  f"{100 * s['sfp_vs_baseline_steps']:+.1f}% ({s['averaged_cells']} of "
                                  f"{s['table_cells']} cells)") for d, s in summary.items()))


def _cell_config(config: str, table: Any, cell: Any) -> dict[str, Any]:
    """The cell's run spec; a mistake in it is one line naming the table config and the dataset's row."""
    from sfp.configs import resolve
    from sfp.errors import UserError
    from sfp.table.cells import cell_config

    try:
        return cell_config(table, cell)
    except UserError as err:
        raise UserError(f"{resolve(config)}: datasets.{cell.dataset} (cell {cell.name}): {err}") from None
