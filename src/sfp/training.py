"""The run-directory conventions shared by ``sfp fit`` and the pipeline's stages.

A run directory holds ``checkpoints/last.ckpt`` (every ``checkpoint_every`` steps: what a killed run resumes
from), ``checkpoints/best.ckpt`` (best validation value of the headline metric) and ``logs/`` (CSV).
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger

from sfp.errors import UserError
from sfp.options import check_seed

CHECKPOINT_EVERY = 50
"""Training steps between saves of ``checkpoints/last.ckpt`` unless a run says otherwise."""


def check_run_options(seed: Any, checkpoint_every: int) -> None:
    """A seed numpy accepts and a positive checkpoint interval, checked before any work rather than when the first
    stage needs them."""
    check_seed(seed)
    if checkpoint_every < 1:
        raise UserError(f"checkpoint_every must be >= 1 (training steps between saves of last.ckpt), "
                        f"got {checkpoint_every}")


def writable_run_dir(path: str | Path) -> Path:
    """``path`` created if needed and checked writable; one line when it cannot be (a file in the way, no
    permission, a read-only disk)."""
    if not str(path).strip():
        raise UserError("the run folder is empty (''): name a folder for the run")
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise UserError(f"{path}: cannot write the run there ({err.strerror or type(err).__name__})") from err
    return path


def prepare_strategy(strategy: Any) -> None:
    """Spawned processes (``ddp_spawn``) receive the module through shared memory: share tensors through files,
    which also carries the empty buffers a module has before its data module set them. A forking strategy cannot
    follow GPU work in the same process (CUDA does not survive a fork): refused in one line, before any process
    starts."""
    if "spawn" in str(strategy):
        torch.multiprocessing.set_sharing_strategy("file_system")
    if "fork" in str(strategy) and torch.cuda.is_initialized():
        raise UserError(f"strategy {strategy!r} forks this process, which has already used the GPU (CUDA cannot "
                        "be forked): use ddp or ddp_spawn")


def check_devices(trainer: dict[str, Any]) -> None:
    """CPU processes are bounded by the CPU's cores: ``devices: 1000`` would start 1,000 training processes."""
    accelerator, devices = str(trainer.get("accelerator") or "auto"), trainer.get("devices")
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    try:
        count = int(devices) if isinstance(devices, int | str) and not isinstance(devices, bool) else None
    except ValueError:
        count = None
    cores = os.cpu_count() or 1
    if on_cpu and count is not None and count > cores:
        raise UserError(f"devices {count}: more CPU processes than this machine's {cores} cores")


def headline_monitor(datamodule: Any) -> tuple[str, str]:
    """The validation key and direction that select the best checkpoint: the dataset's headline metric."""
    task = getattr(datamodule, "task", None)
    if task is None:
        return "val/loss", "min"
    return f"val/{task.headline}", "max" if task.higher_is_better else "min"


class FitClock(Callback):
    """Seconds of fitting, carried in every checkpoint: a run resumed from ``last.ckpt`` counts, in
    ``seconds_before``, the time the interrupted attempts spent up to that checkpoint (what a stage's wall time, and
    the equal-wall-time comparison built on it, must include)."""

    def __init__(self) -> None:
        self.seconds_before = 0.0
        self._start: float | None = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._start = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Seconds of this attempt so far plus those carried from the checkpoint it resumed."""
        return self.seconds_before + (0.0 if self._start is None else time.perf_counter() - self._start)

    def state_dict(self) -> dict[str, float]:
        return {"seconds": self.seconds}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.seconds_before = float(state_dict["seconds"])


class KeepSpec(Callback):
    """The run spec a stage trained with, as plain data, in each of its checkpoints (``sfp_run_spec``): the
    weights carry the settings that made them, as nanoGPT keeps its config beside its weights."""

    KEY = "sfp_run_spec"

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint[self.KEY] = self.spec


def run_callbacks(root: str | Path, datamodule: Any, checkpoint_every: int = CHECKPOINT_EVERY,
                  progress: bool = True, patience: int | None = None, by_mse: bool = False) -> list[Callback]:
    """Checkpointing (last and best), the :class:`FitClock`, a progress bar and, with ``patience``, early stopping
    for a run living in `root`; best and early stopping by the headline metric, or (``by_mse``) by the validation
    MSE, the loss a forecaster trains on."""
    monitor, mode = ("val/mse", "min") if by_mse else headline_monitor(datamodule)
    checkpoints = Path(root) / "checkpoints"
    callbacks: list[Callback] = [
        ModelCheckpoint(dirpath=checkpoints, filename="last-step", save_last=True,
                        every_n_train_steps=checkpoint_every, save_top_k=0),
        ModelCheckpoint(dirpath=checkpoints, filename="best", monitor=monitor, mode=mode, save_top_k=1,
                        enable_version_counter=False, auto_insert_metric_name=False),
        FitClock(),
    ]
    if progress:
        callbacks.append(RichProgressBar(leave=True))
    if patience is not None:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=patience))
    return callbacks


def run_logger(root: str | Path) -> CSVLogger:
    """CSV metrics under ``root/logs``."""
    return CSVLogger(save_dir=str(root), name="logs")


def resolve_checkpoint(root: str | Path, ckpt_path: str | None, required: bool) -> str | None:
    """Map ``last``/``best`` to the run's files, checked readable; a missing one is an error unless a fresh start
    is allowed."""
    if ckpt_path in ("last", "best"):
        path = Path(root) / "checkpoints" / f"{ckpt_path}.ckpt"
        if not path.is_file():
            if required:
                raise UserError(f"{path}: no such checkpoint; train first with `sfp fit` (same --config)")
            return None
        ckpt_path = str(path)
    if ckpt_path is not None:
        read_checkpoint(ckpt_path)  # a missing, truncated or unsafe file is one line here, not a traceback later
    return ckpt_path


_NOISE = ("Traceback", "Given value", "Subtypes:", "Errors:", "Expected a <class 'NoneType'>")


def parse_error(err: BaseException) -> UserError:
    """A config parser's (jsonargparse's) error in one line: only the lines that say what is wrong."""
    lines = [line.strip(" -") for line in str(err).splitlines() if line.strip(" -")]
    keep = [line for line in lines if not line.startswith(_NOISE)]
    return UserError("; ".join(dict.fromkeys(keep))[:600] or type(err).__name__)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path``, loaded without unpickling objects; a missing or broken file is one line."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a checkpoint file")
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file")
    unreadable = f"{path}: not a readable checkpoint (empty, truncated or another format)"
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives
        raise UserError(unreadable)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UserError(f"{path}: holds pickled objects, which sfp never loads (a checkpoint is weights and "
                        "plain settings only)") from err
    except (EOFError, RuntimeError, OSError, zipfile.BadZipFile) as err:
        raise UserError(unreadable) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UserError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return checkpoint
