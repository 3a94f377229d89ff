"""Compute a table's cells: one pipeline run each (the world model trained once per dataset), one JSON each.

A cell's JSON (``<results>/cells/<dataset>-<backbone>-s<seed>.json``) holds its test metrics for persistence, the
agent, the equal-step and equal-time MSE baselines, the surrogate baseline (with its weight and the validation MSE
changes it was chosen by) and SFP, the per-lead views of persistence, the equal-step and surrogate baselines and SFP
(:mod:`sfp.report.leads`), the stage seconds and steps, the agent's parameter count, the hash of the resolved pipeline
config and the sfp version. A cell whose JSON carries the current hash is done; any other is (re)computed, so a
changed setting is never mixed in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sfp
from sfp.data.writing import write_text
from sfp.pipeline import STAGE_VERSIONS, Pipeline, without_added_defaults
from sfp.pipeline_config import instantiate, load_config
from sfp.run_folder import claim
from sfp.table.cellfile import LEAD_MODELS, MODEL_NAMES, read_cell
from sfp.table.spec import Cell, TableSpec, settings_digest
from sfp.training import writable_run_dir


def _shared_world_model(table: TableSpec, dataset: str) -> list[str]:
    row = table.datasets[dataset]
    return ["--config", row.pipeline, *row.overrides, "--run_dir", str(Path(table.runs) / dataset / "world_model")]


def cell_arguments(table: TableSpec, cell: Cell, world_model: str | None = None) -> list[str]:
    """The pipeline command line of one cell (with the dataset's shared world model, once it exists)."""
    row = table.datasets[cell.dataset]
    shared = ["--world_model_from", world_model] if world_model else []
    return ["--config", row.pipeline, *row.overrides, "--run_dir", str(Path(table.runs) / cell.dataset / cell.name),
            "--seed_everything", str(cell.seed), "--agent.init_args.backbone", cell.backbone,
            "--agent.init_args.backbone_kwargs", json.dumps(table.backbones[cell.backbone]),
            "--equal_time_baseline", "true", "--surrogate_baseline", "true", *shared]


def cell_path(table: TableSpec, cell: Cell) -> Path:
    return Path(table.results) / table.name / "cells" / f"{cell.name}.json"


def cell_digest(table: TableSpec, cell: Cell) -> str:
    """The hash of a cell's resolved pipeline config (where its run lives left out) and of the stages' versions."""
    config = load_config(cell_arguments(table, cell))
    settings = {key: without_added_defaults(key, value) for key, value in config.items()
                if key not in ("run_dir", "until", "force")}
    return settings_digest({**settings, "stage_versions": STAGE_VERSIONS})


def agent_parameters(config: dict[str, Any]) -> int:
    """The number of trainable parameters of the agent a resolved pipeline config builds (its size in the table)."""
    return sum(parameter.numel() for parameter in instantiate(config["agent"]).parameters()
               if parameter.requires_grad)


def compute_cell(table: TableSpec, cell: Cell, digest: str, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) the cell's pipeline and write its JSON; a cell already done with these settings (``digest``:
    :func:`cell_digest`) is read (checked: :func:`~sfp.table.cellfile.read_cell`)."""
    path = cell_path(table, cell)
    done = read_cell(path, table.cells()) if path.exists() else {}
    if done.get("settings") == digest:
        log(f"[{cell.name}] done before, skipped")
        return done
    claim(writable_run_dir(table.runs), "table", table.name)  # the table's runs folder: its cells only
    shared = load_config([*_shared_world_model(table, cell.dataset), "--until", "world_model"])
    world = Pipeline(shared, log, made_by="table", run=table.name)
    world.run("world_model")
    log(f"[{cell.name}] running")
    pipeline = Pipeline(load_config(cell_arguments(table, cell, world.checkpoint("world_model"))), log,
                        made_by="table", run=table.name)
    stages = pipeline.run()
    results = json.loads((pipeline.stage_dir("evaluate") / "metrics.json").read_text())
    content = {"dataset": cell.dataset, "backbone": cell.backbone, "seed": cell.seed,
               "seconds": {stage: entry.get("seconds") for stage, entry in stages.items()},
               "steps": {stage: entry.get("outputs", {}).get("steps") for stage, entry in stages.items()},
               "parameters": agent_parameters(pipeline.config), "settings": digest, "version": sfp.__version__,
               "surrogate": {key: stages["surrogate"]["outputs"][key] for key in ("weight", "val_mse_change")},
               "models": {MODEL_NAMES[name]: values for name, values in results["models"].items()},
               "per_lead": {MODEL_NAMES.get(name, name): views for name, views in results["per_lead"].items()
                            if name in LEAD_MODELS}}
    write_text(path, json.dumps(content, indent=2))
    return content
