"""``sfp predict --ensemble K``: besides the forecast, K members imagined around it by a trained world model and
the exceedance probability of each of the task's thresholds (arrays ``members`` and ``exceedance``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from sfp.data.memory import require_memory
from sfp.errors import UserError
from sfp.metrics.ensemble import exceedance
from sfp.planning.ensemble import calibration, imagine_members
from sfp.planning.options import Imagination
from sfp.report.gif import GIF_SAMPLES
from sfp.report.predictions import PredictionWriter


class EnsemblePredictionWriter(PredictionWriter):
    """A :class:`PredictionWriter` that also imagines ``members`` futures per window with the world model of
    ``world_model_checkpoint`` (a WorldModelModule checkpoint), with the settings calibrated for the data's task
    (:func:`sfp.planning.ensemble.calibration`)."""

    def __init__(self, output: str | Path, members: int, world_model_checkpoint: str | None,
                 gif_samples: int = GIF_SAMPLES, seed: int = 0) -> None:
        super().__init__(output, gif_samples)
        if world_model_checkpoint is None or not Path(world_model_checkpoint).is_file():
            raise UserError(f"--ensemble needs --world_model_checkpoint PATH of a trained world model, got "
                            f"{world_model_checkpoint!r}")
        from sfp.planning.world_model_module import load_world_model

        self.world_model = load_world_model(world_model_checkpoint)
        self.members, self.generator, self.seed = members, None, seed
        self.parts.update(members=[], exceedance=[])

    def write_on_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: Any,
                           batch_indices: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        super().write_on_batch_end(trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx)
        forecast = torch.as_tensor(prediction).detach()
        model = self.world_model.to(forecast.device)
        if self.generator is None:  # the first batch: the members of every window must fit in memory
            windows = len(forecast) * sum(trainer.num_predict_batches)
            require_memory(4 * (windows + 2 * len(forecast)) * self.members * forecast[0].numel(),
                           f"--ensemble {self.members} ({windows} windows of {tuple(forecast.shape[1:])} values)")
            self.generator = torch.Generator(forecast.device).manual_seed(self.seed + trainer.global_rank)
        task = getattr(trainer.datamodule, "task", None)
        chosen = calibration(getattr(task, "name", None))
        imagination = Imagination(self.members, chosen.candidates, chosen.temperature)
        with torch.no_grad():
            members = imagine_members(model, batch[1], forecast, imagination, self.generator, chosen.centring,
                                      getattr(task, "bounds", (None, None)), chosen.spread, chosen.wet)
        self.parts["members"].append(members.float().cpu().numpy())
        thresholds = getattr(task, "thresholds", ())
        if thresholds:
            self.parts["exceedance"].append(exceedance(members, thresholds).float().cpu().numpy())

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_predict_end(trainer, pl_module)
        print(f"members {np.shape(self.parts['members'][0])[1]} per window")
