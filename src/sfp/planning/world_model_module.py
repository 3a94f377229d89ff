"""Stage 1 of SFP: train the world model on ``(context_x, context_y, target_x, target_y[, mask])`` batches.

Values arrive in ORIGINAL units; the world model's normalization buffers are set in :meth:`setup` from
``trainer.datamodule.normalization_stats()`` (fit on the training split), so the checkpoint carries them. The loss
is the reconstruction error of the true future in normalized units (MSE) plus the commitment loss; missing target
values (NaN, or False in the optional mask) take no part in it.

Logged per step: ``train/loss``, ``train/recon_mse`` (normalized units), ``train/commitment``, ``train/restarts``
(dead codes restarted); per epoch, for train and val: ``{stage}/codebook_usage`` (fraction of codes that were the
nearest code of some latent vector in the epoch, over all processes), ``{stage}/perplexity`` (exp of the entropy
of the epoch's code frequencies) and ``{stage}/dead_codes`` (codes never used in the epoch); per validation epoch,
every metric of the data module's task on the nearest-code decode of the true future (``val/csi_m`` for storms),
so the run's best checkpoint is the one whose codebook reproduces the headline metric best.

``trainer.test`` runs the :mod:`~sfp.planning.diagnostics` on the test data, with the actions of a trained agent
(``agent_checkpoint``; persistence without one): the values are logged as ``test/...``, kept in ``test_results``
(so ``sfp test`` writes them to ``metrics.json``) and written with their settings to
``world_model_report.json`` in ``trainer.default_root_dir``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.forecasting.optim import adamw
from sfp.options import coerce, plain, require, save_plain_hyperparameters
from sfp.planning.diagnostics import Diagnostics
from sfp.planning.options import Imagination, WorldModelArchitecture
from sfp.planning.quantizer import usage_statistics
from sfp.planning.world_model import WorldModel
from sfp.task import TaskSpec

if TYPE_CHECKING:
    from sfp.metrics.epoch import EpochMetrics

Policy = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``(context_x, context_y, target_x) -> forecast`` in original units: the agent whose actions are diagnosed."""


def channel_moments(stats: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std from a data module's statistics; per-pixel ones ``(C, H, W)`` (the ocean's) are
    pooled over the pixels, each pixel weighing alike: the mean of the means, and ``sqrt(mean(std²) +
    var(mean))``."""
    mean, std = stats["mean"], stats["std"]
    if mean.ndim < 3 or mean.shape[-2:].numel() == 1:
        return mean, std
    pooled = mean.mean((-2, -1))
    spread = (std.pow(2) + (mean - pooled[..., None, None]).pow(2)).mean((-2, -1))
    return pooled, spread.sqrt()


class WorldModelModule(L.LightningModule):
    """Trains a :class:`WorldModel` of the given ``architecture``.

    commitment_weight: weight of the commitment loss; leads_per_step: train each step on this many random lead
    times (all when None or >= out_frames), a cheaper unbiased estimate of the full loss; lr, weight_decay: AdamW;
    warmup_steps: linear warm-up, then cosine decay to ``lr / 10`` over the run.

    Test diagnostics: agent_checkpoint: a trained forecaster's checkpoint whose forecasts are the actions (read
    when testing starts, never stored in this module's checkpoint; persistence, the last context frame repeated,
    when None); imagination: how futures are imagined around each action.
    """

    def __init__(
        self,
        architecture: WorldModelArchitecture,
        commitment_weight: float = 0.25,
        leads_per_step: int | None = 4,
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        warmup_steps: int = 20,
        imagination: Imagination = Imagination(),
        agent_checkpoint: str | None = None,
    ) -> None:
        super().__init__()
        require(commitment_weight >= 0 and lr > 0 and weight_decay >= 0 and warmup_steps >= 0,
                "commitment_weight, weight_decay and warmup_steps must be >= 0 and lr > 0")
        require(leads_per_step is None or leads_per_step >= 1, f"leads_per_step must be >= 1 or None, "
                f"got {leads_per_step}")
        self.imagination = coerce(Imagination, imagination)
        self.world_model = WorldModel(architecture)
        save_plain_hyperparameters(self, architecture=self.world_model.architecture, imagination=self.imagination)
        self.commitment_weight, self.leads_per_step = commitment_weight, leads_per_step
        self.lr, self.weight_decay, self.warmup_steps = lr, weight_decay, warmup_steps
        self.agent_checkpoint = agent_checkpoint
        self._epoch_counts: dict[str, Tensor] = {}
        self._val_metrics: EpochMetrics | None = None  # the task's metrics of validation reconstructions
        self._diagnostics: Diagnostics | None = None
        self._policy: Policy | None = None
        self.test_results: dict[str, float] = {}

    @property
    def _datamodule(self) -> object | None:
        return getattr(self.trainer, "datamodule", None) if self._trainer is not None else None

    @property
    def _task(self) -> TaskSpec | None:
        return getattr(self._datamodule, "task", None)

    def setup(self, stage: str) -> None:
        """Take the normalization statistics of the training split from the data module, when there is one, and
        the task whose metrics score the validation reconstructions."""
        datamodule = self._datamodule
        if datamodule is not None and hasattr(datamodule, "normalization_stats"):
            self.world_model.set_normalization(*channel_moments(datamodule.normalization_stats()))
        if self._task is not None and stage in ("fit", "validate"):
            from sfp.metrics.epoch import EpochMetrics

            windows = getattr(datamodule, "heatwave_windows", None)
            self._val_metrics = EpochMetrics(self._task, self.world_model.out_frames, windows)

    def _check_batch(self, batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        if len(batch) not in (4, 5):
            raise UserError(f"a batch is (context_x, context_y, target_x, target_y[, mask]), got {len(batch)} items")
        out_frames, target = self.world_model.out_frames, batch[3]
        if target.ndim != 5 or target.shape[1] != out_frames:
            raise UserError(f"target_y must be (B, {out_frames}, C, H, W) frames, got {tuple(target.shape)}")
        return batch

    def _loss(self, batch: tuple[Tensor, ...], stage: str) -> Tensor:
        batch = self._check_batch(batch)
        context, target = batch[1], batch[3]
        out_frames = self.world_model.out_frames
        valid = torch.isfinite(target) if len(batch) == 4 else torch.isfinite(target) & batch[4].bool()
        lead = torch.arange(out_frames, device=target.device)
        leads = self.leads_per_step
        if stage == "train" and leads is not None and leads < out_frames:
            lead = torch.randperm(out_frames, device=target.device)[:leads].sort().values
            target, valid = target[:, lead], valid[:, lead]
        out = self.world_model(target, context, lead.tolist())
        error = torch.where(valid, (out.reconstruction - target) / self.world_model.std, 0.0)
        count = valid.sum().clamp_min(1)
        recon = error.pow(2).sum() / count
        loss = recon + self.commitment_weight * out.commitment
        counts = torch.bincount(out.indices.flatten(), minlength=self.world_model.codebook_size)
        self._epoch_counts[stage] = self._epoch_counts.get(stage, 0) + counts
        on_step = stage == "train"
        losses = {f"{stage}/loss": loss, f"{stage}/recon_mse": recon, f"{stage}/commitment": out.commitment}
        self.log_dict(losses, on_step=on_step, on_epoch=True, prog_bar=on_step, batch_size=target.shape[0],
                      sync_dist=not on_step)
        if on_step:
            self.log("train/restarts", out.restarts.float(), on_step=True, on_epoch=False, batch_size=target.shape[0])
        elif self._val_metrics is not None:
            truth = torch.where(valid, target, math.nan)
            self._val_metrics.update(recon.detach(), out.reconstruction.detach(), truth, batch)
        return loss

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return self._loss(batch, "train")

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return self._loss(batch, "val")

    def _log_usage(self, stage: str) -> None:
        counts = self._epoch_counts.pop(stage, None)
        if counts is None:
            return
        counts = self.trainer.strategy.reduce(counts.double(), reduce_op="sum")
        stats = usage_statistics(counts)
        self.log_dict({f"{stage}/{name}": value.float() for name, value in stats.items()}, prog_bar=stage == "train")

    def on_train_epoch_end(self) -> None:
        self._log_usage("train")

    def on_validation_epoch_end(self) -> None:
        self._log_usage("val")
        values = self._val_metrics.compute_and_reset() if self._val_metrics is not None else {}
        self.log_dict({f"val/{name}": value for name, value in values.items() if name != "loss"})

    # ----- test: diagnostics with the agent's actions -----

    def _load_policy(self) -> Policy:
        """The agent's forecast, or persistence when no agent is given."""
        from sfp.forecasting.checkpoints import load_forecaster
        from sfp.models.baselines import persistence

        path, out_frames = self.agent_checkpoint, self.world_model.out_frames
        if path is None:
            return lambda context_x, context_y, target_x: persistence(context_y, out_frames)
        return load_forecaster(path).to(self.device).requires_grad_(False).forecast

    def on_test_start(self) -> None:
        from sfp.planning.rewards import reward_for_task

        task = self._task or TaskSpec("generic")
        self._policy = self._load_policy()
        self._diagnostics = Diagnostics(self.world_model, task, reward_for_task(task), self.imagination,
                                        seed=self.global_rank)

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        context_x, context, target_x, target = self._check_batch(batch)[:4]
        windows = getattr(self._datamodule, "heatwave_windows", None)
        self._diagnostics.update(context, target, self._policy(context_x, context, target_x),
                                 None if windows is None else windows(batch))

    def on_test_epoch_end(self) -> None:
        """Diagnostics over all processes: logged, kept in ``test_results`` and written to the run's report."""
        results = self._diagnostics.compute(lambda state: self.trainer.strategy.reduce(state, reduce_op="sum"))
        self.test_results = results
        self.log_dict({f"test/{name}": value for name, value in results.items()})
        if self.trainer.is_global_zero:
            self._write_report(results)

    def _write_report(self, results: dict[str, float]) -> None:
        imagination, task = self._diagnostics.imagination, self._diagnostics.task
        report = {"dataset": task.name, "agent": self.agent_checkpoint or "persistence",
                  "reward": getattr(self._diagnostics.reward, "name", None), "imagination": plain(imagination),
                  "diagnostics": results}
        out = Path(self.trainer.default_root_dir) / "world_model_report.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, allow_nan=True))

    def configure_optimizers(self):
        optimizer = adamw(self.parameters(), self.lr, self.weight_decay)
        total = self.trainer.estimated_stepping_batches if self._trainer is not None else math.inf
        warmup = self.warmup_steps

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if not math.isfinite(total) or total <= warmup:
                return 1.0
            progress = min(1.0, (step - warmup) / (total - warmup))
            return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def load_world_model(path: str | Path) -> WorldModel:
    """The trained world model of a :class:`WorldModelModule` checkpoint, frozen and in eval mode; any other file
    (a forecaster's checkpoint, a broken one) is one line."""
    from sfp.training import read_checkpoint

    if not any(key.startswith("world_model.") for key in read_checkpoint(path)["state_dict"]):
        raise UserError(f"{path}: not a world-model checkpoint (no world_model weights): give the checkpoint of a "
                        "world_model stage or of `sfp fit --model sfp.planning.WorldModelModule`")
    try:
        module = WorldModelModule.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except (TypeError, KeyError, RuntimeError) as err:
        raise UserError(f"{path}: a world-model checkpoint that does not load ({str(err).splitlines()[0]})") from err
    return module.world_model.eval().requires_grad_(False)
