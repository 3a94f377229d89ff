"""The staged SFP run: data -> world_model -> agent -> baseline_steps -> sfp -> [baseline_time] -> [peers] ->
evaluate -> report (the graph: :mod:`sfp.stage_graph`; what each stage does: :mod:`sfp.stages`).

Every stage keeps its output in ``<run_dir>/<stage>/`` and is recorded in ``<run_dir>/manifest.json`` with the
settings it read, its code version, the runs of the stages it used and its wall time (:mod:`sfp.manifest`).
Re-running reuses every finished stage whose settings equal today's field by field (:mod:`sfp.reuse`), whose code
is the same and whose inputs were not made again; an interrupted stage resumes from its ``checkpoints/last.ckpt``; a
changed stage is re-run with everything after it. ``--explain`` says which, and why, without running anything.

The config and its checks: :mod:`sfp.pipeline_config`; the run folder's owner and lock: :mod:`sfp.run_folder`.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch

from sfp import stage_graph
from sfp.errors import UserError
from sfp.manifest import Manifest, move_renamed_folders
from sfp.pipeline_config import load_config
from sfp.quantile_map import MAP_FILE
from sfp.run_folder import run_folder
from sfp.run_spec import RunSpec
from sfp.stage_graph import BY_NAME, COMPARED, STAGES, Stage
from sfp.stages import WORK
from sfp.training import resolve_checkpoint, writable_run_dir

PRINT = partial(print, flush=True)


class Pipeline:
    """Runs the stages of one run spec (a checked pipeline config, read by the stages as a
    :class:`~sfp.run_spec.RunSpec`); `run()` does what is not done yet, in a run
    folder made by ``made_by`` (``pipeline``, or ``table`` for a table's cells, then ``run`` is the table's name)."""

    def __init__(self, config: dict[str, Any], log: Callable[[str], None] = PRINT, made_by: str = "pipeline",
                 run: str | None = None):
        self.config, self.log, self.made_by, self.run_name = config, log, made_by, run
        self.spec = RunSpec.of(config)
        self.root = Path(self.spec.run_dir)  # made by run(); --explain only reads
        self.seed = self.spec.seed_everything
        self.work = {name: partial(work, self) for name, work in WORK.items()}
        self.manifest = self._read_manifest()
        self._datamodule = None
        self.validated: dict[str, dict[str, float]] = {}  # stages.validate's scores, by checkpoint path

    def _read_manifest(self) -> Manifest:
        return Manifest(self.root / "manifest.json", self.config, self.active)

    def active(self, stage: str) -> bool:
        """Whether ``stage`` is part of this run (an optional comparison runs only when its switch is on)."""
        switch = BY_NAME[stage].switch
        return switch is None or self.spec.switched_on(switch)

    @property
    def datamodule(self) -> L.LightningDataModule:
        if self._datamodule is None:
            self._datamodule = self.spec.data.build()
            self._datamodule.prepare_data()
            self._datamodule.setup("fit")
        return self._datamodule

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def checkpoint(self, stage: str) -> str:
        """The selected checkpoint of a finished training stage (best on validation, else last), or the qmap
        peer's map file."""
        for name in ("best", "last"):
            path = resolve_checkpoint(self.stage_dir(stage), name, required=False)
            if path:
                return path
        if (self.stage_dir(stage) / MAP_FILE).is_file():
            return str(self.stage_dir(stage) / MAP_FILE)
        raise UserError(f"{self.stage_dir(stage)}: no checkpoint; run the {stage} stage first")

    def compared_checkpoints(self) -> dict[str, str]:
        """The checkpoints of the fine-tuned agents this run compares, by stage."""
        return {stage: self.checkpoint(stage) for stage in COMPARED if self.active(stage)}

    # ------------------------------------------------------------------ the graph
    def plan(self, until: str | None = None, needed_only: bool = False) -> list[tuple[Stage, str | None]]:
        """Each active stage (up to ``until``; with ``needed_only``, only ``until`` and the stages it needs) with why
        it runs, or None where its finished outputs are reused."""
        if until is not None and until not in STAGES:
            raise UserError(f"unknown stage {until!r}; stages: {', '.join(STAGES)}")
        wanted = stage_graph.with_needs(until) if needed_only and until is not None else set(STAGES)
        plan: list[tuple[Stage, str | None]] = []
        remade: set[str] = set()  # a stage whose input is made again runs again, whatever its settings
        for stage in stage_graph.GRAPH:
            if self.active(stage.name) and stage.name in wanted:
                reason = self.manifest.why_not_reused(stage, remade) or self._budget_changed(stage)
                if reason:
                    remade.add(stage.name)
                plan.append((stage, reason))
            if stage.name == until:
                break
        return plan

    def explain(self, until: str | None = None) -> list[str]:
        """One line per stage: reused, or why it would run."""
        return [f"[{stage.name}] " + (f"runs: {reason}" if reason else "reused") for stage, reason in self.plan(until)]

    def run(self, until: str | None = None, needed_only: bool = False) -> dict[str, Any]:
        """Run every unfinished stage (up to `until`; with `needed_only`, only those `until` needs), reusing finished
        ones; returns the manifest's stages."""
        self.root = writable_run_dir(self.spec.run_dir)
        with run_folder(self.root, self.made_by, self.run_name, force=self.spec.force):
            move_renamed_folders(self.root)
            self.manifest = self._read_manifest()  # as the lock found it
            for stage, reason in self.plan(until, needed_only):
                if reason is None:
                    self.log(f"[{stage.name}] done before, reused")
                else:
                    self._run_stage(stage, reason)
        return self.manifest.stages

    def _run_stage(self, stage: Stage, reason: str) -> None:
        self._set_aside(stage)
        self.log(f"[{stage.name}] running ({reason})")
        self.manifest.start(stage)
        start = time.perf_counter()
        outputs = self.work[stage.name]() or {}
        seconds = time.perf_counter() - start + outputs.get("seconds_before_resume", 0.0)
        self.manifest.finish(stage, seconds, outputs)
        shutil.rmtree(self._aside(stage.name), ignore_errors=True)  # the outputs it replaced, if any
        self.log(f"[{stage.name}] done in {seconds:.1f} s")

    def _budget_changed(self, stage: Stage) -> str | None:
        """A finished equal-time baseline given the SFP stage's seconds stands only while they are still its budget
        (an SFP stage re-run with the same settings takes other seconds; a budget of steps follows its steps)."""
        if stage.name != "baseline_time" or self.spec.equal_time_budget != "stage_seconds":
            return None
        budget = self.manifest.stages["baseline_time"].get("outputs", {}).get("budget_seconds")
        seconds = self.manifest.stages.get("sfp", {}).get("seconds")
        return None if budget == seconds else f"its budget {budget} s is not the SFP stage's {seconds} s"

    def _aside(self, stage: str) -> Path:
        return self.root / f"{stage}.replaced"

    def _set_aside(self, stage: Stage) -> None:
        """A stage whose settings, code or inputs changed starts over: its old outputs move to
        ``<stage>.replaced`` and are deleted only once the new run of the stage is done, so a failing replacement
        loses nothing. An unfinished run with today's settings resumes instead."""
        entry = self.manifest.stages.get(stage.name)
        if entry is None or not self.stage_dir(stage.name).exists() or not self.manifest.changed(stage, set()):
            return
        aside = self._aside(stage.name)
        if entry.get("status") == "done" or not aside.exists():  # keep the last finished outputs set aside
            shutil.rmtree(aside, ignore_errors=True)
            self.stage_dir(stage.name).rename(aside)
        else:
            shutil.rmtree(self.stage_dir(stage.name))  # an unfinished replacement: the finished outputs stay aside


def run_pipeline(argv: list[str], explain: bool = False) -> Pipeline:
    """Load a pipeline config (``--config ...`` and overrides) and run what is not done yet, or (``explain``) print
    what would run and why."""
    config = load_config(argv)
    pipeline = Pipeline(config)
    if explain:
        for line in pipeline.explain(config["until"]):
            pipeline.log(line)
        return pipeline
    torch.set_float32_matmul_precision("high")
    pipeline.run(config["until"])
    return pipeline
