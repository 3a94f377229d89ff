"""Tiny world models, frames and a data module shared by the world-model tests (small, so the tests stay fast)."""

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from sfp.planning import WorldModel

TINY = dict(width=8, encoder_blocks=1, decoder_blocks=1, code_dim=4, codebook_size=16)


def tiny_world_model(seed: int = 0, mean: float = 0.0, std: float = 1.0, **overrides) -> WorldModel:
    """A 3 -> 2 frame, one-channel world model with 8 channels and 16 codes of size 4."""
    torch.manual_seed(seed)
    return WorldModel({"in_frames": 3, "out_frames": 2, "channels": 1, **TINY, **overrides}, mean, std)


def random_frames(batch: int, frames: int, size: tuple[int, int] = (8, 8), seed: int = 0) -> torch.Tensor:
    """Random frames ``(batch, frames, 1, H, W)`` on a 0-255 scale."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, 1, *size, generator=generator) * 255


class FramesDataModule(L.LightningDataModule):
    """``(context_x, context_y, target_x, target_y)`` batches of random 3 -> 2 frame sequences, with fixed stats."""

    def __init__(self, sequences: int = 16, batch_size: int = 4, mean: float = 127.0, std: float = 74.0) -> None:
        super().__init__()
        frames = random_frames(sequences, 5)
        times = torch.zeros(sequences, 5, 1)
        self.dataset = TensorDataset(times[:, :3], frames[:, :3], times[:, 3:], frames[:, 3:])
        self.batch_size = batch_size
        self.stats = {"mean": torch.full((1, 1, 1), mean), "std": torch.full((1, 1, 1), std)}

    def normalization_stats(self) -> dict[str, torch.Tensor]:
        return self.stats

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch_size)
