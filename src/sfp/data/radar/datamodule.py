"""RadarDataModule: the windows of a prepared radar file (``sfp data prepare radar``), split by event.

Batches follow the field contract ``(context_x, context_y, target_x, target_y)`` with values in mm/h and NaN where
the radar saw nothing (the Forecaster builds the mask from it). Training windows are rotated by a multiple of 90
degrees and flipped at random (:class:`DihedralAugment`); validation and test windows never are.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch.utils.data import get_worker_info

from sfp.data.datamodules import WindowDataModule
from sfp.data.options import Loading, Windows
from sfp.data.radar.dataset import load
from sfp.data.radar.first_guess import layout
from sfp.data.radar.split import TEST_EVENTS, VAL_EVENTS, split_by_event
from sfp.data.windows import ArraySource, Segment, SequenceSource
from sfp.errors import UserError
from sfp.task import RADAR


class DihedralAugment:
    """One of the eight rotations/flips of a window ``(T, C, H, W)``, drawn fresh on every call.

    Draws come from a generator seeded with ``seed`` in the main process, with the worker's seed in a loader worker.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._owner: tuple[int, int | None] | None = None

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        worker = get_worker_info()
        owner = (os.getpid(), None if worker is None else worker.seed)
        if self._owner != owner:
            self._generator = torch.Generator().manual_seed(self.seed if worker is None else worker.seed)
            self._owner = owner
        draw = int(torch.randint(8, (1,), generator=self._generator))
        values = torch.rot90(values, draw % 4, dims=(-2, -1))
        return values.flip(-1) if draw >= 4 else values


class RadarDataModule(WindowDataModule):
    """Windows of ``path`` (a prepared radar .npz); ``val_events``/``test_events`` are held out whole.

    ``context + target`` must fit in the prepared window length; each prepared window gives one sample (its first
    ``context + target`` frames). In a file with a first guess the context is the observed frames and the guess
    (:mod:`sfp.data.radar.first_guess`), so ``context`` must be their sum.
    """

    def __init__(self, path: str, windows: Windows = Windows(context=6, target=6),
                 loading: Loading = Loading(batch_size=16), val_events: Sequence[str] = VAL_EVENTS,
                 test_events: Sequence[str] = TEST_EVENTS, augment: bool = True, seed: int = 0) -> None:
        super().__init__(windows, loading, seed)
        if self.windows.stride is not None:
            raise UserError("windows.stride: each prepared radar window gives one sample; leave stride unset")
        self._save_settings()
        self.stride = self.context + self.target
        self.task = RADAR
        self.path, self.augment = path, augment
        self.val_events, self.test_events = tuple(val_events), tuple(test_events)
        self._arrays: dict | None = None

    @property
    def arrays(self) -> dict:
        """The prepared file's arrays (read on first use)."""
        if self._arrays is None:
            self._arrays = load(self.path)
            length = self._arrays["data"].shape[1]
            observed, guess = layout(self._arrays)
            if guess and not (self.context == observed + guess and self.target <= guess):
                raise UserError(f"{self.path}: its windows hold {observed} observed frames and a {guess}-frame first "
                                f"guess ({self._arrays['first_guess']}); read them with windows.context = "
                                f"{observed + guess} and windows.target <= {guess}, not {self.context} and "
                                f"{self.target}")
            if self.context + self.target > length:
                raise UserError(f"{self.path}: context + target = {self.context + self.target} is longer than "
                                f"its windows of {length} frames")
        return self._arrays

    @property
    def step_minutes(self) -> int:
        """Minutes between frames (pictures stamp lead times with it)."""
        return int(self.arrays["step_minutes"])

    def _open(self) -> SequenceSource:
        return ArraySource(self.arrays["data"])

    def _split(self, source: SequenceSource) -> dict[str, list[Segment]]:
        indices = split_by_event(self.arrays["event"], self.arrays["events"], self.val_events, self.test_events)
        window = self.context + self.target
        return {name: [Segment(i, 0, window) for i in found] for name, found in indices.items()}

    def _train_transform(self) -> DihedralAugment | None:
        return DihedralAugment(self.seed) if self.augment else None
