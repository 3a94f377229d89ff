"""Cost of the Forecaster around a backbone, measured as ratios within one run.

A training step (forward, loss, backward, AdamW) of the bare SimVP backbone on a storms-sized batch (4 sequences,
10 -> 10 frames of 1x64x64) is compared with the same step through ``GridForecaster`` — plain, and with every
option on (NaN/null masks, RevIN, decomposition, linear head) — and with the per-batch update of the storms
evaluation metrics (CSI at 6 thresholds, pooled CSI, FSS, SSIM, PSNR, per-lead MSE). Steps are interleaved and
the median of the repeats is reported, since other processes share the machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from sfp.forecasting import GridForecaster
from sfp.metrics.task_metrics import build_task_metrics
from sfp.task import STORMS

BATCH, FRAMES, SIZE, REPEATS = 4, 10, 64, 3


def _batch() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    y = 255 * torch.rand(BATCH, 2 * FRAMES, 1, SIZE, SIZE, generator=generator) ** 3
    y[:, :, :, :4, :4] = float("nan")  # a missing corner, as in real radar data
    x = torch.arange(2 * FRAMES, dtype=torch.float32).view(1, -1, 1).expand(BATCH, -1, -1)
    return [x[:, :FRAMES], y[:, :FRAMES], x[:, FRAMES:], y[:, FRAMES:]]


def _forecaster_step(model: GridForecaster, batch: list[torch.Tensor]) -> Callable[[], None]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        optimizer.zero_grad()
        model.training_step(batch, 0).backward()
        optimizer.step()

    return step


def _bare_step(model: GridForecaster, batch: list[torch.Tensor]) -> Callable[[], None]:
    backbone = model.backbone
    optimizer = torch.optim.AdamW(backbone.parameters(), lr=1e-4)
    inputs, target = torch.nan_to_num(batch[1] / 255), torch.nan_to_num(batch[3] / 255)

    def step() -> None:
        optimizer.zero_grad()
        F.mse_loss(backbone(inputs), target).backward()
        optimizer.step()

    return step


def _metrics_update(batch: list[torch.Tensor]) -> Callable[[], None]:
    metrics = build_task_metrics(STORMS, FRAMES)
    prediction = torch.nan_to_num(batch[3]).flip(-1)
    return lambda: metrics.update(prediction, batch[3])


def run() -> list[dict]:
    torch.manual_seed(0)
    batch = _batch()
    options = {"backbone": "simvp", "context_len": FRAMES, "target_len": FRAMES, "backbone_kwargs": {"seed": 0}}
    plain = GridForecaster(**options)
    full = GridForecaster(**options, normalization={"revin": True, "seasonal_decomp": True, "decomp_kernel_size": 5},
                          linear_head={"window": 4})
    steps = {"bare": _bare_step(GridForecaster(**options), batch), "plain": _forecaster_step(plain, batch),
             "full": _forecaster_step(full, batch), "metrics": _metrics_update(batch)}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for repeat in range(REPEATS + 1):  # the first round warms up
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if repeat:
                times[name].append(time.perf_counter() - start)
        print(f"  round {repeat}/{REPEATS}", flush=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    shape = f"batch {BATCH}, {FRAMES}->{FRAMES} frames, 1x{SIZE}x{SIZE}, median of {REPEATS}"
    return [
        {"name": "simvp bare training step", "value": median["bare"], "unit": "s", "note": shape},
        {"name": "GridForecaster training step (plain)", "value": median["plain"], "unit": "s"},
        {"name": "GridForecaster training step (masks+RevIN+decomp+linear)", "value": median["full"], "unit": "s"},
        {"name": "storms metrics update per batch", "value": median["metrics"], "unit": "s"},
        {"name": "plain forecaster / bare step", "value": median["plain"] / median["bare"], "unit": "x"},
        {"name": "full forecaster / bare step", "value": median["full"] / median["bare"], "unit": "x"},
        {"name": "metrics update / bare step", "value": median["metrics"] / median["bare"], "unit": "x"},
    ]
