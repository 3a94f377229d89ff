"""What a window's marine heatwave scores need beyond the forecast and the truth: its context days and the
climatology (``seas``, ``thresh``) on every day of the window, context and forecast.

A window is placed in its year by its first time feature, the step's position in its sequence ``step / (frames
- 1)`` (:func:`sfp.data.windows.time_features`): the sequences of the ``ocean`` dataset are years.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from sfp.metrics.heatwave_scores import Window
from sfp.metrics.heatwaves import Climatology, climatology, synthetic_days


class HeatwaveWindows:
    """Maps a batch ``(context_x, context_y, target_x, ...)`` of windows of ``frames``-day years to its
    :data:`Window`, from the climatology ``clim`` (days of the year 1-366, 365-day years)."""

    def __init__(self, clim: Climatology, frames: int) -> None:
        rows = synthetic_days(frames) - 1
        self.frames = frames
        self._days = {"seas": torch.from_numpy(clim.seas[rows]), "thresh": torch.from_numpy(clim.thresh[rows])}
        self._on: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def days(self, batch: tuple[Tensor, ...]) -> Tensor:
        """The day index within its year of every step of every window: ``(B, Tc + T)``."""
        position = torch.cat([batch[0][..., 0], batch[2][..., 0]], dim=1)
        return torch.round(position * (self.frames - 1)).long().clamp(0, self.frames - 1)

    def __call__(self, batch: tuple[Tensor, ...]) -> Window:
        context = batch[1]
        if context.device not in self._on:
            self._on[context.device] = tuple(self._days[k].to(context.device) for k in ("seas", "thresh"))
        seas, thresh = self._on[context.device]
        days = self.days(batch).to(context.device)
        return Window(context, seas[days].to(context.dtype), thresh[days].to(context.dtype), batch[3])


def training_climatology(years: np.ndarray, sst: np.ndarray) -> Climatology:
    """The heatwave climatology of the training years: ``sst (years, frames, *S)`` of 365-day years numbered
    ``years`` (their index in the whole series, so that only truly adjacent years lend each other days)."""
    frames = sst.shape[1]
    return climatology(sst.reshape(-1, *sst.shape[2:]), np.repeat(years, frames),
                       np.tile(synthetic_days(frames), len(years)))
