"""Collect forecasts during ``trainer.predict`` and write them (.npz or NetCDF) with a GIF for field data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from sfp.errors import UserError
from sfp.report.gif import GIF_SAMPLES, animate

ENSEMBLE_AXES = {"members": ("member",), "exceedance": ("threshold",)}  # axes after "sample" (NetCDF dims)


def save_forecasts(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write context, truth and forecast arrays (first axis: sample; ensemble arrays then member or threshold)
    to .npz or NetCDF (.nc)."""
    if path.suffix == ".npz":
        np.savez_compressed(path, **arrays)
    elif path.suffix == ".nc":
        import xarray as xr

        def dims(name: str, array: np.ndarray) -> tuple[str, ...]:
            time = "time_context" if name == "context" else "time_target"
            extra = ENSEMBLE_AXES.get(name, ())
            return ("sample", *extra, time, *(f"dim_{i}" for i in range(array.ndim - 2 - len(extra))))

        xr.Dataset({k: (dims(k, v), v) for k, v in arrays.items()}).to_netcdf(path, engine="h5netcdf")
    else:
        raise UserError(f"{path}: forecasts are written to .npz or .nc files")
    return path


class PredictionWriter(BasePredictionWriter):
    """Gathers (context, truth, forecast) per batch; writes them once prediction ends."""

    def __init__(self, output: str | Path, gif_samples: int = GIF_SAMPLES):
        super().__init__(write_interval="batch")
        self.output, self.gif_samples = Path(output), gif_samples
        if self.output.suffix not in (".npz", ".nc"):
            raise UserError(f"{self.output}: forecasts are written to .npz or .nc files")
        self.parts: dict[str, list[np.ndarray]] = {"context": [], "truth": [], "forecast": []}

    def write_on_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: Any,
                           batch_indices: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        for key, value in (("context", batch[1]), ("truth", batch[3]), ("forecast", prediction)):
            self.parts[key].append(torch.as_tensor(value).detach().float().cpu().numpy())

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        arrays = {k: np.concatenate(v) for k, v in self.parts.items() if v}
        path = self.output
        if trainer.world_size > 1:
            path = path.with_name(f"{path.stem}.rank{trainer.global_rank}{path.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        save_forecasts(path, arrays)
        print(f"wrote {path}: forecast {arrays['forecast'].shape}")
        if arrays["forecast"].ndim == 5 and trainer.is_global_zero:
            n = min(self.gif_samples, len(arrays["forecast"]))
            gif = animate(path.with_suffix(".gif"), arrays["context"][:n, :, 0],
                          {"truth": arrays["truth"][:n, :, 0], "forecast": arrays["forecast"][:n, :, 0]})
            print(f"wrote {gif}")
