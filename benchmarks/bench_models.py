"""Training speed of every grid backbone at its default size, and the cost of the nowcasting baselines.

A step is forward + MSE + backward + AdamW on a batch of 8 storms-sized samples (10 frames in, 10 out, 1x64x64).
A matrix-multiply rate measured in the same run says how fast this machine was at the time, so step rates can be
compared across machines (and across runs on a shared, noisy one).
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from sfp.models import available, build
from sfp.models.baselines import optical_flow_forecast, persistence

BATCH, FRAMES, CHANNELS, SIZE = 8, 10, 1, 64
WARMUP, STEPS = 2, 5


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shape = (BATCH, FRAMES, CHANNELS, SIZE, SIZE)
    return torch.rand(shape, generator=generator), torch.rand(shape, generator=generator)


def _median_seconds(step, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _matmul_gflops() -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    return 2 * 1024**3 / _median_seconds(lambda: a @ b, 10) / 1e9


def _train_steps_per_second(name: str) -> tuple[float, int]:
    model = build(name, in_frames=FRAMES, out_frames=FRAMES, channels=CHANNELS, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = _batch()

    def step() -> None:
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    _median_seconds(step, WARMUP)
    return 1.0 / _median_seconds(step, STEPS), sum(p.numel() for p in model.parameters())


def run() -> list[dict]:
    threads = torch.get_num_threads()
    rows = [{"name": "matmul 1024 (machine speed now)", "value": _matmul_gflops(), "unit": "GFLOP/s",
             "note": f"{threads} threads"}]
    for name in available():
        print(f"  timing {name} ...", flush=True)
        rate, params = _train_steps_per_second(name)
        rows.append({
            "name": f"{name} train step, B=8 10->10 1x64x64", "value": rate, "unit": "steps/s",
            "note": f"{params / 1e6:.2f}M params, {threads} threads",
        })

    context, _ = _batch()
    rows.append({
        "name": "persistence forecast, B=8 10->10 1x64x64", "value": 1.0 / _median_seconds(
            lambda: persistence(context, FRAMES), 5), "unit": "batches/s",
    })
    optical_flow_forecast(context[:1], FRAMES)  # first call imports pysteps
    seconds = _median_seconds(lambda: optical_flow_forecast(context, FRAMES), 3)
    rows.append({
        "name": "optical flow forecast (proesmans), 10->10 1x64x64", "value": BATCH / seconds,
        "unit": "samples/s", "note": "pysteps, one sample and channel at a time",
    })
    return rows
