"""Per-epoch accumulation of a stage's loss and task metrics, kept outside the module tree."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import MeanMetric

from sfp.metrics.task_metrics import Windows, build_task_metrics
from sfp.task import TaskSpec


class EpochMetrics:
    """The mean loss and the task metrics of one stage, accumulated on the device over an epoch.

    Kept outside the module tree so metric buffers never enter checkpoints; moved to the data's device on use.
    ``windows``: the data module's ``heatwave_windows`` (a task with heatwaves).
    """

    def __init__(self, task: TaskSpec, target_len: int | None, windows: Windows | None = None):
        self.loss = MeanMetric()
        self.task = build_task_metrics(task, target_len, windows)
        self.device: torch.device | None = None
        self.updated = False

    def update(self, loss: Tensor, preds: Tensor, target: Tensor, batch: tuple[Tensor, ...] | None = None) -> None:
        if self.device != preds.device:
            self.loss.to(preds.device)
            self.task.to(preds.device)
            self.device = preds.device
        self.loss.update(loss)
        self.task.update(preds, target, batch)
        self.updated = True

    def compute_and_reset(self) -> dict[str, Tensor]:
        """Epoch values (synchronized across processes by torchmetrics); empty when nothing was accumulated."""
        if not self.updated:
            return {}
        values = {"loss": self.loss.compute(), **self.task.compute()}
        self.loss.reset()
        self.task.reset()
        self.updated = False
        return values
