"""``sfp pipeline`` (the staged SFP run of one config) and ``sfp demo`` (the shipped storms pipeline)."""

from __future__ import annotations

import json

DEMO_CONFIG = "storms_sfp"


def run(argv: list[str]) -> None:
    """Run the pipeline of ``--config ...`` with overrides, then print the comparison table once it exists (with
    ``--explain``: only what would run and why)."""
    from sfp.pipeline import run_pipeline
    from sfp.report.markdown import comparison_table

    explain = "--explain" in argv
    pipeline = run_pipeline([word for word in argv if word != "--explain"], explain)
    if explain:
        return
    metrics = pipeline.stage_dir("evaluate") / "metrics.json"  # the stage's own record, whatever is beside it
    if metrics.is_file() and "report" in pipeline.manifest.stages:
        results = json.loads(metrics.read_text())
        print(f"\n{results['dataset']}: test split\n")
        print(comparison_table(results["models"]))
        print(f"\nreport: {pipeline.root / 'report.md'}")


def demo(argv: list[str]) -> None:
    """The pipeline of the shipped ``storms_sfp`` config (overrides allowed)."""
    run(["--config", DEMO_CONFIG, *argv])
