"""LightningDataModules of data in files a user points to: SEVIR, Navier–Stokes in the FNO layout, a NetCDF variable
(the contract all data modules keep: :mod:`sfp.data.datamodules`; radar's module: :mod:`sfp.data.radar`)."""

from __future__ import annotations

import torch

from sfp.data.datamodules import SPLITS, WindowDataModule
from sfp.data.options import Loading, Splits, Windows
from sfp.data.readers import FNOReader, NetCDFReader, SEVIRReader
from sfp.data.readers.sevir import TRAIN_END, VAL_END
from sfp.data.windows import Position, Segment, SequenceSource, full_segments, split_by_sequence, split_by_time
from sfp.errors import UserError
from sfp.task import NAVIER_STOKES, TASKS, TaskSpec


class SEVIRDataModule(WindowDataModule):
    """SEVIR VIL events (see :class:`~sfp.data.readers.SEVIRReader`), split by time at ``train_end``/``val_end``.

    Defaults follow the standard benchmark: 13 frames in, 12 out, stride 12; ``size=128`` shrinks the 384x384
    frames by block means so CPUs can train. Time features include the calendar (``d_x = 5``).
    """

    def __init__(self, root: str, catalog: str | None = None, size: int | None = 128,
                 windows: Windows = Windows(context=13, target=12, stride=12), loading: Loading = Loading(),
                 seed: int = 0, calendar: bool = True, train_end: str = TRAIN_END, val_end: str = VAL_END) -> None:
        super().__init__(windows, loading, seed, calendar=calendar)
        self._save_settings()
        self.task = TASKS["storms"]
        self.root, self.catalog, self.size = root, catalog, size
        self.train_end, self.val_end = train_end, val_end

    def _open(self) -> SEVIRReader:
        return SEVIRReader(self.root, self.catalog, self.size)

    def _split(self, source: SEVIRReader) -> dict[str, list[Segment]]:
        indices = source.split_indices(self.train_end, self.val_end)
        if not indices["train"]:
            raise UserError(f"{self.root}: no SEVIR event before {self.train_end} to train on")
        return {name: full_segments(source, indices[name]) for name in SPLITS}


class FNODataModule(WindowDataModule):
    """Navier–Stokes trajectories from an FNO-style ``.mat``/HDF5 file, split by trajectory."""

    def __init__(self, path: str, variable: str = "u", windows: Windows = Windows(), splits: Splits = Splits(),
                 loading: Loading = Loading(), seed: int = 0) -> None:
        splits = self._options("splits", splits)
        super().__init__(windows, loading, seed)
        self._save_settings(splits=splits)
        self.task = NAVIER_STOKES
        self.path, self.variable = path, variable
        self.val_fraction, self.test_fraction = splits.val_fraction, splits.test_fraction

    def _open(self) -> FNOReader:
        return FNOReader(self.path, self.variable)

    def _split(self, source: SequenceSource) -> dict[str, list[Segment]]:
        return split_by_sequence(source, self.val_fraction, self.test_fraction, self.seed)


class NetCDFDataModule(WindowDataModule):
    """A gridded NetCDF variable (e.g. daily SST) as one long series of frames, split by time.

    ``time_start``/``time_end`` and ``lat_range``/``lon_range`` select the data (see
    :class:`~sfp.data.readers.NetCDFReader`); land is NaN and ``mask`` is True where there is data.
    """

    position: Position = "window"

    def __init__(self, path: str, variable: str, time_start: str | None = None, time_end: str | None = None,
                 lat_range: tuple[float, float] | None = None, lon_range: tuple[float, float] | None = None,
                 windows: Windows = Windows(stride=1), splits: Splits = Splits(), loading: Loading = Loading(),
                 seed: int = 0, calendar: bool = True) -> None:
        splits = self._options("splits", splits)
        super().__init__(windows, loading, seed, calendar=calendar)
        self._save_settings(splits=splits)
        self.task = TaskSpec(f"netcdf:{variable}")
        self.path, self.variable = path, variable
        self.time_range = None if time_start is None and time_end is None else (time_start, time_end)
        self.lat_range, self.lon_range = lat_range, lon_range
        self.val_fraction, self.test_fraction = splits.val_fraction, splits.test_fraction

    @property
    def mask(self) -> torch.Tensor:
        """``(H, W)`` bool, True where the grid has data (sea), False on land."""
        return torch.from_numpy(self.source.mask)

    def _open(self) -> NetCDFReader:
        return NetCDFReader(self.path, self.variable, self.time_range, self.lat_range, self.lon_range)

    def _split(self, source: SequenceSource) -> dict[str, list[Segment]]:
        return split_by_time(source, self.val_fraction, self.test_fraction, gap=self.context + self.target,
                             name=self.path)
