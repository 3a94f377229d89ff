"""A DataLoader whose data order survives a killed run.

The order of epoch ``e`` (Lightning sets it through ``set_epoch`` on the loader's sampler) is a permutation drawn
from ``seed + e``; the loader counts the batches it has handed out and Lightning stores that position in every
checkpoint (``state_dict``/``load_state_dict``), so a resumed run skips exactly the batches already trained on and
sees the same order as an uninterrupted one. Sharding across DDP processes is done here (every rank takes every
``world``-th index of the same permutation), so the Trainer must not inject its own sampler
(``use_distributed_sampler=False``, set by ``sfp fit``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochSampler(Sampler[int]):
    """One seeded permutation per epoch, sharded across processes; can start part-way into an epoch."""

    def __init__(self, size: int, shuffle: bool = True, seed: int = 0):
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def shard(self) -> list[int]:
        """This epoch's indices for this process."""
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.size)
        rank, world = _rank_and_world()
        if world > 1:
            order = torch.cat([order, order[: (-self.size) % world]])
        return order[rank::world].tolist()

    def __iter__(self) -> Iterator[int]:
        skip, self.skip = self.skip, 0
        yield from self.shard()[skip:]

    def __len__(self) -> int:
        return -(-self.size // _rank_and_world()[1])


class ResumableLoader(DataLoader):
    """DataLoader over an :class:`EpochSampler` that Lightning checkpoints and restores."""

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, **kwargs: Any):
        sampler = EpochSampler(len(dataset), shuffle, seed)  # type: ignore[arg-type]
        super().__init__(dataset, batch_sampler=BatchSampler(sampler, batch_size, drop_last), **kwargs)
        self.position = 0

    @property
    def epoch_sampler(self) -> EpochSampler:
        return self.batch_sampler.sampler  # type: ignore[union-attr]

    def __iter__(self) -> Iterator[Any]:
        self.position = self.epoch_sampler.skip // self.batch_sampler.batch_size  # type: ignore[union-attr]
        for batch in super().__iter__():
            self.position += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """Epoch and the number of batches handed out so far in it."""
        return {"epoch": self.epoch_sampler.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a saved position: the next iteration skips the batches already handed out."""
        finished = state["position"] >= len(self)
        self.epoch_sampler.epoch = state["epoch"] + finished
        self.epoch_sampler.skip = 0 if finished else state["position"] * self.batch_sampler.batch_size  # type: ignore[union-attr]
