"""What a results table is made of: datasets (each a pipeline config), backbones, seeds; and its cells."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfp.configs import read_yaml, resolve
from sfp.options import coerce, require


@dataclass(frozen=True)
class DatasetRow:
    """One dataset of the table: a pipeline config (shipped name or file) and overrides for every cell of it."""

    pipeline: str
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    """A table of SFP against its baselines: every dataset x backbone x seed is a cell, one pipeline run.

    name: the table's name; results: the folder of ``<name>.md/.json/.png`` and of the cells' JSON files
    (``<name>/cells/``; small: commit them); runs: the folder of the pipeline runs (checkpoints: never commit
    it); backbones: registered backbone name -> its ``backbone_kwargs``; seeds: the seeds of every cell;
    extra_seeds: per ``dataset/backbone``, where more seeds are wanted.
    """

    datasets: dict[str, DatasetRow]
    backbones: dict[str, dict[str, Any]]
    name: str = "table1"
    results: str = "results"
    runs: str = "runs/table1"
    seeds: tuple[int, ...] = (0,)
    extra_seeds: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require(bool(self.datasets) and bool(self.backbones), "a table needs datasets and backbones")
        object.__setattr__(self, "datasets", {name: coerce(DatasetRow, row) for name, row in self.datasets.items()})

    def cells(self) -> list[Cell]:
        """Every cell, dataset by dataset."""
        return [Cell(dataset, backbone, seed) for dataset in self.datasets for backbone in self.backbones
                for seed in self.extra_seeds.get(f"{dataset}/{backbone}", self.seeds)]


@dataclass(frozen=True)
class Cell:
    """One pipeline run of the table."""

    dataset: str
    backbone: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.backbone}-s{self.seed}"

    @classmethod
    def parse(cls, text: str) -> Cell:
        """``dataset/backbone/seed``."""
        parts = text.split("/")
        require(len(parts) == 3 and parts[2].isdigit(), f"a cell is dataset/backbone/seed, got {text!r}")
        return cls(parts[0], parts[1], int(parts[2]))


def load_table(config: str | Path) -> TableSpec:
    """A table config (shipped name or file)."""
    raw = read_yaml(resolve(config))
    raw = {**raw, "seeds": tuple(raw.get("seeds", (0,))),
           "extra_seeds": {key: tuple(value) for key, value in raw.get("extra_seeds", {}).items()},
           "datasets": {name: {**row, "overrides": tuple(row.get("overrides", ()))}
                        for name, row in raw.get("datasets", {}).items()}}
    return coerce(TableSpec, raw)


def settings_digest(settings: Any) -> str:
    """A short hash of plain settings (a cell's resolved pipeline config)."""
    plain = dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else settings
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:16]
