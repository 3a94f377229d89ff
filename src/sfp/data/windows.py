"""Sliding windows over sequences, their time features, and leak-free train/val/test splits.

A *source* is anything that holds ``num_sequences`` sequences of ``sequence_length`` steps of shape ``*S`` and can
read a slice of one of them (:class:`SequenceSource`): an in-memory array (:class:`ArraySource`) or a lazy reader of
real data (``sfp.data.readers``). A :class:`WindowDataset` cuts windows of ``context + target`` steps out of
*segments* ``(sequence, start, stop)`` of a source, never across a segment's ends, and reads each window only when
it is asked for, so a lazy source is never loaded whole.

Items are ``(context_x, context_y, target_x, target_y)``: ``*_y`` are the values ``(T, *S)`` float32 in original
units, ``*_x`` the time features ``(T, d_x)`` float32:

- column 0, the step's position, scaled to [0, 1]: within the sequence (``position="sequence"``, for sets of short
  sequences such as storm events) or within the window (``position="window"``, for one long series, whose absolute
  time says nothing and would differ between the splits);
- with ``calendar=True`` (real data with timestamps) four more columns: sin and cos of the fraction of the year and
  of the fraction of the day. So ``d_x = 1 + 4 * calendar``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from sfp.errors import UserError

Position = Literal["sequence", "window"]
SECONDS_PER_DAY = 86400.0
DAYS_PER_YEAR = 365.2425


class SequenceSource(Protocol):
    """Sequences of equal length, read a slice at a time."""

    num_sequences: int
    sequence_length: int
    sample_shape: tuple[int, ...]

    def read(self, sequence: int, start: int, stop: int) -> np.ndarray:
        """Steps ``start:stop`` of one sequence as float32 ``(stop - start, *S)``."""
        ...

    def timestamps(self, sequence: int) -> np.ndarray | None:
        """The ``datetime64`` time of each step of one sequence, or None when the data has no calendar."""
        ...


class Segment(NamedTuple):
    """Steps ``start:stop`` of sequence ``sequence``: windows are cut inside it and never cross its ends."""

    sequence: int
    start: int
    stop: int


class ArraySource:
    """An array ``(N, T, *S)`` of sequences, or one long series ``(T, *S)`` when ``series=True``, as a source.

    Any array that slices like numpy works (an ``np.memmap``, an h5py dataset): only the windows asked for are read.
    """

    def __init__(self, array: np.ndarray | torch.Tensor, series: bool = False) -> None:
        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().numpy()
        if len(array.shape) < (1 if series else 2):
            expected = "(T, *S)" if series else "(N, T, *S)"
            raise UserError(f"expected an array {expected}, got shape {tuple(array.shape)}")
        self.array = array[None] if series else array
        self.num_sequences, self.sequence_length, *rest = self.array.shape
        self.sample_shape = tuple(rest)

    def read(self, sequence: int, start: int, stop: int) -> np.ndarray:
        return np.asarray(self.array[sequence, start:stop], dtype=np.float32)

    def timestamps(self, sequence: int) -> np.ndarray | None:
        return None


def time_features(steps: np.ndarray, length: int, timestamps: np.ndarray | None = None) -> np.ndarray:
    """Time features ``(len(steps), d_x)`` float32 of the given step indices (see the module docstring).

    ``length`` scales the positions: ``steps / (length - 1)``. ``timestamps`` (datetime64, one per step) adds the
    four calendar columns.
    """
    columns = [steps / max(length - 1, 1)]
    if timestamps is not None:
        seconds = (timestamps.astype("datetime64[s]") - np.datetime64("1970-01-01", "s")).astype(np.float64)
        day_fraction = (seconds % SECONDS_PER_DAY) / SECONDS_PER_DAY
        year_start = timestamps.astype("datetime64[Y]").astype("datetime64[s]")
        year_fraction = (timestamps.astype("datetime64[s]") - year_start).astype(np.float64) / (
            DAYS_PER_YEAR * SECONDS_PER_DAY)
        for fraction in (year_fraction, day_fraction):
            columns += [np.sin(2 * np.pi * fraction), np.cos(2 * np.pi * fraction)]
    return np.stack(columns, axis=-1).astype(np.float32)


def feature_dim(calendar: bool) -> int:
    """``d_x`` of the time features: the position, plus four calendar columns."""
    return 1 + 4 * int(calendar)


def full_segments(source: SequenceSource, sequences: Sequence[int] | None = None) -> list[Segment]:
    """Whole sequences as segments (all of them, or the given indices)."""
    indices = range(source.num_sequences) if sequences is None else sequences
    return [Segment(int(i), 0, source.sequence_length) for i in indices]


class WindowDataset(Dataset):
    """Windows of ``context + target`` steps, every ``stride`` steps, inside each segment of a source.

    ``stride`` defaults to ``target``, so the targets of consecutive windows tile a sequence. ``transform`` maps
    the window's values ``(context + target, *S)`` (a float32 tensor) to new ones; data modules use it to augment
    the training split.
    """

    def __init__(
        self,
        source: SequenceSource,
        context: int,
        target: int,
        stride: int | None = None,
        segments: Sequence[Segment] | None = None,
        position: Position = "sequence",
        calendar: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        stride = target if stride is None else stride
        for name, value in (("context", context), ("target", target), ("stride", stride)):
            if int(value) != value or value < 1:
                raise UserError(f"{name} must be a positive integer, got {value!r}")
        if position not in ("sequence", "window"):
            raise UserError(f"position must be 'sequence' or 'window', got {position!r}")
        segments = full_segments(source) if segments is None else [Segment(*s) for s in segments]
        for seg in segments:
            if not (0 <= seg.sequence < source.num_sequences and 0 <= seg.start <= seg.stop <= source.sequence_length):
                raise UserError(f"segment {tuple(seg)} lies outside the source "
                                f"({source.num_sequences} sequences of {source.sequence_length} steps)")
        if calendar and source.num_sequences and source.timestamps(0) is None:
            raise UserError("calendar time features need timestamps, and this data has none")
        self.source, self.context, self.target, self.stride = source, int(context), int(target), int(stride)
        self.position, self.calendar, self.transform = position, calendar, transform
        self.window = self.context + self.target
        starts = [(seg.sequence, start) for seg in segments
                  for start in range(seg.start, seg.stop - self.window + 1, self.stride)]
        if segments and not starts:
            longest = max(seg.stop - seg.start for seg in segments)
            raise UserError(f"context + target = {self.window} steps is longer than the data "
                            f"(the longest sequence or split holds {longest} steps)")
        self.index = np.array(starts, dtype=np.int64).reshape(-1, 2)

    @property
    def d_x(self) -> int:
        return feature_dim(self.calendar)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        sequence, start = (int(v) for v in self.index[item])
        stop = start + self.window
        values = torch.from_numpy(self.source.read(sequence, start, stop))
        if self.transform is not None:
            values = self.transform(values)
        if self.position == "sequence":
            steps, length = np.arange(start, stop), self.source.sequence_length
        else:
            steps, length = np.arange(self.window), self.window
        stamps = self.source.timestamps(sequence)
        x = torch.from_numpy(time_features(steps, length, stamps[start:stop] if self.calendar else None))
        c = self.context
        return x[:c], values[:c], x[c:], values[c:]


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Both fractions in [0, 1) and leaving room for a training split, else a UserError."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise UserError(f"{name} must lie in [0, 1), got {value}")
    if val_fraction + test_fraction >= 1:
        raise UserError(f"val_fraction + test_fraction must be below 1, got {val_fraction + test_fraction}")


def _split_counts(total: int, val_fraction: float, test_fraction: float, what: str) -> tuple[int, int, int]:
    """Sizes (train, val, test) of ``total`` items; a non-zero fraction gets at least one item."""
    check_fractions(val_fraction, test_fraction)
    n_val, n_test = (max(1, round(total * f)) if f > 0 else 0 for f in (val_fraction, test_fraction))
    n_train = total - n_val - n_test
    if n_train < 1:
        raise UserError(f"{total} {what} are too few to split off val_fraction={val_fraction} "
                        f"and test_fraction={test_fraction} and keep a training split")
    return n_train, n_val, n_test


def split_by_sequence(source: SequenceSource, val_fraction: float, test_fraction: float,
                      seed: int) -> dict[str, list[Segment]]:
    """Whole sequences, shuffled by a generator seeded with ``seed``, dealt into train/val/test."""
    counts = _split_counts(source.num_sequences, val_fraction, test_fraction, "sequences")
    order = torch.randperm(source.num_sequences, generator=torch.Generator().manual_seed(seed)).tolist()
    bounds = np.cumsum((0,) + counts)
    return {name: full_segments(source, sorted(order[bounds[k]:bounds[k + 1]]))
            for k, name in enumerate(("train", "val", "test"))}


def split_by_time(source: SequenceSource, val_fraction: float, test_fraction: float,
                  gap: int, name: str = "the series") -> dict[str, list[Segment]]:
    """Consecutive blocks of one long series: train, then val, then test, ``gap`` steps apart.

    ``gap`` is the window length ``context + target``: so spaced, no window of one split shares a step with another
    split. A series too short to hold a window in each split and the gaps is a UserError naming ``name``.
    """
    if source.num_sequences != 1:
        raise UserError(f"a split by time needs one long series, got {source.num_sequences} sequences")
    length = source.sequence_length
    splits = [split for split, fraction in (("train", 1), ("val", val_fraction), ("test", test_fraction)) if fraction]
    gaps = gap * (len(splits) - 1)
    needed = gap * len(splits) + gaps
    if length < needed:
        raise UserError(f"{name}: {length} time steps are too few for a window of context + target = {gap} steps in "
                        f"each of {', '.join(splits)}, {gap} steps apart: that takes at least {needed}")
    n_train, n_val, n_test = _split_counts(length - gaps, val_fraction, test_fraction,
                                           f"time steps (of {length} in {name}, less {gaps} in gaps)")
    segments, start = {}, 0
    for name, count in (("train", n_train), ("val", n_val), ("test", n_test)):
        segments[name] = [Segment(0, start, start + count)] if count else []
        start += count + gap if count else 0
    return segments
