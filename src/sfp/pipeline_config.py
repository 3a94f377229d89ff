"""A pipeline config: its parser (the sections of ``sfp fit`` configs plus the pipeline's own options) and the check of
every value before any stage touches the disk (the stages read it as a :class:`~sfp.run_spec.RunSpec`).

A pipeline config has ``data`` and ``agent`` (``class_path``/``init_args``), ``world_model`` and ``sfp`` (the
constructor arguments of :class:`WorldModelModule` and :class:`SFPModule`, less the checkpoints), a Trainer section
per training stage, and ``--section.key value`` overrides (:func:`load_config`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, partial
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch

from sfp.configs import config_files, moved, read_yaml, resolve, resolve_arguments
from sfp.configs.class_paths import check_class_paths
from sfp.data.memory import require_memory, within_available_memory
from sfp.errors import UserError
from sfp.report.gif import GIF_SAMPLES
from sfp.stage_graph import PEER_BASELINES, STAGES
from sfp.training import CHECKPOINT_EVERY, check_devices, check_run_options, parse_error

TRAINING_STAGES = ("agent", "world_model", "sfp")
TRAINER_SET_BY_SFP = {"callbacks", "logger", "default_root_dir", "use_distributed_sampler", "plugins"}
TRAINER_DEFAULTS = {"enable_model_summary": False, "log_every_n_steps": 10}


@cache
def pipeline_parser() -> Any:
    """The parser of pipeline configs and overrides (jsonargparse, as ``sfp fit`` uses through Lightning)."""
    from jsonargparse import ActionConfigFile
    from lightning.pytorch.cli import LightningArgumentParser

    from sfp.forecasting import Forecaster
    from sfp.planning import SFPModule, WorldModelModule

    parser = LightningArgumentParser(prog="sfp pipeline", exit_on_error=False,
                                     description="Run the SFP stages of a config (reuses finished stages; "
                                                 "--explain: say which, and why the others run, and run nothing).")
    parser.add_argument("--config", action=ActionConfigFile, help="a shipped config's name or a YAML file")
    parser.add_argument("--name", type=str | None, default=None, help="the run's name")
    parser.add_argument("--run_dir", type=str | None, default=None, help="where the stages keep their outputs")
    parser.add_argument("--seed_everything", type=int, default=0, help="seed of every stage")
    parser.add_argument("--checkpoint_every", type=int, default=CHECKPOINT_EVERY, help="steps between last.ckpt saves")
    parser.add_argument("--until", type=Literal[STAGES] | None, default=None, help="stop after this stage")
    parser.add_argument("--force", type=bool, default=False,
                        help="use a run folder that another command or run made (docs/architecture.md, Run folders)")
    parser.add_argument("--report.gif_samples", type=int, default=GIF_SAMPLES, help="test sequences in forecasts.gif")
    parser.add_argument("--evaluation.metric", type=str | None, default=None,
                        help="the test metric the run is judged on (its intervals, a table's summary); None: the "
                             "task's headline")
    parser.add_argument("--evaluation.extras", type=dict, default={},
                        help="scores with no gradient also computed on the test split, e.g. {objects: {radius: 8}} "
                             "(objects, sal, vortices: sfp.metrics.task_metrics)")
    parser.add_argument("--agent_patience", type=int | None, default=None,
                        help="stop the agent after this many validation checks without a better agent_monitor")
    parser.add_argument("--agent_monitor", type=Literal["headline", "mse"], default="headline",
                        help="what the agent's best checkpoint and early stopping follow: the headline metric or "
                             "the validation MSE (the loss it trains on: converged, not stopped on a plateau)")
    parser.add_argument("--world_model_from", type=str | None, default=None,
                        help="use this trained world-model checkpoint instead of training one")
    parser.add_argument("--agent_from", type=str | None, default=None,
                        help="use this trained agent checkpoint instead of training one")
    parser.add_argument("--equal_time_baseline", type=bool, default=False,
                        help="also continue the agent with MSE for the SFP stage's cost (equal_time_budget)")
    parser.add_argument("--equal_time_budget", type=Literal["stage_seconds", "step_cost"], default="stage_seconds",
                        help="the equal-time baseline's budget: step_cost, SFP's steps times an SFP step's cost in "
                             "baseline steps measured in one process (steady on a shared machine); stage_seconds, "
                             "the SFP stage's wall-clock seconds (the first Table 1 and the ocean table)")
    parser.add_argument("--surrogate_baseline", type=bool, default=False,
                        help="also continue the agent with MSE plus a differentiable stand-in for the headline metric")
    for peer, what in PEER_BASELINES.items():
        parser.add_argument(f"--{peer}_baseline", type=bool, default=False,
                            help=f"also continue the agent with MSE plus {what}, weighted to SFP's MSE change")
    parser.add_argument("--qmap_baseline", type=bool, default=False,
                        help="also quantile-map the equal-step baseline onto the truth (fitted on validation), "
                             "blended to SFP's MSE change")
    parser.add_argument("--surrogate_loss", type=dict | None, default=None,
                        help="the surrogate's loss in place of the headline metric's stand-in: {name: soft_csi, "
                             "thresholds, pool, width} (e.g. at an object reward's thresholds) or {name: soft_sal, "
                             "threshold_factor, quantile, width} or {name: soft_vortices, level, pool, width} "
                             "(sfp.metrics.surrogates)")
    parser.add_argument("--surrogate_weights", type=list[float], default=[0.1, 0.3, 1.0, 3.0],
                        help="the peers' weights tried; validation picks the one whose MSE change is SFP's")
    parser.add_subclass_arguments(L.LightningDataModule, "data", required=True)
    parser.add_subclass_arguments(Forecaster, "agent", required=True)
    parser.add_class_arguments(WorldModelModule, "world_model", skip={"agent_checkpoint", "imagination"})
    parser.add_class_arguments(SFPModule, "sfp",
                               skip={"agent_checkpoint", "world_model_checkpoint", "seed", "surrogate_weight", "peer",
                                     "surrogate_loss"})
    for stage in TRAINING_STAGES:
        parser.add_class_arguments(L.Trainer, f"{stage}_trainer", skip=TRAINER_SET_BY_SFP)
        parser.set_defaults({f"{stage}_trainer.{key}": value for key, value in TRAINER_DEFAULTS.items()})
    return parser


def _check_old_keys(configs: list[dict[str, Any]], argv: list[str]) -> None:
    """One line for a key an earlier sfp used, in a config file or on the command line."""
    for config in configs:
        moved.check_pipeline(config)
    moved.check_arguments(argv, {"world_model.": moved.WORLD_MODEL_MODULE, "sfp.": moved.SFP_MODULE,
                                 "": moved.PIPELINE})
    moved.check_data(configs, argv)


def _validate(config: dict[str, Any]) -> None:
    """Build what a config names once, cheaply, so a bad value fails before any stage touches the disk."""
    from sfp.forecasting.checkpoints import load_forecaster
    from sfp.metrics.peer_losses import balanced_mse_bins
    from sfp.metrics.surrogates import get_surrogate
    from sfp.options import coerce
    from sfp.planning.options import PlannerOptions, PseudoLabels, check_labels_for
    from sfp.planning.planner import planner_class
    from sfp.planning.pseudo_labels import check_label_reward
    from sfp.planning.rewards import get_reward, reward_for_task
    from sfp.planning.world_model_module import WorldModelModule, load_world_model
    from sfp.run_spec import ClassSpec

    trainers = [f"{stage}_trainer" for stage in TRAINING_STAGES]
    for section in ("data", "agent", "world_model", "sfp", "report", "evaluation", *trainers):
        if not isinstance(config[section], dict):
            raise UserError(f"{section} must be a mapping of options, got {config[section]!r}")
    if config["run_dir"] is None:
        raise UserError("run_dir: name the folder of the run's stages (--run_dir FOLDER or run_dir: in the config)")
    check_run_options(config["seed_everything"], config["checkpoint_every"])
    if config["agent_patience"] is not None and config["agent_patience"] < 1:
        raise UserError(f"agent_patience must be >= 1, got {config['agent_patience']}")
    if config["world_model_from"] is not None:
        load_world_model(config["world_model_from"])
    if config["agent_from"] is not None:
        load_forecaster(config["agent_from"])
    # an import path is imported here, before any stage runs
    reward = get_reward(config["sfp"]["reward"]) if config["sfp"]["reward"] is not None else None
    weights = config["surrogate_weights"]
    if not weights or not all(math.isfinite(w) and w > 0 for w in weights):
        raise UserError(f"surrogate_weights must be finite numbers > 0, got {weights}")
    for section in trainers:
        for key in ("max_steps", "max_epochs"):
            value = config[section].get(key)
            if value is not None and value < -1:
                raise UserError(f"{section}.{key} must be >= -1, got {value}")
        check_devices(config[section])
        with quiet_lightning():
            built(section, partial(L.Trainer, **{**config[section], "logger": False}))
    if config["report"]["gif_samples"] < 0:
        raise UserError(f"report.gif_samples must be >= 0, got {config['report']['gif_samples']}")
    planner = coerce(PlannerOptions, config["sfp"]["planner"])
    planner_class(planner)
    labels = coerce(PseudoLabels, config["sfp"]["pseudo_labels"])
    check_labels_for(labels, planner)
    with torch.random.fork_rng(devices=[]):  # building consumes random numbers; the stages seed themselves
        datamodule = built("data", lambda: coerce(ClassSpec, config["data"]).build())  # reads, writes nothing yet
        built("agent", lambda: coerce(ClassSpec, config["agent"]).build())
        built("world_model", lambda: WorldModelModule(**config["world_model"]))
    check_label_reward(labels.kind, reward if reward is not None else reward_for_task(datamodule.task))
    _check_evaluation(config["evaluation"], datamodule)
    if config["surrogate_loss"] is not None:
        try:
            get_surrogate(config["surrogate_loss"])
        except UserError as err:
            raise UserError(f"surrogate_loss: {err}") from None
    if config["balanced_mse_baseline"]:
        try:
            balanced_mse_bins(datamodule.task)  # its bins are the task's event thresholds
        except UserError as err:
            raise UserError(f"balanced_mse_baseline: {err}") from None
    _check_memory(datamodule, planner.imagination.samples if labels.weight > 0 else 0)


def _check_evaluation(evaluation: dict[str, Any], datamodule: Any) -> None:
    """The extra scores build on the task and the judged metric is one the evaluation reports."""
    from sfp.metrics.task_metrics import build_task_metrics

    task = getattr(datamodule, "task", None)
    if task is None:
        return
    windows = (lambda batch: None) if task.heatwaves else None
    keys = built("evaluation", lambda: build_task_metrics(task, windows=windows, extras=evaluation["extras"])).units
    metric = evaluation["metric"]
    if metric is not None and metric not in keys:
        raise UserError(f"evaluation.metric: {task.name} forecasts are not scored on {metric!r}; scored: "
                        f"{', '.join(sorted(keys))}")


def _check_memory(datamodule: Any, samples: int) -> None:
    """An embedded dataset, and the ``samples`` futures the planner imagines per batch, must fit in memory: known
    before any data is made, since the generator states the frames' shape (a file's shape is known once read)."""
    from sfp.data.registry import DatasetSpec

    spec = getattr(datamodule, "spec", None)
    sizes = [getattr(datamodule, name, None) for name in ("n_sequences", "frames", "batch_size", "target")]
    if not isinstance(spec, DatasetSpec) or not all(isinstance(size, int) for size in sizes):
        return
    sequences, frames, batch, target = sizes
    shape = datamodule.sample_shape
    require_memory(4 * sequences * frames * math.prod(shape),
                   f"{spec.name} data of shape {(sequences, frames, *shape)}")
    require_memory(4 * samples * batch * target * math.prod(shape),
                   f"sfp.planner.imagination.samples {samples} ({batch} windows a batch, {target} frames of {shape})")


def built(section: str, build: Callable[[], Any]) -> Any:
    """``build()``, where any error that a config's values can cause is one line naming the config section."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        with within_available_memory():
            return build()
    except UserError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, RuntimeError, MemoryError, OverflowError, ImportError,
            MisconfigurationException) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{section}: cannot be built from its settings ({message[:300]})") from err


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's informational lines (devices found, tips) held back, e.g. while a Trainer is built to check it."""
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _parsed(parse: Callable[[Any], Any]) -> dict[str, Any]:
    """``parse(parser)``'s namespace as a plain config; a parser error is one line."""
    from jsonargparse import ArgumentError

    try:
        namespace = parse(pipeline_parser())
    except ArgumentError as err:
        raise parse_error(err) from err
    config = namespace.as_dict()
    config.pop("config", None)
    return config


def load_config(argv: list[str]) -> dict[str, Any]:
    """Parse ``--config FILE_OR_NAME`` and ``--section.key value`` overrides into one validated plain config."""
    argv = resolve_arguments(argv)
    configs = [read_yaml(path) for path in config_files(argv)]
    _check_old_keys(configs, argv)
    check_class_paths(configs, argv)
    config = _parsed(lambda parser: parser.parse_args(argv))
    _validate(config)
    return config


def reparse(spec: dict[str, Any]) -> dict[str, Any]:
    """A resolved config parsed again by today's parser (options it lacks filled in at their defaults); unchecked
    beyond parsing (:mod:`sfp.reuse` compares stored settings with it)."""
    return _parsed(lambda parser: parser.parse_object(spec))


def load_layers(config: str | Path, *layers: dict[str, Any]) -> dict[str, Any]:
    """A pipeline config (shipped name or file) with ``layers`` laid over it in order, each a mapping of the
    config's own keys (as its YAML would write them), into one validated plain config, as :func:`load_config`
    makes from a file and overrides: how a table builds its cells' run specs from mappings, no command line."""
    configs = [read_yaml(resolve(config)), *layers]
    _check_old_keys(configs, [])
    check_class_paths(configs, [])

    def parse(parser: Any) -> Any:
        namespace = None
        for layer in configs:
            namespace = parser.parse_object(layer, namespace=namespace)
        return namespace

    spec = _parsed(parse)
    _validate(spec)
    return spec
