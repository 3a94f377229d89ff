"""SpatioTemporal Performer speed: FAVOR+ against exact attention, and one training step of the seed's setup.

Attention: forward + backward of one attention call (batch 1, 8 heads, d_head 64; FAVOR+ with the softmax kernel
and 256 features) at 1k, 4k and 16k tokens. Each case runs in a fresh process so that its peak memory is the growth
of the process's maximum resident set size (``ru_maxrss``) over its resident size before the call: tensors live
in the C allocator, which ``tracemalloc`` does not see. Times are the best of a few repeats (one for the slow exact
16k case); the ratios compare cases of this one run.

Training step: forward + backward + AdamW of the seed's configuration (d_model 128, 4 encoder + 4 decoder layers,
8 heads, d_ff 512, no dropout, exact local / FAVOR+ global attention; 49 variables, context 80, target 4, batch 4).
Its model FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and attention, forward and
backward) and are set against the rate of a 2048^3 float32 matmul timed in the same run.
Everything uses 2 threads; other work on the machine makes the times noisy.
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import sys
import time

import torch

THREADS = 2
TOKENS = (1024, 4096, 16384)
HEADS, DIM_HEAD, FEATURES = 8, 64, 256
SEED_SETUP = dict(d_y_context=49, d_y_target=49, d_x=4, d_model=128, n_heads=8, n_encoder_layers=4,
                  n_decoder_layers=4, d_ff=512)
BATCH, CONTEXT, TARGET = 4, 80, 4


def _log(message: str) -> None:
    print(f"  [performer] {message}", file=sys.stderr, flush=True)


def _resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def _attention_case(kind: str, tokens: int, repeats: int) -> tuple[float, float]:
    """Best seconds and peak MiB of one forward + backward (run in a child process)."""
    from sfp.models.performer.attention import make_attention

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    kernel = make_attention(kind, DIM_HEAD, n_features=FEATURES)
    q, k, v = (torch.randn(1, HEADS, tokens, DIM_HEAD, requires_grad=True) for _ in range(3))
    before = _resident_mb()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        kernel(q, k, v).sum().backward()
        best = min(best, time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return best, max(peak - before, 0.0)


def attention_rows() -> list[dict]:
    rows, seconds = [], {}
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for tokens in TOKENS:
            for kind in ("favor", "exact"):
                repeats = 1 if (kind, tokens) == ("exact", TOKENS[-1]) else 3
                _log(f"{kind} attention, {tokens} tokens ...")
                secs, peak_mb = pool.apply(_attention_case, (kind, tokens, repeats))
                seconds[kind, tokens] = secs
                rows.append({"name": f"attention {kind} {tokens} tokens fwd+bwd", "value": secs, "unit": "s",
                             "note": f"peak +{peak_mb:.0f} MiB RSS"})
            rows.append({"name": f"attention speed-up favor vs exact at {tokens} tokens",
                         "value": seconds["exact", tokens] / seconds["favor", tokens], "unit": "x",
                         "note": "target >= 50x at 16384" if tokens == TOKENS[-1] else ""})
    return rows


def matmul_rate() -> float:
    """FLOP/s of a 2048^3 float32 matrix product (best of 5)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * 2048**3 / best


def training_step_rows() -> list[dict]:
    from torch.utils.flop_counter import FlopCounterMode

    from sfp.models.performer import SpatioTemporalPerformer, attach_feature_redraw

    torch.manual_seed(0)
    model = SpatioTemporalPerformer(**SEED_SETUP)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    attach_feature_redraw(model, optimizer)
    context_x, target_x = torch.randn(BATCH, CONTEXT, 4), torch.randn(BATCH, TARGET, 4)
    context_y, target_y = torch.randn(BATCH, CONTEXT, 49), torch.randn(BATCH, TARGET, 49)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(context_x, context_y, target_x), target_y).backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    step()
    times = []
    for i in range(5):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
        _log(f"training step {i + 1}/5: {times[-1]:.2f} s")
    step_s = statistics.median(times)
    rate = matmul_rate()
    return [
        {"name": "seed setup training step (fwd+bwd+AdamW)", "value": step_s, "unit": "s",
         "note": f"median of 5, best {min(times):.2f} s; target <= 0.6 s on 2 cores"},
        {"name": "seed setup model FLOPs per step", "value": flops / 1e9, "unit": "GFLOP"},
        {"name": "matmul rate (2048^3 float32)", "value": rate / 1e9, "unit": "GFLOP/s"},
        {"name": "seed setup step at full matmul rate", "value": flops / rate, "unit": "s",
         "note": "the floor for this machine"},
        {"name": "seed setup FLOP/s as a fraction of matmul rate", "value": flops / step_s / rate, "unit": "x"},
    ]


def run() -> list[dict]:
    torch.set_num_threads(THREADS)
    return training_step_rows() + attention_rows()
