"""``sfp pipeline`` (the staged SFP run of one config) and ``sfp demo`` (the default storms pipeline)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DEMO_CONFIG = Path("configs/storms_sfp.yaml")


def add_parsers(subparsers: Any) -> None:
    """Register ``pipeline`` and ``demo``."""
    from sfp.pipeline import STAGES

    pipeline = subparsers.add_parser("pipeline", help="run the SFP stages of a config (skips finished stages)")
    pipeline.add_argument("--config", required=True, help="pipeline YAML, e.g. configs/storms_sfp.yaml")
    pipeline.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="override a config key (dotted path, YAML value), repeatable")
    pipeline.add_argument("--until", choices=STAGES, help="stop after this stage")
    pipeline.set_defaults(run=run)
    demo = subparsers.add_parser("demo", help=f"the main job: the pipeline of {DEMO_CONFIG}")
    demo.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    demo.set_defaults(run=run, config=str(DEMO_CONFIG), until=None)


def run(args: argparse.Namespace) -> None:
    """Run the pipeline, then print the comparison table once the report exists."""
    from sfp.pipeline import run_pipeline
    from sfp.report.markdown import comparison_table

    pipeline = run_pipeline(args.config, args.set, args.until)
    metrics = pipeline.root / "metrics.json"
    if metrics.is_file() and "report" in pipeline.manifest.stages:
        results = json.loads(metrics.read_text())
        print(f"\n{results['dataset']}: test split\n")
        print(comparison_table(results["models"]))
        print(f"\nreport: {pipeline.root / 'report.md'}")
