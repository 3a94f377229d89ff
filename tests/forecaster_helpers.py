"""Tiny forecasters, a grid backbone, a data module and batches for the Forecaster tests."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from sfp.forecasting import Forecaster
from sfp.models.registry import available, register
from sfp.task import TaskSpec

TINY_BACKBONE = "forecaster-test-conv"


class TimeLinear(Forecaster):
    """One learned linear map over time, shared by every variable (works for series and fields)."""

    def __init__(self, n_vars: int = 2, context_len: int = 6, target_len: int = 3, **options: Any):
        super().__init__(d_y_context=n_vars, d_y_target=n_vars, d_x=1, context_len=context_len,
                         target_len=target_len, **options)
        self.map = nn.Linear(context_len, self.step_len)
        self._save_settings()

    def forward_model_pass(self, context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y: Tensor) -> Tensor:
        return self.map(context_y.transpose(1, -1)).transpose(1, -1)


class Scripted(Forecaster):
    """A fixed rule of the context that records every call, so forecasts have hand-computed values.

    rule "zeros": predicts 0 in model space; "last_plus_one": the last context value + 1 at every step.
    """

    def __init__(self, rule: str = "zeros", n_vars: int = 1, context_len: int = 4, target_len: int = 2,
                 **options: Any):
        super().__init__(d_y_context=n_vars, d_y_target=n_vars, d_x=1, context_len=context_len,
                         target_len=target_len, **options)
        self.rule = rule
        self.dummy = nn.Parameter(torch.zeros(()))  # gives the loss a graph while leaving forecasts fixed
        self.calls: list[tuple[Tensor, ...]] = []

    def forward_model_pass(self, context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y: Tensor) -> Tensor:
        self.calls.append(tuple(t.detach().clone() for t in (context_x, context_y, target_x, target_y)))
        if self.rule == "zeros":
            out = torch.zeros_like(target_y)
        else:
            out = (context_y[:, -1:] + 1).expand_as(target_y)
        return out + 0 * self.dummy


class TinyConv(nn.Module):
    """Frames folded into channels, one 3x3 convolution: ``(B, T_in, C, H, W) -> (B, T_out, C, H, W)``."""

    def __init__(self, in_frames: int, out_frames: int, channels: int):
        super().__init__()
        self.out_frames, self.channels = out_frames, channels
        self.conv = nn.Conv2d(in_frames * channels, out_frames * channels, 3, padding=1)

    def forward(self, frames: Tensor) -> Tensor:
        batch, _, _, height, width = frames.shape
        out = self.conv(frames.reshape(batch, -1, height, width))
        return out.view(batch, self.out_frames, self.channels, height, width)


if TINY_BACKBONE not in available():
    register(TINY_BACKBONE)(TinyConv)


def series_batch(n: int = 4, context: int = 6, target: int = 3, n_vars: int = 2, seed: int = 0) -> list[Tensor]:
    """``(context_x, context_y, target_x, target_y)`` of random series; time features are the step index."""
    generator = torch.Generator().manual_seed(seed)
    steps = torch.arange(context + target, dtype=torch.float32).view(1, -1, 1).expand(n, -1, 1)
    y = 3 + 2 * torch.randn(n, context + target, n_vars, generator=generator)
    return [steps[:, :context], y[:, :context], steps[:, context:], y[:, context:]]


def field_batch(n: int, context: int, target: int, size: int = 16, seed: int = 0) -> list[Tensor]:
    """Batches of storm-like fields on the 0-255 scale ``(n, T, 1, size, size)``."""
    generator = torch.Generator().manual_seed(seed)
    steps = torch.arange(context + target, dtype=torch.float32).view(1, -1, 1).expand(n, -1, 1)
    y = (255 * torch.rand(n, context + target, 1, size, size, generator=generator) ** 3).round()
    return [steps[:, :context], y[:, :context], steps[:, context:], y[:, context:]]


class TinyDataModule(L.LightningDataModule):
    """The data-module contract the Forecaster reads: task, normalization_stats(), null_value, target."""

    def __init__(self, train: list[Tensor], val: list[Tensor], test: list[Tensor], task: TaskSpec,
                 stats: dict[str, Tensor] | None = None, null_value: float | None = None, batch_size: int = 4):
        super().__init__()
        self.splits = {"train": train, "val": val, "test": test}
        self.task, self.null_value, self.batch_size = task, null_value, batch_size
        self.target = train[3].shape[1]
        self._stats = stats

    def normalization_stats(self) -> dict[str, Tensor]:
        return dict(self._stats)

    def _loader(self, split: str) -> DataLoader:
        return DataLoader(TensorDataset(*self.splits[split]), batch_size=self.batch_size)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


def tiny_trainer(**kwargs: Any) -> L.Trainer:
    """A CPU Trainer with no logger, checkpoints or progress bar."""
    options = {"accelerator": "cpu", "devices": 1, "logger": False, "enable_checkpointing": False,
               "enable_progress_bar": False, "enable_model_summary": False, "num_sanity_val_steps": 0}
    return L.Trainer(**{**options, **kwargs})
