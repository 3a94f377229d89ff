"""``manifest.json``: per stage, what it ran with and what it made, and whether a finished stage can be reused.

An entry: ``status`` (running, done), ``spec`` (the settings the stage read, plain JSON: :func:`sfp.reuse.settings`),
``code`` (sfp's version and the stage's code version), ``id`` (this run of the stage), ``inputs`` (the ids of the
stages whose outputs it used), ``seconds`` and ``outputs``. Written atomically after every change. A manifest an
earlier sfp wrote (a settings hash per stage) is upgraded as it is read, where the hash is today's settings' hash,
and a stage an earlier sfp named otherwise is given today's name; both are kept with the next stage recorded.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import sfp
from sfp.data.writing import write_text
from sfp.legacy_digests import legacy_code, legacy_name, stage_digests
from sfp.reuse import first_difference, settings
from sfp.stage_graph import GRAPH, RENAMED, Stage


def code_of(stage: Stage) -> dict[str, Any]:
    """What a stage's outputs depend on besides its settings and inputs."""
    return {"sfp": sfp.__version__, "stage": stage.code}


def renamed_stages(stages: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A manifest's stages with the names an earlier sfp used given today's (:data:`~sfp.stage_graph.RENAMED`),
    as stages and as inputs (:func:`move_renamed_folders` moves the folders; paths recorded inside still hold)."""
    renamed = {}
    for stage, entry in stages.items():
        if isinstance(entry.get("inputs"), dict):
            entry = {**entry, "inputs": {RENAMED.get(need, need): ids for need, ids in entry["inputs"].items()}}
        renamed[RENAMED.get(stage, stage)] = entry
    return renamed


def move_renamed_folders(root: Path) -> None:
    """A run folder's stage folders under the names an earlier sfp used moved to today's, the old name left as a
    link to the new (files that name a path inside, e.g. the qmap peer's, still find it)."""
    for old, new in RENAMED.items():
        if (root / old).is_dir() and not (root / old).is_symlink() and not (root / new).exists():
            (root / old).rename(root / new)
            (root / old).symlink_to(new, target_is_directory=True)


class Manifest:
    """The stages' records of one run folder; ``active(name)``: whether an optional stage is asked for."""

    def __init__(self, path: Path, spec: Mapping[str, Any], active: Callable[[str], bool]):
        self.path, self.spec, self.active = path, spec, active
        stages = json.loads(path.read_text())["stages"] if path.is_file() else {}
        self.stages: dict[str, dict[str, Any]] = renamed_stages(stages)
        if any("config" in entry for entry in self.stages.values()):
            self._upgrade()

    def inputs(self, stage: Stage) -> dict[str, str | None]:
        """The ids of the outputs ``stage`` uses, as they stand."""
        return {need: self.stages.get(need, {}).get("id") for need in stage.needs if self.active(need)}

    def why_not_reused(self, stage: Stage, remade: set[str]) -> str | None:
        """None when ``stage`` is done with today's settings, code and inputs; else the first reason it is not
        (``remade``: the stages that run again before it)."""
        entry = self.stages.get(stage.name)
        if entry is None:
            return "not run yet"
        return self.changed(stage, remade) or (None if entry.get("status") == "done" else "it did not finish")

    def changed(self, stage: Stage, remade: set[str]) -> str | None:
        """Why the recorded run of ``stage`` (finished or not) is not one with today's settings, code and inputs;
        None when it is (then an unfinished one resumes)."""
        entry = self.stages.get(stage.name, {})
        if "spec" not in entry:
            return "an earlier sfp made it with other settings"
        if entry.get("code") != code_of(stage):
            return f"code: {json.dumps(entry.get('code'))} -> {json.dumps(code_of(stage))}"
        again = [need for need in stage.needs if need in remade]
        if again:
            return f"its input {again[0]} runs again"
        if entry.get("inputs") != self.inputs(stage):
            return "its inputs were made again since"
        difference = first_difference(entry["spec"], self.spec, stage.reads)
        return f"settings: {difference}" if difference else None

    def start(self, stage: Stage) -> None:
        self.record(stage.name, status="running", spec=settings(self.spec, stage.reads), code=code_of(stage),
                    inputs=self.inputs(stage))

    def finish(self, stage: Stage, seconds: float, outputs: dict[str, Any]) -> None:
        self.record(stage.name, **{**self.stages[stage.name], "status": "done", "id": uuid.uuid4().hex[:12],
                                   "seconds": round(seconds, 2), "outputs": outputs})

    def record(self, stage: str, **entry: Any) -> None:
        self.stages[stage] = entry
        write_text(self.path, json.dumps({"stages": self.stages}, indent=2))

    def _upgrade(self) -> None:
        """Entries an earlier sfp wrote: those made with today's settings (their hash is today's) get today's
        settings and inputs, the code they ran (a stage whose code changed since runs again) and an id where
        finished (an unfinished one resumes); any other keeps no settings, so it runs again."""
        digests = stage_digests(dict(self.spec))
        for stage in GRAPH:  # in order: an upgraded stage's inputs are upgraded first
            entry = self.stages.get(stage.name)
            if entry is None or "config" not in entry or entry.pop("config") != digests[legacy_name(stage.name)]:
                continue
            entry.update(spec=settings(self.spec, stage.reads), inputs=self.inputs(stage),
                         code={**code_of(stage), "stage": legacy_code(stage.name)})
            if entry.get("status") == "done":
                entry["id"] = uuid.uuid4().hex[:12]
