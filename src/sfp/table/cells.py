"""Compute a table's cells: one pipeline run each (the world model trained once per dataset and share of the
training data, each agent once per dataset, backbone, seed and share: rows of one dataset judged on different
rewards reuse them), one JSON each.

A cell's JSON (``<results>/cells/<dataset>-<backbone>-s<seed>.json``) holds its test metrics for persistence, the
agent, the equal-step and equal-time MSE baselines, the surrogate baseline (with its weight and the validation MSE
changes it was chosen by) and SFP, the per-lead views of persistence, the equal-step and surrogate baselines and SFP
(:mod:`sfp.report.leads`), the stage seconds and steps, the cost of an SFP step in baseline steps that gave the
equal-time baseline its steps (:mod:`sfp.step_cost`), the agent's parameter count, the run spec it was computed
with (``spec``: the resolved pipeline config, where its run lives left out) and the code (``code``: sfp's version
and each stage's code version). A cell whose spec equals today's field by field (:func:`sfp.reuse.first_difference`)
and whose code is today's is done; any other is (re)computed, so a changed setting is never mixed in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sfp
from sfp import stage_graph
from sfp.data.writing import write_text
from sfp.legacy_digests import cell_digest as legacy_cell_digest
from sfp.legacy_digests import legacy_code
from sfp.pipeline import Pipeline
from sfp.pipeline_config import load_layers
from sfp.reuse import first_difference, settings
from sfp.run_folder import claim
from sfp.run_spec import RunSpec
from sfp.stage_graph import PEER_BASELINES
from sfp.table.cellfile import LEAD_MODELS, cell_text, read_cell
from sfp.table.convergence import convergence, validation_curve
from sfp.table.spec import Cell, TableSpec
from sfp.training import writable_run_dir

# where and how a cell runs, not what it computes (its shared world model and agent: their own settings are its)
NOT_SETTINGS = ("run_dir", "until", "force", "world_model_from", "agent_from")


def _row_layers(table: TableSpec, dataset: str) -> tuple[str, dict[str, Any]]:
    row = table.datasets[dataset]
    return row.pipeline, row.settings


def _share(fraction: float) -> dict[str, Any]:
    """The data setting of a cell on ``fraction`` of the training sequences (none on all of them)."""
    return {} if fraction == 1 else {"data": {"init_args": {"train_fraction": fraction}}}


def world_model_config(table: TableSpec, dataset: str, fraction: float = 1.0) -> dict[str, Any]:
    """The run spec of the world model shared by the row ``dataset``'s cells on ``fraction`` of the training data
    (the pipeline up to its world_model stage), in a folder of the row's dataset: rows of one dataset share it."""
    folder = "world_model" + ("" if fraction == 1 else f"-f{fraction:g}")
    return load_layers(*_row_layers(table, dataset), _share(fraction),
                       {"run_dir": str(Path(table.runs) / table.datasets[dataset].dataset / folder),
                        "until": "world_model"})


def _agent_axes(table: TableSpec, cell: Cell) -> dict[str, Any]:
    return {"seed_everything": cell.seed,
            "agent": {"init_args": {"backbone": cell.backbone, "backbone_kwargs": table.backbones[cell.backbone]}}}


def agent_config(table: TableSpec, cell: Cell) -> dict[str, Any]:
    """The run spec of the cell's agent (the pipeline up to its agent stage), in a folder of the row's dataset:
    the rows of one dataset judged on different rewards share their agents (a row whose agent settings differ
    trains its own there again; the stage compares settings)."""
    folder = f"agent-{cell.backbone}-s{cell.seed}" + ("" if cell.fraction == 1 else f"-f{cell.fraction:g}")
    return load_layers(*_row_layers(table, cell.dataset), _share(cell.fraction), _agent_axes(table, cell),
                       {"run_dir": str(Path(table.runs) / table.datasets[cell.dataset].dataset / folder),
                        "until": "agent"})


def cell_config(table: TableSpec, cell: Cell, world_model: str | None = None,
                agent: str | None = None) -> dict[str, Any]:
    """The cell's run spec, checked: the dataset's pipeline config and settings, then the cell's own axes (its
    share of the training data, seed, backbone, every comparison) and, once they exist, its shared world model and
    agent (where they come from is not one of its settings: :data:`NOT_SETTINGS`)."""
    axes = {**_agent_axes(table, cell), "run_dir": str(Path(table.runs) / cell.dataset / cell.name),
            "equal_time_baseline": True, "surrogate_baseline": True, "world_model_from": world_model,
            "agent_from": agent}
    return load_layers(*_row_layers(table, cell.dataset), _share(cell.fraction), axes)


def cell_path(table: TableSpec, cell: Cell) -> Path:
    return Path(table.results) / table.name / "cells" / f"{cell.name}.json"


def cell_spec(config: dict[str, Any]) -> dict[str, Any]:
    """What a cell stores of its run spec: every setting, where and how it runs left out."""
    return settings(config, [key for key in config if key not in NOT_SETTINGS])


def cell_code() -> dict[str, Any]:
    """What a cell's numbers depend on besides its settings: sfp's version and every stage's code version."""
    return {"sfp": sfp.__version__, "stages": {stage.name: stage.code for stage in stage_graph.GRAPH}}


def why_stale(done: dict[str, Any], config: dict[str, Any]) -> str | None:
    """Why the cell ``done`` (its JSON) was not computed with the run spec ``config`` and today's code; None if it
    was."""
    if "spec" not in done:
        return "computed by an earlier sfp with other settings"
    stored, today = done.get("code", {}), cell_code()
    if stored.get("sfp") != today["sfp"]:
        return f"code: sfp {stored.get('sfp')} -> {today['sfp']}"
    for stage, code in stored.get("stages", {}).items():  # a stage added since was not part of it
        stage = stage_graph.RENAMED.get(stage, stage)
        if today["stages"].get(stage) != code:
            return f"code: {stage} {code} -> {today['stages'].get(stage, 'gone')}"
    return first_difference(done["spec"], config, cell_spec(config))


def upgrade_cell(path: Path, config: dict[str, Any]) -> bool:
    """A cell an earlier sfp wrote with today's settings (its settings hash is today's) rewritten with today's
    spec and the code it ran in place of the hash, so that it stays reused while that code is today's; True if it
    was."""
    done = read_cell(path)
    if "spec" in done or done.get("settings") != legacy_cell_digest(config):
        return False
    upgraded = {key: value for key, value in done.items() if key not in ("settings", "version")}
    code = {**cell_code(), "stages": {stage.name: legacy_code(stage.name) for stage in stage_graph.GRAPH
                                      if legacy_code(stage.name)}}
    write_text(path, cell_text({**upgraded, "spec": cell_spec(config), "code": code}))
    return True


def cell_state(table: TableSpec, cell: Cell, config: dict[str, Any]) -> str | None:
    """None when the cell's JSON was computed with ``config`` and today's code; else why it is not (its file
    absent: "not computed"; else "stale: " and the first difference)."""
    path = cell_path(table, cell)
    if not path.exists():
        return "not computed"
    reason = why_stale(read_cell(path, table.cells()), config)
    return f"stale: {reason}" if reason else None


def agent_parameters(config: dict[str, Any]) -> int:
    """The number of trainable parameters of the agent a resolved pipeline config builds (its size in the table)."""
    return sum(parameter.numel() for parameter in RunSpec.of(config).agent.build().parameters()
               if parameter.requires_grad)


def compute_cell(table: TableSpec, cell: Cell, config: dict[str, Any],
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) the cell's pipeline and write its JSON; a cell already done with the run spec ``config``
    (:func:`cell_config`) is read (checked: :func:`~sfp.table.cellfile.read_cell`)."""
    path = cell_path(table, cell)
    if cell_state(table, cell, config) is None:
        log(f"[{cell.name}] done before, reused")
        return read_cell(path, table.cells())
    claim(writable_run_dir(table.runs), "table", table.name)  # the table's runs folder: its cells only
    world = Pipeline(world_model_config(table, cell.dataset, cell.fraction), log, made_by="table", run=table.name)
    world.run("world_model")
    agent = Pipeline(agent_config(table, cell), log, made_by="table", run=table.name)
    agent.run("agent")
    log(f"[{cell.name}] running")
    pipeline = Pipeline(cell_config(table, cell, world.checkpoint("world_model"), agent.checkpoint("agent")), log,
                        made_by="table", run=table.name)
    stages = {**pipeline.run(), "agent": agent.manifest.stages["agent"]}  # the agent's own training
    results = json.loads((pipeline.stage_dir("evaluate") / "metrics.json").read_text())
    content = {"dataset": cell.dataset, "task": table.datasets[cell.dataset].dataset, "backbone": cell.backbone,
               "seed": cell.seed, "fraction": cell.fraction,
               "seconds": {stage: entry.get("seconds") for stage, entry in stages.items()},
               "steps": {stage: entry.get("outputs", {}).get("steps") for stage, entry in stages.items()},
               "parameters": agent_parameters(pipeline.config), "spec": cell_spec(config), "code": cell_code(),
               "step_cost": stages["baseline_time"]["outputs"].get("step_cost", {}).get("ratio"),
               "surrogate": {key: stages["surrogate"]["outputs"][key] for key in ("weight", "val_mse_change")},
               "peers": {peer: {key: value for key, value in stages[peer]["outputs"].items()
                                if key in ("weight", "blend", "val_mse_change")}
                         for peer in (*PEER_BASELINES, "qmap") if pipeline.active(peer)},
               "metric": results["metric"], "models": results["models"],
               "per_lead": {name: views for name, views in results["per_lead"].items() if name in LEAD_MODELS}}
    if "per_window" in results:  # the states behind the intervals (an evaluation from before them has none)
        content["per_window"] = results["per_window"]
    content["convergence"] = convergence(validation_curve(agent.stage_dir("agent") / "logs"), content["models"])
    write_text(path, cell_text(content))
    return content
