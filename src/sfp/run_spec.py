"""The run spec: one SFP experiment as a typed object, what every stage reads.

A pipeline config is parsed and checked once (:func:`sfp.pipeline_config.load_config` from YAML and
``--section.key value`` overrides, :func:`~sfp.pipeline_config.load_layers` for a table's cells); :meth:`RunSpec.of`
turns the checked config into this object, field for field with the YAML's keys: the sections a class is built from
are :class:`ClassSpec`, the fine-tuning section is :class:`FineTuning` (its option groups typed), a Trainer section
stays the keyword arguments of Lightning's ``Trainer``. Stages take their settings from it by name; what a finished
stage stores of it, to compare with a later spec, is the checked config itself (:mod:`sfp.reuse`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sfp.options import coerce
from sfp.planning.options import PlannerOptions, PseudoLabels
from sfp.utils import import_object


@dataclass(frozen=True)
class ClassSpec:
    """A class a config names (``class_path``) and its constructor arguments (``init_args``)."""

    class_path: str
    init_args: dict[str, Any] = dataclasses.field(default_factory=dict)

    def build(self, **extra: Any) -> Any:
        """An instance, ``extra`` keyword arguments added."""
        return import_object(self.class_path)(**{**(self.init_args or {}), **extra})


@dataclass(frozen=True)
class FineTuning:
    """The ``sfp`` section: how SFP, and every baseline with planning off, fine-tunes the agent
    (:class:`~sfp.planning.self_training.SFPModule`'s settings; their defaults are the module's)."""

    planner: PlannerOptions
    pseudo_labels: PseudoLabels
    reward: str | dict[str, Any] | None
    lr: float
    weight_decay: float
    gauges: float

    def with_labels(self, **changes: Any) -> FineTuning:
        """The same fine-tuning with ``changes`` to its pseudo-label options."""
        return dataclasses.replace(self, pseudo_labels=dataclasses.replace(self.pseudo_labels, **changes))

    def without_planning(self) -> FineTuning:
        """The same fine-tuning with pseudo-label weight 0: what every baseline trains with."""
        return self.with_labels(weight=0.0)


@dataclass(frozen=True)
class Evaluation:
    """What the run is judged on: ``metric`` (None: the task's headline) and the ``extras`` scored beside it."""

    metric: str | None
    extras: dict[str, Any]


@dataclass(frozen=True)
class Report:
    gif_samples: int


@dataclass(frozen=True)
class RunSpec:
    """One experiment; each field is the pipeline config's key of the same name (``sfp pipeline --help``)."""

    name: str | None
    run_dir: str
    seed_everything: int
    checkpoint_every: int
    until: str | None
    force: bool
    report: Report
    evaluation: Evaluation
    agent_patience: int | None
    agent_monitor: str
    world_model_from: str | None
    agent_from: str | None
    equal_time_baseline: bool
    equal_time_budget: str
    surrogate_baseline: bool
    balanced_mse_baseline: bool
    facl_baseline: bool
    qmap_baseline: bool
    surrogate_loss: dict[str, Any] | None
    surrogate_weights: list[float]
    data: ClassSpec
    agent: ClassSpec
    world_model: dict[str, Any]  # WorldModelModule's constructor arguments (less its checkpoint and imagination)
    sfp: FineTuning
    agent_trainer: dict[str, Any]  # keyword arguments of Lightning's Trainer, one section per training stage
    world_model_trainer: dict[str, Any]
    sfp_trainer: dict[str, Any]

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> RunSpec:
        """The spec of a checked pipeline config (:func:`sfp.pipeline_config.load_config`)."""
        return coerce(cls, config)

    def switched_on(self, switch: str) -> bool:
        """Whether the optional comparison whose switch is ``switch`` (e.g. ``qmap_baseline``) is asked for."""
        return bool(getattr(self, switch))
