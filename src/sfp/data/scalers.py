"""Per-channel mean and standard deviation, streamed over chunks, fit on the training split only.

Channels are the first axis of one time step ``*S``: ``C`` of a field ``(C, H, W)``, the variable of a series
``(N,)``. Missing values (NaN, infinities, or a null value) are left out. Chunks are merged with Chan's parallel
form of Welford's update in float64, so no chunk needs to meet another and large data never sits in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sfp.data.windows import Segment, SequenceSource
from sfp.errors import UserError

CHUNK_VALUES = 2**23  # about 32 MiB of float32 per read


class RunningMoments:
    """Count, mean and sum of squared deviations per channel, updated one chunk at a time."""

    def __init__(self) -> None:
        self.count: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, values: np.ndarray | torch.Tensor, channel_axis: int = 0, null_value: float | None = None) -> None:
        """Add a chunk; moments are kept for each index of ``channel_axis`` over all other axes."""
        if isinstance(values, torch.Tensor):
            values = values.detach().cpu().numpy()
        values = np.asarray(values, dtype=np.float64)
        flat = np.moveaxis(values, channel_axis, 0).reshape(values.shape[channel_axis], -1)
        valid = np.isfinite(flat)
        if null_value is not None:
            valid &= flat != null_value
        count = valid.sum(axis=1).astype(np.float64)
        safe = np.maximum(count, 1)
        mean = np.where(valid, flat, 0).sum(axis=1) / safe
        m2 = np.where(valid, (flat - mean[:, None]) ** 2, 0).sum(axis=1)
        if self.count is None:
            self.count, self.mean, self.m2 = count, mean, m2
            return
        if len(count) != len(self.count):
            raise UserError(f"a chunk has {len(count)} channels, earlier ones had {len(self.count)}")
        total = self.count + count
        delta = mean - self.mean
        share = count / np.maximum(total, 1)
        self.mean = self.mean + delta * share
        self.m2 = self.m2 + m2 + delta**2 * self.count * share
        self.count = total

    def std(self) -> np.ndarray:
        """Population standard deviation (ddof = 0) per channel."""
        return np.sqrt(self.m2 / np.maximum(self.count, 1))

    def stats(self, sample_ndim: int) -> dict[str, torch.Tensor]:
        """``{"mean", "std"}`` float32, shaped ``(C, 1, ..., 1)`` to broadcast against one step of ``sample_ndim``
        axes. A channel that never varies gets std 1, so dividing by it is safe."""
        if self.count is None:
            raise UserError("no data to fit normalization statistics on")
        empty = np.flatnonzero(self.count == 0)
        if len(empty):
            raise UserError(f"channel(s) {empty.tolist()} hold no valid value in the training split")
        std = self.std()
        std = np.where(std > 0, std, 1.0)
        shape = (-1,) + (1,) * (sample_ndim - 1)
        return {"mean": torch.tensor(self.mean, dtype=torch.float32).reshape(shape),
                "std": torch.tensor(std, dtype=torch.float32).reshape(shape)}


def fit_moments(source: SequenceSource, segments: Sequence[Segment], null_value: float | None = None,
                chunk_values: int = CHUNK_VALUES) -> RunningMoments:
    """Moments of every step of the given segments (each step once, however windows overlap), read in chunks."""
    moments = RunningMoments()
    steps = max(1, chunk_values // max(1, int(np.prod(source.sample_shape))))
    for seg in segments:
        for start in range(seg.start, seg.stop, steps):
            moments.update(source.read(seg.sequence, start, min(start + steps, seg.stop)), channel_axis=1,
                           null_value=null_value)
    return moments
