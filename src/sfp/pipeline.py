"""The staged SFP run: data -> agent -> baseline -> world_model -> sfp -> evaluate -> report.

Every stage keeps its output in ``<run_dir>/<stage>/`` and is recorded in ``<run_dir>/manifest.json`` with the hash
of the configuration it depends on and its wall time. Re-running skips finished stages whose configuration is
unchanged; a stage that was interrupted resumes from its ``checkpoints/last.ckpt``; a changed stage is re-run with
everything after it. The baseline is the agent trained on with MSE alone for exactly the SFP stage's steps (the
same :class:`SFPModule` with ``pseudo_weight=0``), so the comparison is honest by construction.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml

from sfp.errors import UserError
from sfp.training import resolve_checkpoint, run_callbacks, run_logger
from sfp.utils import import_object

STAGES = ("data", "agent", "baseline", "world_model", "sfp", "evaluate", "report")
SECTIONS = {  # the config keys each stage reads itself (dotted for one key of a section)
    "data": ("data", "seed"), "agent": ("agent", "agent_trainer"),
    "baseline": ("sfp.lr", "sfp.weight_decay", "sfp_trainer"),  # planning settings do not touch the baseline
    "world_model": ("world_model", "world_model_trainer"), "sfp": ("sfp", "sfp_trainer"),
    "evaluate": ("evaluate",), "report": ("report",),
}
NEEDS = {  # the stages whose outputs each stage uses: a change there re-runs it
    "data": (), "agent": ("data",), "baseline": ("agent",), "world_model": ("data",),
    "sfp": ("agent", "world_model"), "evaluate": ("baseline", "sfp"), "report": ("evaluate",),
}
REQUIRED = ("run_dir", "data", "agent", "agent_trainer", "world_model", "world_model_trainer", "sfp", "sfp_trainer")


def load_config(path: str | Path, overrides: list[str] = ()) -> dict[str, Any]:
    """Read a pipeline YAML (safe loader) and apply ``dotted.key=value`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such config file")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from err
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"override {item!r} is not KEY=VALUE")
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise UserError(f"override {key!r}: no section {part!r} in the config")
            node = node[part]
        if leaf not in node:
            raise UserError(f"override {key!r}: unknown key {leaf!r}; known: {', '.join(node)}")
        node[leaf] = yaml.safe_load(value)
    missing = [key for key in REQUIRED if key not in config]
    unknown = [key for key in config if key not in (*REQUIRED, "name", "seed", "evaluate", "report")]
    if missing or unknown:
        raise UserError(f"{path}: " + "; ".join(filter(None, [missing and f"missing sections {missing}",
                                                              unknown and f"unknown sections {unknown}"])))
    return config


def instantiate(spec: dict[str, Any], **extra: Any) -> Any:
    """Build ``{"class_path": ..., "init_args": {...}}`` (extra keyword arguments added)."""
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise UserError(f"expected a mapping with class_path and init_args, got {spec!r}")
    cls = import_object(spec["class_path"])
    try:
        return cls(**{**spec.get("init_args", {}), **extra})
    except TypeError as err:
        raise UserError(f"{spec['class_path']}: {err}") from err


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
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"stages": self.stages}, indent=2))
        os.replace(tmp, self.path)


class Pipeline:
    """Runs the stages of one configuration; `run()` does what is not done yet."""

    def __init__(self, config: dict[str, Any], log: Callable[[str], None] = partial(print, flush=True)):
        self.config, self.log = config, log
        self.root = Path(config["run_dir"])
        self.seed = int(config.get("seed", 0))
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifest = Manifest(self.root / "manifest.json")
        self._datamodule = None

    # ------------------------------------------------------------------ bookkeeping
    def _setting(self, key: str) -> Any:
        section, _, option = key.partition(".")
        value = self.config.get(section)
        return value.get(option) if option and isinstance(value, dict) else value

    def _digests(self) -> dict[str, str]:
        """Each stage's hash covers its own settings and the hashes of the stages it needs."""
        digests: dict[str, str] = {}
        for stage in STAGES:
            parts = [[self._setting(key) for key in SECTIONS[stage]], [digests[need] for need in NEEDS[stage]]]
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
        digests = self._digests()
        for stage in STAGES:
            if self.manifest.done(stage, digests[stage]):
                self.log(f"[{stage}] done before, skipped")
            else:
                if stage in self.manifest.stages and self.manifest.stages[stage].get("config") != digests[stage]:
                    shutil.rmtree(self.stage_dir(stage), ignore_errors=True)  # its config changed: start over
                self.log(f"[{stage}] running")
                self.manifest.record(stage, status="running", config=digests[stage])
                start = time.perf_counter()
                outputs = getattr(self, f"stage_{stage}")() or {}
                seconds = time.perf_counter() - start
                self.manifest.record(stage, status="done", config=digests[stage], seconds=round(seconds, 2),
                                     outputs=outputs)
                self.log(f"[{stage}] done in {seconds:.1f} s")
            if stage == until:
                break
        return self.manifest.stages

    # ------------------------------------------------------------------ training helper
    def _fit(self, stage: str, model: L.LightningModule, trainer_kwargs: dict[str, Any]) -> dict[str, Any]:
        root = self.stage_dir(stage)
        kwargs = {"enable_model_summary": False, "log_every_n_steps": 10, **trainer_kwargs}
        checkpoint_every = kwargs.pop("checkpoint_every", 50)
        trainer = L.Trainer(default_root_dir=str(root), logger=run_logger(root), use_distributed_sampler=False,
                            callbacks=run_callbacks(root, self.datamodule, checkpoint_every,
                                                    kwargs.get("enable_progress_bar") is not False), **kwargs)
        trainer.fit(model, datamodule=self.datamodule, ckpt_path=resolve_checkpoint(root, "last", required=False),
                    weights_only=True)
        return {"checkpoint": self.checkpoint(stage), "steps": trainer.global_step}

    # ------------------------------------------------------------------ stages
    def stage_data(self) -> dict[str, Any]:
        datamodule = self.datamodule
        sizes = {split: len(datamodule.datasets[split]) for split in ("train", "val", "test")}
        self.log(f"  windows: {sizes}")
        return {"windows": sizes, "task": datamodule.task.name}

    def stage_agent(self) -> dict[str, Any]:
        L.seed_everything(self.seed, verbose=False)
        return self._fit("agent", instantiate(self.config["agent"]), self.config["agent_trainer"])

    def _self_training(self, stage: str, **overrides: Any) -> dict[str, Any]:
        from sfp.planning.self_training import SFPModule

        L.seed_everything(self.seed, verbose=False)
        options = {**self.config["sfp"], **overrides}
        module = SFPModule(agent_checkpoint=self.checkpoint("agent"),
                           agent_class=self.config["agent"]["class_path"], seed=self.seed, **options)
        return self._fit(stage, module, self.config["sfp_trainer"])

    def stage_baseline(self) -> dict[str, Any]:
        return self._self_training("baseline", pseudo_weight=0.0, world_model_checkpoint=None)

    def stage_world_model(self) -> dict[str, Any]:
        from sfp.planning.world_model_module import WorldModelModule

        L.seed_everything(self.seed, verbose=False)
        try:
            module = WorldModelModule(**self.config["world_model"])
        except TypeError as err:
            raise UserError(f"world_model: {err}") from err
        return self._fit("world_model", module, self.config["world_model_trainer"])

    def stage_sfp(self) -> dict[str, Any]:
        return self._self_training("sfp", world_model_checkpoint=self.checkpoint("world_model"))

    def stage_evaluate(self) -> dict[str, Any]:
        from sfp.report.evaluation import evaluate_pipeline

        results = evaluate_pipeline(self)
        (self.stage_dir("evaluate")).mkdir(parents=True, exist_ok=True)
        (self.stage_dir("evaluate") / "metrics.json").write_text(json.dumps(results, indent=2))
        return {"metrics": str(self.stage_dir("evaluate") / "metrics.json")}

    def stage_report(self) -> dict[str, Any]:
        from sfp.report.markdown import write_report

        return write_report(self)


def run_pipeline(config_path: str | Path, overrides: list[str] = (), until: str | None = None) -> Pipeline:
    """Load a pipeline config and run what is not done yet."""
    pipeline = Pipeline(load_config(config_path, overrides))
    torch.set_float32_matmul_precision("high")
    pipeline.run(until)
    return pipeline
