"""Run every benchmark module (or those named on the command line) and print one table.

Usage: ``python -m benchmarks [name ...]`` where a name is a module suffix, e.g. ``data`` for ``bench_data``.
Rows are dicts with keys ``name``, ``value``, ``unit`` and optional ``note``; ratios measured in one run are
reported as rows of unit ``x``.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

import benchmarks


def _modules(selected: list[str]) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    if selected:
        unknown = [s for s in selected if f"bench_{s}" not in names]
        if unknown:
            sys.exit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(n[6:] for n in names)}")
        names = [f"bench_{s}" for s in selected]
    return names


def main(argv: list[str]) -> None:
    rows = []
    for name in _modules(argv):
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        for row in importlib.import_module(f"benchmarks.{name}").run():
            row = {"bench": name[6:], **row}
            rows.append(row)
            note = f"  ({row['note']})" if row.get("note") else ""
            print(f"  {row['name']:<58} {row['value']:>12.4g} {row['unit']}{note}", flush=True)
        print(f"   [{time.perf_counter() - start:.1f} s]", flush=True)
    out = Path("bench_results")
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main(sys.argv[1:])
