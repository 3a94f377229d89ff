"""World model speed and the stage-1 target: train the default storms world model in <= 5 minutes, usage >= 50%.

Rows: the quantizer step against vector-quantize-pytorch's ``VectorQuantize`` (the reason we use our own), training
steps/s at the default storms size with and without lead-time subsampling, imagination throughput, then one full
training run on the default storms data (204 training windows of 10 -> 10 frames at 64x64) with its wall time,
codebook usage and the held-out diagnostics (persistence as the agent, the storms task's reward).
Set ``SFP_BENCH_WM_EPOCHS`` to shorten the training run. Timings are single-threaded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import lightning as L
import torch

from sfp.planning import Imagination, VectorQuantizer, WorldModel, WorldModelModule, diagnose

BATCH, FRAMES, SIZE = 16, 10, 64
EPOCHS = int(os.environ.get("SFP_BENCH_WM_EPOCHS", "20"))


def _seconds(step: Callable[[], object], repeats: int) -> float:
    """Mean seconds of ``step`` over ``repeats`` calls after one warm-up call."""
    step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def _quantizer_rows() -> list[dict]:
    from vector_quantize_pytorch import VectorQuantize

    torch.manual_seed(0)
    vectors = torch.randn(1, BATCH * FRAMES * (SIZE // 4) ** 2, 32, requires_grad=True)
    ours = VectorQuantizer(256, 32)
    theirs = VectorQuantize(dim=32, codebook_size=256, decay=0.9, kmeans_init=True, threshold_ema_dead_code=1,
                            commitment_weight=0.25, rotation_trick=False)

    def step_ours():
        out = ours(vectors)
        (out.quantized.sum() + out.commitment).backward()

    def step_theirs():
        quantized, _, loss = theirs(vectors)
        (quantized.sum() + loss.sum()).backward()

    mine, lib = _seconds(step_ours, 5), _seconds(step_theirs, 5)
    note = f"{vectors.shape[1]} vectors of 32, 256 codes, forward+backward+EMA"
    return [
        {"name": "quantizer step, sfp VectorQuantizer", "value": mine * 1e3, "unit": "ms", "note": note},
        {"name": "quantizer step, vector_quantize_pytorch", "value": lib * 1e3, "unit": "ms", "note": note},
        {"name": "quantizer speed-up over vector_quantize_pytorch", "value": lib / mine, "unit": "x"},
    ]


def _step_rows() -> list[dict]:
    torch.manual_seed(0)
    context = torch.rand(BATCH, FRAMES, 1, SIZE, SIZE) * 255
    target = torch.rand(BATCH, FRAMES, 1, SIZE, SIZE) * 255
    rows = []
    for leads in (4, FRAMES):
        model = WorldModel({"in_frames": FRAMES, "out_frames": FRAMES}, mean=15.0, std=35.0)
        optimizer = torch.optim.AdamW(model.parameters())

        def step(model=model, optimizer=optimizer, leads=leads):
            lead = torch.randperm(FRAMES)[:leads].sort().values
            out = model(target[:, lead], context, lead.tolist())
            loss = ((out.reconstruction - target[:, lead]) / 35.0).pow(2).mean() + 0.25 * out.commitment
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        rows.append({"name": f"training steps/s, {leads} of {FRAMES} lead times per step",
                     "value": 1 / _seconds(step, 3),
                     "unit": "steps/s", "note": f"batch {BATCH}, {SIZE}x{SIZE}, default architecture"})
    model = WorldModel({"in_frames": FRAMES, "out_frames": FRAMES}).eval()
    with torch.no_grad():
        seconds = _seconds(lambda: model.imagine(context[:4], target[:4], Imagination(samples=16)), 2)
    rows.append({"name": "imagine throughput", "value": 4 * 16 * FRAMES / seconds, "unit": "frames/s",
                 "note": "B=4, n=16 futures of 10 frames"})
    return rows


def _persistence(batch) -> torch.Tensor:
    """The agent for the diagnostics: the last context frame repeated."""
    return batch[1][:, -1:].expand_as(batch[3])


def _training_rows() -> list[dict]:
    from sfp.data.datamodules import FieldDataModule
    from sfp.planning.rewards import reward_for_task

    data = FieldDataModule("storms", loading={"batch_size": BATCH}, seed=0)
    data.prepare_data()
    L.seed_everything(0, verbose=False)
    module = WorldModelModule({"in_frames": FRAMES, "out_frames": FRAMES})
    trainer = L.Trainer(max_epochs=EPOCHS, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    seconds = time.perf_counter() - start
    logged = trainer.logged_metrics
    result = diagnose(module.world_model, data.val_dataloader(), _persistence, data.task,
                      reward_for_task(data.task), module.imagination)
    rows = [
        {"name": "storms world model training time", "value": seconds, "unit": "s",
         "note": f"{EPOCHS} epochs, {len(data.datasets['train'])} windows; target <= 300 s"},
        {"name": "storms world model train codebook usage (last epoch)", "value": float(logged["train/codebook_usage"]),
         "unit": "fraction", "note": "target >= 0.5"},
        {"name": "storms world model val codebook usage", "value": float(logged["val/codebook_usage"]),
         "unit": "fraction"},
        {"name": "storms world model val perplexity", "value": float(logged["val/perplexity"]), "unit": "codes"},
    ]
    units = {"recon_mse": "(VIL/255)^2", "recon_csi_m": "CSI", "candidate_spread": "(VIL/255)^2",
             "oracle_win_rate": "fraction", "oracle_gain": "reward"}
    imagination = module.imagination
    settings = f"n={imagination.samples}, k={imagination.candidates}, temperature {imagination.temperature:g}"
    rows += [{"name": f"diagnostics {name} (val, persistence agent, {settings})", "value": result[name], "unit": unit}
             for name, unit in units.items()]
    return rows


def run() -> list[dict]:
    torch.set_num_threads(1)
    return _quantizer_rows() + _step_rows() + _training_rows()
