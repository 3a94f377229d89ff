"""The staged SFP run: data -> world_model -> agent -> baseline -> sfp -> [baseline_time] -> [surrogate] -> evaluate
-> report.

Every stage keeps its output in ``<run_dir>/<stage>/`` and is recorded in ``<run_dir>/manifest.json`` with the hash
of the configuration it depends on and its wall time. Re-running skips finished stages whose configuration is
unchanged; a stage that was interrupted resumes from its ``checkpoints/last.ckpt``; a changed stage is re-run with
everything after it. The baseline is the agent trained on with MSE alone for exactly the SFP stage's steps (the
same :class:`SFPModule` with ``pseudo_labels.weight=0``), so the comparison is honest by construction. Optional:
the equal-wall-time baseline, and the surrogate baseline (MSE plus a differentiable stand-in for the headline
metric, its weight chosen on the validation split to match SFP's change of MSE).

The config and its checks: :mod:`sfp.pipeline_config`; the surrogate's weight search: :mod:`sfp.surrogate_weights`;
the run folder's owner and lock: :mod:`sfp.run_folder`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch

from sfp.data.writing import write_text
from sfp.errors import UserError
from sfp.pipeline_config import STAGES, instantiate, load_config
from sfp.run_folder import run_folder
from sfp.surrogate_weights import match_surrogate_weight
from sfp.training import (
    FitClock,
    prepare_strategy,
    read_checkpoint,
    resolve_checkpoint,
    run_callbacks,
    run_logger,
    writable_run_dir,
)

FINE_TUNING = ("sfp.lr", "sfp.weight_decay", "sfp_trainer")  # what the baselines share with SFP (no planning)
SECTIONS = {  # the config keys each stage reads itself (dotted for one key of a section)
    "data": ("data", "seed_everything"), "agent": ("agent", "agent_trainer", "agent_patience"),
    "baseline": FINE_TUNING, "world_model": ("world_model", "world_model_trainer", "world_model_from"),
    "sfp": ("sfp", "sfp_trainer"), "baseline_time": ("equal_time_baseline", *FINE_TUNING),
    "surrogate": ("surrogate_baseline", "surrogate_weights", *FINE_TUNING),
    "evaluate": (), "report": ("report",),
}
# Bumped when a stage's code makes other outputs from the same settings, so finished runs redo it (and what needs
# it): evaluate 2 scores forecasts kept inside the task's physical bounds.
STAGE_VERSIONS = {"evaluate": 2}
# Options added after runs were made, left out of a stage's hash while at these defaults: a finished stage stays
# done when the code learns an option its config never set.
ADDED_LATER = {("sfp", "planner", "centring"): "none", ("sfp", "planner", "wet"): None}
NEEDS = {  # the stages whose outputs each stage uses: a change there re-runs it
    "data": (), "agent": ("data",), "baseline": ("agent",), "world_model": ("data",),
    "sfp": ("agent", "world_model"), "baseline_time": ("agent", "sfp"), "surrogate": ("baseline", "sfp"),
    "evaluate": ("baseline", "sfp", "baseline_time", "surrogate"), "report": ("evaluate",),
}
COMPARED = ("baseline", "baseline_time", "surrogate", "sfp")  # the fine-tuned agents evaluate and report compare
OPTIONAL = {"baseline_time": "equal_time_baseline", "surrogate": "surrogate_baseline"}  # stage: its switch
PRINT = partial(print, flush=True)


class Manifest:
    """``manifest.json``: per stage, its status, config hash, wall time and outputs; written atomically."""

    def __init__(self, path: Path):
        self.path = path
        self.stages: dict[str, dict[str, Any]] = json.loads(path.read_text())["stages"] if path.is_file() else {}

    def done(self, stage: str, digest: str) -> bool:
        entry = self.stages.get(stage, {})
        return entry.get("status") == "done" and entry.get("config") == digest

    def record(self, stage: str, **entry: Any) -> None:
        self.stages[stage] = entry
        write_text(self.path, json.dumps({"stages": self.stages}, indent=2))


def without_added_defaults(section: str, value: Any) -> Any:
    """A copy of the config section ``section`` without the ``ADDED_LATER`` options that are at their defaults."""
    value = copy.deepcopy(value)
    for (first, *parents, last), default in ADDED_LATER.items():
        node = value if first == section else None
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node and node[last] == default:
            del node[last]
    return value


class Pipeline:
    """Runs the stages of one configuration; `run()` does what is not done yet, in a run folder made by
    ``made_by`` (``pipeline``, or ``table`` for a table's cells, then ``run`` is the table's name)."""

    def __init__(self, config: dict[str, Any], log: Callable[[str], None] = PRINT, made_by: str = "pipeline",
                 run: str | None = None):
        self.config, self.log, self.made_by, self.run_name = config, log, made_by, run
        self.root = writable_run_dir(config["run_dir"])
        self.seed = int(config["seed_everything"])
        self.manifest = Manifest(self.root / "manifest.json")
        self._datamodule = None

    # ------------------------------------------------------------------ bookkeeping
    def _setting(self, key: str) -> Any:
        section, _, option = key.partition(".")
        value = without_added_defaults(section, self.config.get(section))
        return value.get(option) if option and isinstance(value, dict) else value

    def _digests(self) -> dict[str, str]:
        """Each stage's hash covers its own settings and the hashes of the stages it needs."""
        digests: dict[str, str] = {}
        for stage in STAGES:
            parts = [[self._setting(key) for key in SECTIONS[stage]], [digests[need] for need in NEEDS[stage]]]
            if stage in STAGE_VERSIONS:
                parts.append(STAGE_VERSIONS[stage])
            digests[stage] = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return digests

    @property
    def datamodule(self) -> L.LightningDataModule:
        if self._datamodule is None:
            self._datamodule = instantiate(self.config["data"])
            self._datamodule.prepare_data()
            self._datamodule.setup("fit")
        return self._datamodule

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def checkpoint(self, stage: str) -> str:
        """The selected checkpoint of a finished training stage (best on validation, else last)."""
        for name in ("best", "last"):
            path = resolve_checkpoint(self.stage_dir(stage), name, required=False)
            if path:
                return path
        raise UserError(f"{self.stage_dir(stage)}: no checkpoint; run the {stage} stage first")

    def run(self, until: str | None = None) -> dict[str, Any]:
        """Run every unfinished stage (up to `until`), skipping finished ones; returns the manifest's stages."""
        if until is not None and until not in STAGES:
            raise UserError(f"unknown stage {until!r}; stages: {', '.join(STAGES)}")
        with run_folder(self.root, self.made_by, self.run_name, force=self.config.get("force", False)):
            self.manifest = Manifest(self.root / "manifest.json")  # as the lock found it
            self._run_stages(until)
        return self.manifest.stages

    def _run_stages(self, until: str | None) -> None:
        digests = self._digests()
        ran: set[str] = set()  # a stage whose input was made again runs again, whatever its settings
        for stage in STAGES:
            if stage in OPTIONAL and not self.config[OPTIONAL[stage]]:
                pass  # an optional comparison, not asked for
            elif (self.manifest.done(stage, digests[stage]) and self._budget_holds(stage)
                  and not ran.intersection(NEEDS[stage])):
                self.log(f"[{stage}] done before, skipped")
            else:
                ran.add(stage)
                self._set_aside(stage, digests[stage])
                self.log(f"[{stage}] running")
                self.manifest.record(stage, status="running", config=digests[stage])
                start = time.perf_counter()
                outputs = getattr(self, f"stage_{stage}")() or {}
                seconds = time.perf_counter() - start + outputs.get("seconds_before_resume", 0.0)
                self.manifest.record(stage, status="done", config=digests[stage], seconds=round(seconds, 2),
                                     outputs=outputs)
                shutil.rmtree(self._aside(stage), ignore_errors=True)  # the outputs it replaced, if any
                self.log(f"[{stage}] done in {seconds:.1f} s")
            if stage == until:
                break

    def _budget_holds(self, stage: str) -> bool:
        """A finished equal-time baseline stands only while its budget is still the SFP stage's seconds (an SFP
        stage re-run with the same settings takes other seconds; its digest cannot tell)."""
        if stage != "baseline_time":
            return True
        budget = self.manifest.stages[stage].get("outputs", {}).get("budget_seconds")
        return budget == self.manifest.stages.get("sfp", {}).get("seconds")

    def _aside(self, stage: str) -> Path:
        return self.root / f"{stage}.replaced"

    def _set_aside(self, stage: str, digest: str) -> None:
        """A stage whose settings changed starts over: its old outputs move to ``<stage>.replaced`` and are deleted
        only once the new run of the stage is done, so a failing replacement loses nothing."""
        entry = self.manifest.stages.get(stage)
        if entry is None or entry.get("config") == digest or not self.stage_dir(stage).exists():
            return
        aside = self._aside(stage)
        if entry.get("status") == "done" or not aside.exists():  # keep the last finished outputs set aside
            shutil.rmtree(aside, ignore_errors=True)
            self.stage_dir(stage).rename(aside)
        else:
            shutil.rmtree(self.stage_dir(stage))  # an unfinished replacement: the finished outputs stay aside

    # ------------------------------------------------------------------ training helper
    def _fit(self, stage: str, model: L.LightningModule, trainer_section: str, patience: int | None = None,
             **trainer_overrides: Any) -> dict[str, Any]:
        root = self.stage_dir(stage)
        kwargs = {**self.config[trainer_section], **trainer_overrides}
        prepare_strategy(kwargs.get("strategy"))
        callbacks = run_callbacks(root, self.datamodule, self.config["checkpoint_every"],
                                  kwargs.get("enable_progress_bar") is not False, patience)
        trainer = L.Trainer(default_root_dir=str(root), logger=run_logger(root), use_distributed_sampler=False,
                            callbacks=callbacks, **kwargs)
        trainer.fit(model, datamodule=self.datamodule, ckpt_path=resolve_checkpoint(root, "last", required=False),
                    weights_only=True)
        last = resolve_checkpoint(root, "last", required=False)  # spawned processes keep their step to themselves
        steps = read_checkpoint(last)["global_step"] if last else trainer.global_step
        clock = next(c for c in callbacks if isinstance(c, FitClock))
        return {"checkpoint": self.checkpoint(stage), "steps": steps, "processes": trainer.world_size,
                "seconds_before_resume": round(clock.seconds_before, 2)}

    # ------------------------------------------------------------------ stages
    def stage_data(self) -> dict[str, Any]:
        datamodule = self.datamodule
        sizes = {split: len(datamodule.datasets[split]) for split in ("train", "val", "test")}
        self.log(f"  windows: {sizes}")
        return {"windows": sizes, "task": datamodule.task.name}

    def stage_agent(self) -> dict[str, Any]:
        L.seed_everything(self.seed, verbose=False)
        return self._fit("agent", instantiate(self.config["agent"]), "agent_trainer", self.config["agent_patience"])

    def _self_training(self, stage: str, trainer_overrides: dict[str, Any] | None = None,
                       **overrides: Any) -> dict[str, Any]:
        from sfp.planning.self_training import SFPModule

        L.seed_everything(self.seed, verbose=False)
        module = SFPModule(agent_checkpoint=self.checkpoint("agent"), seed=self.seed,
                           **{**self.config["sfp"], **overrides})
        return self._fit(stage, module, "sfp_trainer", **(trainer_overrides or {}))

    def _fit_baseline(self, stage: str, trainer_overrides: dict[str, Any] | None = None,
                      **overrides: Any) -> dict[str, Any]:
        """The agent trained on without planning (pseudo-label weight 0), as every baseline is."""
        labels = {**self.config["sfp"]["pseudo_labels"], "weight": 0.0}
        return self._self_training(stage, trainer_overrides, pseudo_labels=labels, world_model_checkpoint=None,
                                   **overrides)

    def stage_baseline(self) -> dict[str, Any]:
        return self._fit_baseline("baseline")

    def stage_world_model(self) -> dict[str, Any]:
        from sfp.planning.world_model_module import WorldModelModule

        source = self.config["world_model_from"]
        if source is not None:  # trained elsewhere (e.g. once per dataset, shared by several agents)
            target = self.stage_dir("world_model") / "checkpoints" / "best.ckpt"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            return {"checkpoint": str(target), "from": source}
        L.seed_everything(self.seed, verbose=False)
        return self._fit("world_model", WorldModelModule(**self.config["world_model"]), "world_model_trainer")

    def stage_sfp(self) -> dict[str, Any]:
        return self._self_training("sfp", world_model_checkpoint=self.checkpoint("world_model"))

    def stage_baseline_time(self) -> dict[str, Any]:
        """MSE fine-tuning for as many seconds as the SFP stage took (the equal-wall-time comparison)."""
        seconds = float(self.manifest.stages["sfp"]["seconds"])
        return {**self._fit_baseline("baseline_time", {"max_steps": -1, "max_time": {"seconds": seconds}}),
                "budget_seconds": seconds}

    def stage_surrogate(self) -> dict[str, Any]:
        """MSE plus ``w`` times the headline metric's differentiable stand-in, for the SFP stage's steps, for each
        ``w`` of ``surrogate_weights`` and, while none matches, a few more; kept: the one whose validation MSE,
        relative to the equal-step baseline's, is nearest SFP's (:func:`match_surrogate_weight`)."""
        from sfp.report.evaluation import checkpoint_forecasters, evaluate_forecasts

        datamodule = self.datamodule
        task = datamodule.task
        trained: dict[float, str] = {}

        def validate(names: dict[str, str]) -> dict[str, dict[str, float]]:
            return evaluate_forecasts(checkpoint_forecasters(names, task.bounds), datamodule.val_dataloader(), task,
                                      datamodule.target, getattr(datamodule, "heatwave_windows", None))

        val = validate({"baseline": self.checkpoint("baseline"), "sfp": self.checkpoint("sfp")})

        def change(name: str) -> float:  # validation MSE relative to the equal-step baseline's
            return val[name]["mse"] / val["baseline"]["mse"] - 1.0

        def measure(weights: list[float]) -> dict[float, float]:
            """Train ``weights``; the validation MSE change of every weight trained so far."""
            for weight in weights:
                trained[weight] = self._fit_baseline(f"surrogate/w{weight:g}", surrogate_weight=weight)["checkpoint"]
            val.update(validate({f"w{weight:g}": trained[weight] for weight in weights}))
            return {w: change(f"w{w:g}") for w in trained}

        weight = match_surrogate_weight(measure, self.config["surrogate_weights"], change("sfp"))
        mse_change = {name: change(name) for name in val}
        target = self.stage_dir("surrogate") / "checkpoints" / "best.ckpt"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(trained[weight], target)
        self.log(f"  surrogate weight {weight:g}: validation MSE {mse_change[f'w{weight:g}']:+.1%} vs SFP's "
                 f"{mse_change['sfp']:+.1%} (relative to the equal-step baseline)")
        return {"checkpoint": str(target), "weight": weight, "val_mse_change": mse_change,
                "val_headline": {name: val[name][task.headline] for name in val}}

    def compared_checkpoints(self) -> dict[str, str]:
        """The checkpoints of the fine-tuned agents this run compares, by stage."""
        return {stage: self.checkpoint(stage) for stage in COMPARED
                if stage not in OPTIONAL or self.config[OPTIONAL[stage]]}

    def stage_evaluate(self) -> dict[str, Any]:
        from sfp.report.evaluation import evaluate_checkpoints

        checkpoints = {"agent": self.checkpoint("agent"), **self.compared_checkpoints()}
        results = evaluate_checkpoints(self.datamodule, checkpoints)
        out = self.stage_dir("evaluate") / "metrics.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        return {"metrics": str(out)}

    def stage_report(self) -> dict[str, Any]:
        from sfp.report.markdown import write_report

        return write_report(self.root, self.datamodule, self.manifest.stages, self.compared_checkpoints(),
                            gif_samples=self.config["report"]["gif_samples"])


def run_pipeline(argv: list[str]) -> Pipeline:
    """Load a pipeline config (``--config ...`` and overrides) and run what is not done yet."""
    config = load_config(argv)
    pipeline = Pipeline(config)
    torch.set_float32_matmul_precision("high")
    pipeline.run(config["until"])
    return pipeline
