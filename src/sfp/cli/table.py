"""``sfp table``: compute the cells of a results table (resumable, one JSON each) and render it from the JSONs."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register ``table``."""
    table = subparsers.add_parser("table", help="compute and render a results table (e.g. --config table1)")
    table.add_argument("--config", required=True, help="a table config: shipped name or YAML file")
    table.add_argument("--cell", action="append", default=[], metavar="DATASET/BACKBONE/SEED",
                       help="compute only these cells (repeatable); default: every cell")
    table.add_argument("--render", action="store_true", help="only rebuild the table from the cells' JSON files")
    table.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Compute the cells asked for (those done with the same settings are skipped), then render the table."""
    from sfp.errors import UserError
    from sfp.table.cells import cell_digest, compute_cell
    from sfp.table.render import render
    from sfp.table.spec import Cell, load_table

    table = load_table(args.config)
    cells = table.cells()
    chosen = [Cell.parse(text) for text in args.cell] or cells
    unknown = [text for text, cell in zip(args.cell, chosen) if cell not in cells]
    if unknown:
        raise UserError(f"no such cell in {args.config}: {', '.join(unknown)}")
    if not args.render:
        for cell in chosen:
            compute_cell(table, cell)
    summary = render(table.results, table.name, {cell.name: cell_digest(table, cell) for cell in cells})["summary"]
    changes = {d: s["sfp_vs_baseline_steps"] for d, s in summary.items()}
    print(f"{table.results}/{table.name}.md: SFP vs equal steps: " + ", ".join(
        f"{d} {summary[d]['headline']} " + ("n/a" if c is None else f"{100 * c:+.1f}%") for d, c in changes.items()))
