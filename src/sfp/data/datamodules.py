"""LightningDataModules for the generated datasets and series files, configurable from YAML (those of files in other
layouts: :mod:`sfp.data.file_datamodules`).

Every data module cuts windows (:class:`~sfp.data.windows.WindowDataset`) out of a source, splits the source
without overlap, fits normalization statistics on the training split only, and exposes what a Forecaster needs:

- ``task``: the :class:`~sfp.task.TaskSpec` the data is judged on;
- ``normalization_stats()``: ``{"mean", "std"}`` per channel (fields) or variable (series), shaped to broadcast
  against one time step ``*S``;
- ``null_value`` (missing values are NaN unless this is set), ``d_x`` (time features), ``context``, ``target``,
  ``sample_shape`` (``*S``).

Batches are ``(context_x, context_y, target_x, target_y)`` of shapes ``(B, T, d_x)`` and ``(B, T, *S)``.
``prepare_data`` generates (and caches) data; ``setup`` opens it, splits it and fits the statistics. The train,
val and test loaders are :class:`~sfp.data.loader.ResumableLoader` objects: they shard across DDP processes
themselves (train with ``use_distributed_sampler=False``), shuffle the training split by ``seed + epoch`` and replay
the order on resume; loader-worker seeds come from a generator seeded with ``seed``. So a run is reproducible from
``seed``.
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info

from sfp.data.files import open_array
from sfp.data.heatwave_windows import HeatwaveWindows, training_climatology
from sfp.data.loader import ResumableLoader
from sfp.data.options import Augmentation, Loading, Splits, Windows
from sfp.data.readers.base import reject_infinite
from sfp.data.registry import DatasetSpec, get_dataset
from sfp.data.scalers import fit_moments
from sfp.data.sensors import extract_datapoints
from sfp.data.windows import (
    ArraySource,
    Position,
    Segment,
    SequenceSource,
    WindowDataset,
    feature_dim,
    split_by_sequence,
    split_by_time,
)
from sfp.errors import UserError
from sfp.options import coerce, plain, save_plain_hyperparameters
from sfp.task import TASKS, TaskSpec

SPLITS = ("train", "val", "test")


class WindowDataModule(pl.LightningDataModule):
    """Shared machinery; a subclass says how to open its source (``_open``) and split it (``_split``)."""

    task: TaskSpec
    position: Position = "sequence"

    def __init__(self, windows: Windows | dict, loading: Loading | dict, seed: int, calendar: bool = False,
                 null_value: float | None = None) -> None:
        super().__init__()
        self.windows, self.loading = self._options("windows", windows), self._options("loading", loading)
        self.context, self.target, self.stride = self.windows.context, self.windows.target, self.windows.stride
        self.batch_size, self.seed, self.num_workers = self.loading.batch_size, seed, self.loading.num_workers
        self.calendar, self.null_value = calendar, null_value
        self.datasets: dict[str, WindowDataset] = {}
        self._source: SequenceSource | None = None
        self._stats: dict[str, torch.Tensor] | None = None
        self._generator = torch.Generator().manual_seed(seed)

    def _options(self, name: str, value: Any) -> Any:
        """The option group ``name`` of this class's constructor from ``value``: an instance, None (where None is a
        choice, e.g. no augmentation), or a mapping of some of its fields, the others at this class's default
        instance (as a config's are), not at the group's own defaults."""
        default = inspect.signature(type(self).__init__).parameters[name].default
        if value is None or isinstance(value, type(default)):
            return value
        if not isinstance(value, dict):
            raise UserError(f"{name} must be a mapping of {type(default).__name__} options, got {value!r}"[:300])
        return coerce(type(default), {**plain(default), **value})

    def _save_settings(self, **groups: Any) -> None:
        """The calling constructor's arguments as hyperparameters (checkpoints, logs), the option groups plain and
        whole (every field filled in), as :func:`~sfp.options.save_plain_hyperparameters` keeps them."""
        save_plain_hyperparameters(self, frame=inspect.currentframe().f_back, windows=self.windows,
                                   loading=self.loading, **groups)

    def _open(self) -> SequenceSource:
        raise NotImplementedError

    def _split(self, source: SequenceSource) -> dict[str, list[Segment]]:
        raise NotImplementedError

    def _train_transform(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """What augments training windows (None: nothing); called after the statistics are fit."""
        return None

    @property
    def source(self) -> SequenceSource:
        """The opened data (opened on first use)."""
        if self._source is None:
            self._source = self._open()
        return self._source

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.source.sample_shape)

    @property
    def d_x(self) -> int:
        return feature_dim(self.calendar)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        source = self.source
        splits = self._split(source)
        moments = fit_moments(source, splits["train"], null_value=self.null_value)
        self._stats = moments.stats(len(source.sample_shape))
        transform = self._train_transform()
        for name in SPLITS:
            self.datasets[name] = WindowDataset(
                source, self.context, self.target, self.stride, splits[name], self.position, self.calendar,
                transform if name == "train" else None)

    def normalization_stats(self) -> dict[str, torch.Tensor]:
        """``{"mean", "std"}`` fit on the training split (runs ``setup`` if it has not run)."""
        self.setup()
        return {key: value.clone() for key, value in self._stats.items()}

    def _loader(self, split: str) -> ResumableLoader:
        """A loader that shards across DDP ranks itself, shuffles the training split anew each epoch
        (``seed + epoch``) and replays its order on resume; worker seeds come from a generator seeded here."""
        self.setup()
        train = split == "train"
        return ResumableLoader(self.datasets[split], batch_size=self.batch_size, shuffle=train, seed=self.seed,
                               generator=self._generator if train else torch.Generator().manual_seed(self.seed),
                               num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> ResumableLoader:
        return self._loader("train")

    def val_dataloader(self) -> ResumableLoader:
        return self._loader("val")

    def test_dataloader(self) -> ResumableLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        """The test windows in order, in a plain loader: prediction re-creates its loader to track indices."""
        self.setup()
        return DataLoader(self.datasets["test"], batch_size=self.batch_size, num_workers=self.num_workers)


def _generate(spec: DatasetSpec, params: dict) -> np.ndarray:
    try:
        return spec.generate(**{**spec.defaults, **params})
    except TypeError as err:
        raise UserError(f"{spec.name}: {err}") from err


class FieldDataModule(WindowDataModule):
    """A generated field dataset (storms, navier_stokes, flame) of ``n_sequences`` sequences ``(T, C, H, W)``.

    Sequences are dealt into train/val/test whole. ``seed`` seeds the generator, the split and the shuffling;
    ``dataset_kwargs`` go to the dataset's generator (e.g. ``{"viscosity": 1e-3}``); ``train_fraction`` keeps that
    share of the training sequences (the data-scarce case: validation and test unchanged).
    """

    def __init__(self, dataset: str = "storms", n_sequences: int = 256, frames: int = 20, size: int = 64,
                 windows: Windows = Windows(), splits: Splits = Splits(), loading: Loading = Loading(),
                 seed: int = 0, dataset_kwargs: dict | None = None, train_fraction: float = 1.0) -> None:
        splits = self._options("splits", splits)
        super().__init__(windows, loading, seed)
        self._save_settings(splits=splits)
        if not 0.0 < train_fraction <= 1.0:
            raise UserError(f"train_fraction must lie in (0, 1], got {train_fraction}")
        self.train_fraction = train_fraction
        self.spec = get_dataset(dataset)
        if self.spec.kind != "field":
            raise UserError(f"{dataset} is a {self.spec.kind} dataset; use SeriesDataModule")
        if self.context + self.target > frames:
            raise UserError(f"windows: context + target = {self.context + self.target} is longer than the {frames} "
                            f"frames per sequence")
        self.task = self.spec.task
        self.n_sequences, self.frames, self.size = n_sequences, frames, size
        self.val_fraction, self.test_fraction = splits.val_fraction, splits.test_fraction
        self.params = {"n": n_sequences, "frames": frames, "size": size, "seed": seed, **(dataset_kwargs or {})}

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.spec.channels, self.size, self.size)

    def prepare_data(self) -> None:
        _generate(self.spec, self.params)

    def _open(self) -> SequenceSource:
        return ArraySource(_generate(self.spec, self.params))

    def _split(self, source: SequenceSource) -> dict[str, list[Segment]]:
        """Whole sequences dealt into the splits; with ``train_fraction`` < 1, a random ``train_fraction`` of the
        training sequences (at least one; seeded, so a smaller fraction's sequences are among a larger one's)."""
        splits = split_by_sequence(source, self.val_fraction, self.test_fraction, self.seed)
        if self.train_fraction < 1.0:
            train = splits["train"]
            keep = max(1, round(self.train_fraction * len(train)))
            order = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.seed)).tolist()
            splits["train"] = [train[i] for i in sorted(order[:keep])]
        return splits


class OceanDataModule(FieldDataModule):
    """The embedded daily SST (``ocean``): one sequence per 365-day year, years dealt whole into the splits, and
    the marine heatwave climatology of the training years only, as ``heatwave_windows`` (a
    :class:`~sfp.data.heatwave_windows.HeatwaveWindows`) for the heatwave scores and rewards.

    Normalization statistics are per pixel (``(C, H, W)``; land: mean 0, std 1): the mean SST falls by 14 °C across
    the domain, so one mean per channel would leave a model to learn the map of the mean before the weather."""

    def __init__(self, n_sequences: int = 20, frames: int = 365, size: int = 64, windows: Windows = Windows(),
                 splits: Splits = Splits(val_fraction=0.15, test_fraction=0.15),
                 loading: Loading = Loading(batch_size=16), seed: int = 0, dataset_kwargs: dict | None = None,
                 train_fraction: float = 1.0) -> None:
        super().__init__("ocean", n_sequences, frames, size, windows, splits, loading, seed, dataset_kwargs,
                         train_fraction)
        self.heatwave_windows: HeatwaveWindows | None = None

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if self.heatwave_windows is None:
            years = np.array(sorted(segment.sequence for segment in self._split(self.source)["train"]))
            sst = np.asarray(self.source.array[years])
            self.heatwave_windows = HeatwaveWindows(training_climatology(years, sst), self.frames)
            with warnings.catch_warnings():  # land pixels have no value
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, std = np.nanmean(sst, axis=(0, 1)), np.nanstd(sst, axis=(0, 1))
            sea = np.isfinite(mean) & (std > 0)
            self._stats = {"mean": torch.from_numpy(np.where(sea, mean, 0.0).astype(np.float32)),
                           "std": torch.from_numpy(np.where(sea, std, 1.0).astype(np.float32))}


class SeriesAugment:
    """Training-time noise on a window ``(T, N)``: frequency-domain noise, then Gaussian noise.

    The spectrum along time (``torch.fft.rfft``) is multiplied by ``1 + freq_noise_std * z`` with ``z`` complex
    standard normal, except the mean (frequency 0), and turned back (``irfft``); then Gaussian noise of
    ``noise_std`` training standard deviations is added per variable. The whole window (context and target) is
    perturbed, so it stays one coherent trajectory. Missing values stay missing. Noise is drawn fresh on every
    call: in the main process from a generator seeded with ``seed``; in a loader worker from the worker's seed,
    which the loader draws anew every epoch.
    """

    def __init__(self, std: torch.Tensor, noise_std: float, freq_noise_std: float, seed: int) -> None:
        self.std, self.noise_std, self.freq_noise_std, self.seed = std, noise_std, freq_noise_std, seed
        self._generator: torch.Generator | None = None
        self._owner: tuple[int, int | None] | None = None

    def _draws(self) -> torch.Generator:
        worker = get_worker_info()
        owner = (os.getpid(), None if worker is None else worker.seed)
        if self._owner != owner:
            self._generator = torch.Generator().manual_seed(self.seed if worker is None else worker.seed)
            self._owner = owner
        return self._generator

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        generator = self._draws()
        missing = torch.isnan(values)
        values = torch.where(missing, torch.nanmean(values, dim=0, keepdim=True).nan_to_num(), values)
        if self.freq_noise_std > 0:
            spectrum = torch.fft.rfft(values, dim=0)
            noise = torch.randn(spectrum.shape, dtype=spectrum.dtype, generator=generator) * self.freq_noise_std
            noise[0] = 0
            values = torch.fft.irfft(spectrum * (1 + noise), n=values.shape[0], dim=0)
        if self.noise_std > 0:
            values = values + torch.randn(values.shape, generator=generator) * (self.noise_std * self.std)
        return values.masked_fill(missing, math.nan)


class SeriesDataModule(WindowDataModule):
    """One long multivariate series ``(T, N)``, split by time, windows every ``stride`` steps.

    The series is the generated ``dataset`` (``sensors``; ``length`` and ``dataset_kwargs`` go to its generator),
    or, with ``path``, a file: a ``(T, N)`` array, or a seed-style ``(T, X, Y, 2)`` velocity array whose probes at
    the lattice of ``x_indices`` x ``y_indices`` are read by :func:`sfp.data.sensors.extract_datapoints`; NaN in
    the file is missing data, +inf or -inf a UserError naming the file and the count. Splits
    are consecutive blocks ``context + target`` steps apart. With ``augment``, training windows get
    :class:`SeriesAugment` noise (None: none), fresh every epoch; validation and test windows never get it.
    """

    position: Position = "window"

    def __init__(self, dataset: str = "sensors", path: str | None = None, x_indices: list[int] | None = None,
                 y_indices: list[int] | None = None, variable: str | None = None, length: int | None = None,
                 windows: Windows = Windows(context=80, target=4, stride=1),
                 splits: Splits = Splits(val_fraction=0.1, test_fraction=0.2),
                 loading: Loading = Loading(batch_size=32), augment: Augmentation | None = Augmentation(),
                 seed: int = 0, null_value: float | None = None, dataset_kwargs: dict | None = None) -> None:
        splits, augment = self._options("splits", splits), self._options("augment", augment)
        super().__init__(windows, loading, seed, null_value=null_value)
        self._save_settings(splits=splits, augment=augment)
        self.path, self.x_indices, self.y_indices, self.variable = path, x_indices, y_indices, variable
        self.spec = None if path else get_dataset(dataset)
        if self.spec is not None and self.spec.kind != "series":
            raise UserError(f"{dataset} is a {self.spec.kind} dataset; use FieldDataModule")
        self.task = self.spec.task if self.spec else TASKS["sensors"]
        self.params = {"seed": seed, **({} if length is None else {"length": length}), **(dataset_kwargs or {})}
        self.val_fraction, self.test_fraction = splits.val_fraction, splits.test_fraction
        self.augment = augment

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.spec.channels,) if self.spec is not None else tuple(self.source.sample_shape)

    def prepare_data(self) -> None:
        if self.spec is not None:
            _generate(self.spec, self.params)

    def _open(self) -> SequenceSource:
        if self.spec is not None:
            return ArraySource(_generate(self.spec, self.params), series=True)
        array = open_array(self.path, self.variable)
        if len(array.shape) == 4:
            if self.x_indices is None or self.y_indices is None:
                raise UserError(f"{self.path}: a (T, X, Y, 2) array needs x_indices and y_indices of the probes")
            array = extract_datapoints(array, self.x_indices, self.y_indices)
        elif len(array.shape) != 2:
            raise UserError(f"{self.path}: expected a (T, N) or (T, X, Y, 2) array, got shape {tuple(array.shape)}")
        return ArraySource(reject_infinite(self.path, np.asarray(array, dtype=np.float32)), series=True)

    def _split(self, source: SequenceSource) -> dict[str, list[Segment]]:
        return split_by_time(source, self.val_fraction, self.test_fraction, gap=self.context + self.target,
                             name=self.path or self.spec.name)

    def _train_transform(self) -> SeriesAugment | None:
        if self.augment is None or (self.augment.noise_std == 0 and self.augment.freq_noise_std == 0):
            return None
        return SeriesAugment(self._stats["std"], self.augment.noise_std, self.augment.freq_noise_std, self.seed)
