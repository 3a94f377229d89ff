"""Speed of the evaluation metrics on CPU: frames per second through each task's metric set and the rewards.

Rows: throughput of ``TaskMetrics.update`` for storms (128², SEVIR-like) and Navier–Stokes (64²), and of the
per-sample functions the planner calls as rewards. Measured on one thread: on a shared 2-core machine, two intra-op
threads collapse whenever a peer is descheduled, which times the machine's load rather than the code.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from benchmarks.timing import best_seconds
from sfp.metrics import build_task_metrics, csi_m, ssim, tke_spectrum_error
from sfp.task import NAVIER_STOKES, STORMS


def _frames_per_second(step: Callable[[], object], frames: int, repeats: int = 5) -> float:
    """Frames per second of the fastest of ``repeats`` timed calls (after one warm-up), the least noisy estimate."""
    return frames / best_seconds(step, repeats)


def run() -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _rows()
    finally:
        torch.set_num_threads(threads)


def _rows() -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    rows = []

    storms = torch.rand(2, 12, 1, 128, 128, generator=gen) * 255
    storms_pred = (storms + 30 * torch.randn(storms.shape, generator=gen)).clamp(0, 255)
    metrics = build_task_metrics(STORMS, target_len=12)
    rate = _frames_per_second(lambda: metrics.update(storms_pred, storms), storms.shape[0] * storms.shape[1])
    rows.append({"name": "storms metric set update, 128x128 frames", "value": rate, "unit": "frames/s (1 thread)",
                 "note": "MSE/MAE/per-lead, CSI x6, pooled 4/16, FSS, SSIM, PSNR"})

    vorticity = torch.randn(8, 10, 1, 64, 64, generator=gen)
    vorticity_pred = vorticity + 0.1 * torch.randn(vorticity.shape, generator=gen)
    metrics = build_task_metrics(NAVIER_STOKES, target_len=10)
    rate = _frames_per_second(lambda: metrics.update(vorticity_pred, vorticity), 80)
    rows.append({"name": "navier_stokes metric set update, 64x64 frames", "value": rate, "unit": "frames/s (1 thread)"})

    candidates = storms_pred.reshape(24, 1, 1, 128, 128)
    truth = storms.reshape(24, 1, 1, 128, 128)
    thresholds = STORMS.thresholds
    for name, reward in [
        ("reward csi_m per sample", lambda: csi_m(candidates, truth, thresholds, reduction="none")),
        ("reward csi_m pool 4 per sample", lambda: csi_m(candidates, truth, thresholds, pool=4, reduction="none")),
        ("reward ssim per sample", lambda: ssim(candidates, truth, 255.0, reduction="none")),
        ("reward tke error per sample (64x64)",
         lambda: tke_spectrum_error(vorticity_pred.reshape(80, 1, 64, 64), vorticity.reshape(80, 1, 64, 64),
                                    reduction="none")),
    ]:
        frames = 80 if "tke" in name else 24
        rows.append({"name": name, "value": _frames_per_second(reward, frames), "unit": "frames/s (1 thread)"})
    return rows
