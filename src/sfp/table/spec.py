"""What a results table is made of: datasets (each a pipeline config), backbones, seeds; and its cells."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfp.configs import read_yaml, resolve
from sfp.errors import UserError
from sfp.options import coerce, require
from sfp.task import TASKS


@dataclass(frozen=True)
class DatasetRow:
    """One row of the table: a pipeline config (shipped name or file) and settings laid over it for every cell
    of the row, a mapping of the pipeline config's own keys (e.g. ``{agent_patience: 5}``); dataset: the task the
    row's data is (None: the row's name, as in a table of one row per dataset; rows of one dataset judged on
    different rewards are named ``dataset/reward``, e.g. ``storms/object``)."""

    pipeline: str
    settings: dict[str, Any] = field(default_factory=dict)
    dataset: str | None = None

    def __post_init__(self) -> None:
        require(isinstance(self.pipeline, str) and self.pipeline != "",
                f"pipeline must be a pipeline config's name or file, got {self.pipeline!r}")
        require(isinstance(self.settings, Mapping), "settings must map the pipeline config's keys to values "
                f"(e.g. {{agent_patience: 5}}), got {self.settings!r}")
        require(self.dataset is None or self.dataset in TASKS,
                f"dataset must be a task: {', '.join(TASKS)}; got {self.dataset!r}")


@dataclass(frozen=True)
class TableSpec:
    """A table of SFP against its baselines: every dataset x backbone x seed is a cell, one pipeline run.

    name: the table's name; results: the folder of ``<name>.md/.json/.png`` and of the cells' JSON files
    (``<name>/cells/``; small: commit them); runs: the folder of the pipeline runs (checkpoints: never commit
    it); backbones: registered backbone name -> its ``backbone_kwargs``; datasets: a row's name (a task's, or
    ``dataset/reward`` with its ``dataset`` given) -> its row, judged on its runs' ``evaluation.metric`` (the task's
    headline unless set); seeds: the seeds of every cell; extra_seeds: per ``dataset/backbone``,
    where more seeds are wanted; fractions: per ``dataset/backbone``, the shares of the training sequences its
    cells are also run on (the data-scarce axis: agent and world model on the same share); summary_by: the JSON
    summary keyed by ``dataset`` or by its ``headline`` metric (a table of one dataset read by its metric, as the
    ocean's). A wrong field is one :class:`UserError` naming it.
    """

    datasets: dict[str, DatasetRow]
    backbones: dict[str, dict[str, Any]]
    name: str = "table1"
    results: str = "results"
    runs: str = "runs/table1"
    seeds: tuple[int, ...] = (0,)
    extra_seeds: dict[str, tuple[int, ...]] = field(default_factory=dict)
    summary_by: str = "dataset"
    fractions: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require(self.summary_by in ("dataset", "headline"),
                f"summary_by must be dataset or headline, got {self.summary_by!r}")
        require(isinstance(self.name, str) and re.fullmatch(r"[\w.-]+", self.name) is not None
                and self.name.strip(".") != "", f"name must be a plain file name, got {self.name!r}")
        for key in ("results", "runs"):
            require(isinstance(getattr(self, key), str) and getattr(self, key) != "",
                    f"{key} must be a folder, got {getattr(self, key)!r}")
        require(isinstance(self.backbones, Mapping) and bool(self.backbones)
                and all(isinstance(kwargs, Mapping) for kwargs in self.backbones.values()),
                "backbones must map each backbone's name to its backbone_kwargs (a mapping)")
        require(isinstance(self.datasets, Mapping) and bool(self.datasets),
                "datasets must map each row's name to its pipeline and settings")
        for name in self.datasets:
            require(isinstance(name, str) and re.fullmatch(r"\w+(/\w+)?", name) is not None,
                    f"datasets: a row's name is a dataset or dataset/reward, got {name!r}")
        rows = {name: _row(name, row) for name, row in self.datasets.items()}
        for name, row in rows.items():
            require(row.dataset is not None or name in TASKS, f"datasets: unknown dataset {name!r} (a table's rows "
                    f"are tasks: {', '.join(TASKS)}; a row of another name says its dataset)")
        object.__setattr__(self, "datasets", {name: dataclasses.replace(row, dataset=row.dataset or name)
                                              for name, row in rows.items()})
        object.__setattr__(self, "seeds", _seeds("seeds", self.seeds))
        require(isinstance(self.extra_seeds, Mapping), "extra_seeds must map dataset/backbone to a list of seeds")
        pairs = [f"{dataset}/{backbone}" for dataset in self.datasets for backbone in self.backbones]
        for pair in self.extra_seeds:
            require(pair in pairs, f"extra_seeds: {pair!r} is no dataset/backbone of the table")
        object.__setattr__(self, "extra_seeds", {pair: _seeds(f"extra_seeds.{pair}", seeds)
                                                 for pair, seeds in self.extra_seeds.items()})
        require(isinstance(self.fractions, Mapping), "fractions must map dataset/backbone to a list of fractions")
        for pair in self.fractions:
            require(pair in pairs, f"fractions: {pair!r} is no dataset/backbone of the table")
        object.__setattr__(self, "fractions", {pair: _fractions(f"fractions.{pair}", found)
                                               for pair, found in self.fractions.items()})

    def cells(self) -> list[Cell]:
        """Every cell, dataset by dataset: on all the training data, then on each fraction of it asked for."""
        full = [Cell(dataset, backbone, seed) for dataset in self.datasets for backbone in self.backbones
                for seed in self.extra_seeds.get(f"{dataset}/{backbone}", self.seeds)]
        scarce = [Cell(cell.dataset, cell.backbone, cell.seed, fraction) for cell in full
                  for fraction in self.fractions.get(f"{cell.dataset}/{cell.backbone}", ())]
        return full + scarce


def _row(name: str, row: Any) -> DatasetRow:
    """The row of dataset ``name``; a mistake in it names it."""
    if isinstance(row, Mapping) and "overrides" in row:
        raise UserError(f"datasets.{name}.overrides: command-line words are no longer read; give the same as "
                        "settings, a mapping of the pipeline config's keys (e.g. settings: {agent_patience: 5})")
    try:
        return coerce(DatasetRow, row)
    except UserError as err:
        raise UserError(f"datasets.{name}: {err}") from None


def _fractions(key: str, fractions: Any) -> tuple[float, ...]:
    """``fractions`` as a tuple: a non-empty list of distinct numbers in (0, 1)."""
    ok = isinstance(fractions, (list, tuple)) and bool(fractions) and len(set(fractions)) == len(fractions) and all(
        isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f < 1 for f in fractions)
    require(ok, f"{key} must be a list of distinct fractions of the training sequences in (0, 1), got {fractions!r}")
    return tuple(float(f) for f in fractions)


def _seeds(key: str, seeds: Any) -> tuple[int, ...]:
    """``seeds`` as a tuple: a non-empty list of distinct whole numbers >= 0."""
    ok = isinstance(seeds, (list, tuple)) and bool(seeds) and len(set(seeds)) == len(seeds) and all(
        isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 for seed in seeds)
    require(ok, f"{key} must be a list of distinct whole numbers >= 0, got {seeds!r}")
    return tuple(seeds)


@dataclass(frozen=True)
class Cell:
    """One pipeline run of the table: ``fraction`` of the training sequences (1: all of them)."""

    dataset: str
    backbone: str
    seed: int
    fraction: float = 1.0

    @property
    def name(self) -> str:
        """Its file's name: ``row-backbone-s<seed>[-f<fraction>]``, a ``dataset/reward`` row as ``dataset.reward``."""
        row = self.dataset.replace("/", ".")
        return f"{row}-{self.backbone}-s{self.seed}" + ("" if self.fraction == 1 else f"-f{self.fraction:g}")

    @classmethod
    def parse(cls, text: str) -> Cell:
        """``row/backbone/seed`` or ``row/backbone/seed/fraction`` (a row: ``dataset`` or ``dataset/reward``)."""
        parts = text.split("/")
        seed = next((i for i, part in enumerate(parts) if i >= 2 and part.isdigit()), None)
        ok = seed in (2, 3) and len(parts) - seed in (1, 2) and (len(parts) == seed + 1 or _is_fraction(parts[-1]))
        require(ok, f"a cell is row/backbone/seed[/fraction], got {text!r}")
        return cls("/".join(parts[: seed - 1]), parts[seed - 1], int(parts[seed]),
                   float(parts[seed + 1]) if len(parts) == seed + 2 else 1.0)


def _is_fraction(text: str) -> bool:
    try:
        return 0 < float(text) <= 1
    except ValueError:
        return False


def load_table(config: str | Path) -> TableSpec:
    """A table config (shipped name or file), checked before any work: a mistake is one line naming the file
    and the key."""
    path = resolve(config)
    raw = read_yaml(path)
    try:
        table = coerce(TableSpec, raw)
        for name, row in table.datasets.items():
            try:
                resolve(row.pipeline)
            except UserError as err:
                raise UserError(f"datasets.{name}.pipeline: {err}") from None
    except UserError as err:
        raise UserError(f"{path}: {err}") from None
    return table

