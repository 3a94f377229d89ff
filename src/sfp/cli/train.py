"""``sfp fit | validate | test | predict``: Lightning's CLI with sfp's run-directory conventions.

A run lives in ``trainer.default_root_dir`` (configs set ``runs/<name>``):
``checkpoints/last.ckpt`` (every ``--checkpoint_every`` steps, for resuming a killed run),
``checkpoints/best.ckpt`` (best validation value of the dataset's headline metric), ``logs/`` (CSV),
``config.yaml``, ``metrics.json`` (``sfp test``) and ``predictions.npz`` + ``predictions.gif`` (``sfp predict``).
``--ckpt_path last`` or ``best`` name those files.
"""

from __future__ import annotations

import json
import math
from contextlib import ExitStack
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import lightning as L
from jsonargparse import ArgumentError
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from sfp.cli.fit_dialect import in_pipeline_words, role_of, write_lightning_configs
from sfp.configs import config_files, moved, read_yaml, resolve_arguments
from sfp.configs.class_paths import check_class_paths
from sfp.errors import UserError
from sfp.report.gif import GIF_SAMPLES
from sfp.run_folder import run_folder
from sfp.training import (
    CHECKPOINT_EVERY,
    check_devices,
    check_run_options,
    parse_error,
    prepare_strategy,
    read_checkpoint,
    resolve_checkpoint,
    run_callbacks,
    run_logger,
    writable_run_dir,
)

SUBCOMMANDS = ("fit", "validate", "test", "predict")


def _format(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.5g}"


def print_metrics(metrics: dict[str, float], units: dict[str, str]) -> None:
    """Print metrics as a two-column table with units."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="test metrics")
    for column in ("metric", "value", "unit"):
        table.add_column(column)
    for key, value in metrics.items():
        table.add_row(key, _format(value), units.get(key, ""))
    Console().print(table)


class RunConfigSaver(SaveConfigCallback):
    """Save the resolved config as ``<run>/config.yaml`` (Lightning's default is the logger's version folder)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **{**kwargs, "save_to_log_dir": False})

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        root = Path(trainer.default_root_dir)
        root.mkdir(parents=True, exist_ok=True)
        self.parser.save(self.config, str(root / self.config_filename), skip_none=False, overwrite=True,
                         multifile=self.multifile)


class SfpCLI(LightningCLI):
    """LightningCLI that gives every run the same layout, resumable checkpoints and one-line errors; the run folder
    is claimed (:mod:`sfp.run_folder`) and locked in ``held`` until the caller closes it."""

    def __init__(self, *args: Any, held: ExitStack, **kwargs: Any):
        self.held = held
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--checkpoint_every", type=int, default=CHECKPOINT_EVERY,
                            help="save checkpoints/last.ckpt every this many training steps")
        parser.add_argument("--output", type=str, default=None,
                            help="predict: forecast file (.npz or .nc); default <run>/predictions.npz")
        parser.add_argument("--gif_samples", type=int, default=GIF_SAMPLES, help="predict: sequences shown in the GIF")
        parser.add_argument("--ensemble", type=int, default=0,
                            help="predict: also K members imagined around the forecast, and exceedance maps")
        parser.add_argument("--world_model_checkpoint", type=str, default=None,
                            help="predict --ensemble: the trained world model that imagines the members")
        parser.add_argument("--force", type=bool, default=False,
                            help="use a run folder that another command or run made "
                                 "(docs/architecture.md, Run folders)")

    def _set_seed(self) -> None:
        """Lightning seeds before it builds anything: the run's options are checked first."""
        sub = self.config[self.subcommand]
        check_run_options(sub["seed_everything"], sub["checkpoint_every"])
        super()._set_seed()

    @property
    def root(self) -> Path:
        return Path(self.trainer.default_root_dir)

    def _parse_ckpt_path(self) -> None:
        """A checkpoint file's hyperparameters update the model's arguments; the class stays the config's, so
        nothing stored in a checkpoint names code to import (Lightning would take its ``_class_path``)."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or not Path(ckpt_path).is_file():
            return
        hparams = {key: value for key, value in (read_checkpoint(ckpt_path).get("hyper_parameters") or {}).items()
                   if not key.startswith("_")}
        if hparams:
            try:
                model = {"class_path": self.config[subcommand].model.class_path, "init_args": hparams}
                self.config = self.parser.parse_object({subcommand: {"model": model}}, self.config)
            except ArgumentError as err:
                raise UserError(f"{ckpt_path}: its settings do not fit the config's model "
                                f"({parse_error(err)})") from err

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> L.Trainer:
        sub = self.config[self.subcommand]
        root = writable_run_dir(config.get("default_root_dir") or "runs/default")
        prepare_strategy(config.get("strategy"))
        check_devices(config)
        fits = self.subcommand == "fit"
        self.checkpoint_file = self._checkpoint(root, sub.get("ckpt_path"), required=not fits)
        config["default_root_dir"] = str(root)
        progress = config.get("enable_progress_bar") is not False
        callbacks = [*callbacks, *run_callbacks(root, self.datamodule, sub["checkpoint_every"], progress)]
        if self.subcommand == "predict":
            callbacks.append(_prediction_writer(sub, root))
        if config.get("logger") in (None, True):
            config["logger"] = run_logger(root)
        config["use_distributed_sampler"] = False  # sfp's loaders shard and resume themselves
        trainer = super()._instantiate_trainer(config, callbacks)  # checks the trainer's settings
        fresh = fits and sub.get("ckpt_path") is None  # --ckpt_path last with none saved yet restarts the run
        self.held.enter_context(run_folder(root, "fit" if fits else "test", fresh=fresh, force=sub["force"]))
        return trainer

    @staticmethod
    def _checkpoint(root: Path, ckpt_path: str | None, required: bool) -> str | None:
        """The checkpoint file ``--ckpt_path`` names, checked readable; for ``fit`` only ``last`` may be missing (a
        fresh start, which the run folder then allows only where no run is)."""
        path = resolve_checkpoint(root, ckpt_path, required or ckpt_path not in (None, "last"))
        if ckpt_path == "last" and path is None:
            print(f"no checkpoint in {root / 'checkpoints'}; starting a fresh run")
        return path

    def fit(self, model: L.LightningModule, datamodule: Any = None, ckpt_path: str | None = None, **_: Any) -> None:
        """Train from ``--ckpt_path`` as resolved with the trainer (a fresh run never starts where another run is)."""
        self.trainer.fit(model, datamodule=datamodule, ckpt_path=self.checkpoint_file,
                         weights_only=True)

    def validate(self, model: L.LightningModule, datamodule: Any = None, ckpt_path: str | None = None,
                 **_: Any) -> None:
        self.trainer.validate(model, datamodule=datamodule, ckpt_path=self.checkpoint_file,
                              weights_only=True)

    def test(self, model: L.LightningModule, datamodule: Any = None, ckpt_path: str | None = None, **_: Any) -> None:
        """Evaluate, then write metrics.json (with units) in the run directory and print the table."""
        from sfp.metrics import metric_units

        self.trainer.test(model, datamodule=datamodule, ckpt_path=self.checkpoint_file,
                          weights_only=True)
        if not self.trainer.is_global_zero:
            return
        metrics = {k: float(v) for k, v in getattr(model, "test_results", {}).items()}
        task = getattr(datamodule, "task", None)
        units = metric_units(task, getattr(datamodule, "target", None)) if task is not None else {}
        out = self.root / "metrics.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"dataset": getattr(task, "name", None), "metrics": metrics,
                                   "units": {k: units.get(k, "") for k in metrics}}, indent=2, allow_nan=True))
        print_metrics(metrics, units)
        print(f"wrote {out}")

    def predict(self, model: L.LightningModule, datamodule: Any = None, ckpt_path: str | None = None,
                **_: Any) -> None:
        self.trainer.predict(model, datamodule=datamodule, ckpt_path=self.checkpoint_file,
                             return_predictions=False, weights_only=True)


def _prediction_writer(sub: dict[str, Any], root: Path) -> Callback:
    """The forecast writer of ``sfp predict``; with ``--ensemble K`` also the world model's members."""
    from sfp.data.writing import check_output
    from sfp.planning.ensemble_predictions import EnsemblePredictionWriter
    from sfp.report.predictions import PredictionWriter

    output = check_output(sub["output"] or root / "predictions.npz", {".npz", ".nc"}, replace=True, make_folders=True)
    if sub["gif_samples"] < 0:
        raise UserError(f"--gif_samples must be >= 0, got {sub['gif_samples']}")
    if sub["ensemble"] < 0:
        raise UserError(f"--ensemble must be >= 0 (0: no members), got {sub['ensemble']}")
    if sub["ensemble"]:
        return EnsemblePredictionWriter(output, sub["ensemble"], sub["world_model_checkpoint"], sub["gif_samples"])
    return PredictionWriter(output, sub["gif_samples"])


def _user_error_in(err: BaseException) -> UserError | None:
    """The UserError a class raised while jsonargparse instantiated it (it wraps it in a ValueError)."""
    while err is not None and not isinstance(err, UserError):
        err = err.__cause__ or err.__context__
    return err


def _check_old_keys(configs: list[dict[str, Any]], argv: list[str]) -> None:
    """One line for a model argument an earlier sfp used, in a config file or on the command line."""
    class_path = ""
    for config in configs:
        moved.check_fit(config)
        model = config.get("model")
        class_path = model.get("class_path", class_path) if isinstance(model, dict) else class_path
    for i, item in enumerate(argv[:-1]):
        if item in ("--model", "--model.class_path"):
            class_path = argv[i + 1]
    moves = moved.moves_for(class_path)
    moved.check_arguments(argv, {"model.init_args.": moves, "model.": moves})
    moved.check_data(configs, argv)


def run_lightning(argv: list[str]) -> None:
    """Run one of Lightning's sub-commands from `argv` (``fit --config NAME_OR_FILE ...``), in the pipeline's words
    or Lightning's (:mod:`sfp.cli.fit_dialect`)."""
    argv = resolve_arguments(argv)
    read = {path: read_yaml(path) for path in config_files(argv)}
    configs = list(read.values())
    role = role_of(configs, argv)
    with TemporaryDirectory(prefix="sfp-config-") as folder:
        if role is not None:
            argv, configs, aside = write_lightning_configs(argv, read, role, Path(folder))
            if aside:
                print(f"sfp {argv[0]}: the config's {role} alone; set aside: {', '.join(aside)}")
        try:
            _run_lightning(argv, configs)
        except UserError as err:
            raise UserError(in_pipeline_words(str(err), role) if role else str(err)) from err


def _run_lightning(argv: list[str], configs: list[dict[str, Any]]) -> None:
    _check_old_keys(configs, argv)
    check_class_paths(configs, argv)
    no_exit = {"exit_on_error": False}
    try:
        with ExitStack() as held:
            SfpCLI(L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
                   auto_configure_optimizers=False, save_config_callback=RunConfigSaver,
                   parser_kwargs={**no_exit, **{sub: no_exit for sub in SUBCOMMANDS}}, args=argv, held=held)
    except ArgumentError as err:
        raise parse_error(err) from err
    except MisconfigurationException as err:  # Lightning's word for a setting it cannot work with
        raise UserError(str(err).splitlines()[0]) from err
    except ModuleNotFoundError as err:  # a setting that needs a package not installed (e.g. accelerator tpu)
        raise UserError(str(err).splitlines()[0]) from err
    except ValueError as err:
        cause = _user_error_in(err)
        if cause is not None:
            raise UserError(str(cause)) from err
        if str(err).startswith("Does not validate"):  # a config value no class accepts
            raise parse_error(err) from err
        raise
