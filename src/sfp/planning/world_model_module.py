"""Stage 1 of SFP: train the world model on ``(context_x, context_y, target_x, target_y[, mask])`` batches.

Values arrive in ORIGINAL units; the world model's normalization buffers are set in :meth:`setup` from
``trainer.datamodule.normalization_stats()`` (fit on the training split), so the checkpoint carries them. The loss
is the reconstruction error of the true future in normalized units (MSE, optionally + L1) plus the commitment
loss; missing target values (NaN, or False in the optional mask) take no part in it.

Logged per step: ``train/loss``, ``train/recon_mse`` (normalized units), ``train/commitment``, ``train/restarts``
(dead codes restarted); per epoch, for train and val: ``{stage}/codebook_usage`` (fraction of codes that were the
nearest code of some latent vector in the epoch, over all processes), ``{stage}/perplexity`` (exp of the entropy
of the epoch's code frequencies) and ``{stage}/dead_codes`` (codes never used in the epoch).
"""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.planning.world_model import WorldModel


def usage_statistics(counts: Tensor) -> dict[str, Tensor]:
    """Usage fraction, perplexity and dead-code count from per-code assignment counts ``(K,)``."""
    total = counts.sum().clamp_min(1)
    probabilities = counts / total
    entropy = -(probabilities * probabilities.clamp_min(1e-30).log()).sum()
    used = (counts > 0).sum()
    return {
        "codebook_usage": used / counts.numel(),
        "perplexity": entropy.exp(),
        "dead_codes": (counts.numel() - used).to(counts.dtype),
    }


class WorldModelModule(L.LightningModule):
    """Trains a :class:`WorldModel`; its arguments are plain values so a YAML config can set them.

    Architecture arguments are those of :class:`WorldModel`. commitment_weight: weight of the commitment loss;
    l1_weight: weight of an extra L1 reconstruction term; leads_per_step: train each step on this many random
    lead times (all when None or >= out_frames), a cheaper unbiased estimate of the full loss; lr, weight_decay:
    AdamW; warmup_steps: linear warm-up, then cosine decay to ``lr / 10`` over the run.
    """

    def __init__(
        self,
        in_frames: int,
        out_frames: int,
        channels: int = 1,
        width: int = 64,
        encoder_blocks: int = 1,
        decoder_blocks: int = 2,
        downsample: int = 4,
        code_dim: int = 32,
        codebook_size: int = 256,
        decay: float = 0.9,
        dead_code_threshold: float = 1.0,
        commitment_weight: float = 0.25,
        l1_weight: float = 0.0,
        leads_per_step: int | None = 4,
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        warmup_steps: int = 20,
    ) -> None:
        super().__init__()
        if commitment_weight < 0 or l1_weight < 0 or lr <= 0 or weight_decay < 0 or warmup_steps < 0:
            raise UserError("commitment_weight, l1_weight, weight_decay and warmup_steps must be >= 0 and lr > 0")
        if leads_per_step is not None and leads_per_step < 1:
            raise UserError(f"leads_per_step must be >= 1 or None, got {leads_per_step}")
        self.save_hyperparameters()
        self.world_model = WorldModel(
            in_frames, out_frames, channels, width=width, encoder_blocks=encoder_blocks,
            decoder_blocks=decoder_blocks, downsample=downsample, code_dim=code_dim, codebook_size=codebook_size,
            decay=decay, dead_code_threshold=dead_code_threshold,
        )
        self._epoch_counts: dict[str, Tensor] = {}

    def setup(self, stage: str) -> None:
        """Take the normalization statistics of the training split from the data module, when there is one."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None and hasattr(datamodule, "normalization_stats"):
            stats = datamodule.normalization_stats()
            self.world_model.set_normalization(stats["mean"], stats["std"])

    def _loss(self, batch: tuple[Tensor, ...], stage: str) -> Tensor:
        if len(batch) not in (4, 5):
            raise UserError(f"a batch is (context_x, context_y, target_x, target_y[, mask]), got {len(batch)} items")
        context, target = batch[1], batch[3]
        out_frames = self.world_model.out_frames
        if target.ndim != 5 or target.shape[1] != out_frames:
            raise UserError(f"target_y must be (B, {out_frames}, C, H, W) frames, got {tuple(target.shape)}")
        valid = torch.isfinite(target) if len(batch) == 4 else torch.isfinite(target) & batch[4].bool()
        lead = torch.arange(out_frames, device=target.device)
        leads = self.hparams.leads_per_step
        if stage == "train" and leads is not None and leads < out_frames:
            lead = torch.randperm(out_frames, device=target.device)[:leads].sort().values
            target, valid = target[:, lead], valid[:, lead]
        out = self.world_model(target, context, lead.tolist())
        error = torch.where(valid, (out.reconstruction - target) / self.world_model.std, 0.0)
        count = valid.sum().clamp_min(1)
        recon = error.pow(2).sum() / count
        loss = recon + self.hparams.commitment_weight * out.commitment
        if self.hparams.l1_weight:
            loss = loss + self.hparams.l1_weight * error.abs().sum() / count
        counts = torch.bincount(out.indices.flatten(), minlength=self.world_model.codebook_size)
        self._epoch_counts[stage] = self._epoch_counts.get(stage, 0) + counts
        on_step = stage == "train"
        losses = {f"{stage}/loss": loss, f"{stage}/recon_mse": recon, f"{stage}/commitment": out.commitment}
        self.log_dict(losses, on_step=on_step, on_epoch=True, prog_bar=on_step, batch_size=target.shape[0],
                      sync_dist=not on_step)
        if on_step:
            self.log("train/restarts", out.restarts.float(), on_step=True, on_epoch=False, batch_size=target.shape[0])
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

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        total = self.trainer.estimated_stepping_batches if self._trainer is not None else math.inf
        warmup = self.hparams.warmup_steps

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if not math.isfinite(total) or total <= warmup:
                return 1.0
            progress = min(1.0, (step - warmup) / (total - warmup))
            return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
