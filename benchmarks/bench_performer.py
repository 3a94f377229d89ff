"""SpatioTemporal Performer speed: FAVOR+ against exact attention, and one training step of the seed's setup.

Every case runs in a fresh process (2 threads), so that its peak memory is the growth of the process's maximum
resident set size (``ru_maxrss``) over its resident size before the work (inputs, activations and gradients
included): tensors live in the C allocator, which ``tracemalloc`` does not see.

Allocator: glibc returns every freed block above its mmap threshold (at most 32 MiB) to the system, so each large
activation is a fresh mapping whose pages fault in one by one; on this virtual machine that costs as much as the
arithmetic. "tuned" cases first call :func:`sfp.allocator.keep_freed_memory` (mmap and trim thresholds of 1 GiB,
what ``sfp``'s training commands do); "default" cases do not.

Attention: forward + backward of one call at 1k, 4k and 16k tokens, tuned allocator, best of 3 after a warm-up
call (one run for the slow exact 16k cases). Main shape: the seed configuration's global attention (batch 1,
8 heads of d_head 16 = d_model 128; FAVOR+ with the softmax kernel and its default d log d = 44 features).
Variants at 16k: wide heads (d_head 64, 256 features, and 128), and the default allocator.

Training step: forward + backward + AdamW of the seed's configuration (d_model 128, 4 encoder + 4 decoder layers,
8 heads, d_ff 512, no dropout, exact local / FAVOR+ global attention; 49 variables, context 80, target 4,
batch 4), best of 5 after two warm-up steps. The optimizer is sfp's (:func:`sfp.forecasting.optim.adamw`, torch's
fused AdamW, what ``sfp fit`` uses) or torch's per-parameter reference loop (``foreach=False``). Model FLOPs
come from ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and attention, forward and backward) and
are set against the rate of a 2048^3 float32 matmul timed in the same process. Other work on the machine makes
all times noisy (the load average is reported before and after); the ratios compare cases of one run.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import statistics
import sys
import time

import torch

from benchmarks.timing import best_seconds
from sfp.allocator import keep_freed_memory

THREADS = 2
TOKENS = (1024, 4096, 16384)
HEADS = 8
SEED_HEAD, WIDE_HEAD, WIDE_FEATURES = 16, 64, 256  # d_head of the seed setup (d_model 128 / 8 heads), wide heads
SEED_SETUP = dict(d_y_context=49, d_y_target=49, d_x=4,
                  config=dict(d_model=128, n_heads=8, n_encoder_layers=4, n_decoder_layers=4, d_ff=512))
BATCH, CONTEXT, TARGET = 4, 80, 4


def _log(message: str) -> None:
    print(f"  [performer] {message}", file=sys.stderr, flush=True)


def _resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _prepare(tuned: bool) -> None:
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    if tuned and not keep_freed_memory():
        raise RuntimeError("the tuned cases need glibc and no MALLOC_*_THRESHOLD_ variable set")


def _attention_case(
    kind: str, tokens: int, tuned: bool, dim_head: int = SEED_HEAD, n_features: int | None = None
) -> tuple[float, float]:
    """Best seconds and peak MiB of one forward + backward, after a warm-up call on 1024 tokens."""
    from sfp.models.performer.attention import make_attention

    _prepare(tuned)
    kernel = make_attention(kind, dim_head, n_features=n_features)
    repeats = 1 if (kind, tokens) == ("exact", TOKENS[-1]) else 3
    before = _resident_mb()
    for length in (TOKENS[0], tokens):
        q, k, v = (torch.randn(1, HEADS, length, dim_head, requires_grad=True) for _ in range(3))
        if length == TOKENS[0]:
            kernel(q, k, v).sum().backward()
    seconds = best_seconds(lambda: kernel(q, k, v).sum().backward(), repeats, warmups=0)
    return seconds, max(_peak_mb() - before, 0.0)


def _matmul_rate() -> float:
    """FLOP/s of a 2048^3 float32 matrix product (best of 5)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    return 2 * 2048**3 / best_seconds(lambda: a @ b, 5, warmups=0)


def _training_case(tuned: bool, fused: bool) -> dict[str, float]:
    """Median step seconds (and all five), model FLOPs per step, matmul FLOP/s, peak MiB."""
    from torch.utils.flop_counter import FlopCounterMode

    from sfp.forecasting.optim import adamw
    from sfp.models.common import notify_optimizer_steps
    from sfp.models.performer import SpatioTemporalPerformer

    _prepare(tuned)
    model = SpatioTemporalPerformer(**SEED_SETUP)
    if fused:
        optimizer = adamw(model.parameters(), 1e-3, weight_decay=0.01)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, foreach=False)
    notify_optimizer_steps(model, optimizer)
    context_x, target_x = torch.randn(BATCH, CONTEXT, 4), torch.randn(BATCH, TARGET, 4)
    context_y, target_y = torch.randn(BATCH, CONTEXT, 49), torch.randn(BATCH, TARGET, 49)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(context_x, context_y, target_x), target_y).backward()
        optimizer.step()

    before = _resident_mb()
    with FlopCounterMode(display=False) as counter:
        step()
    step()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "best": min(times), "flops": counter.get_total_flops(),
            "rate": _matmul_rate(), "peak_mb": max(_peak_mb() - before, 0.0)}


def training_step_rows(pool: multiprocessing.pool.Pool) -> list[dict]:
    rows = []
    for tuned, fused in ((False, False), (True, False), (True, True)):
        setup = f"{'tuned' if tuned else 'default'} allocator, {'fused AdamW (sfp)' if fused else 'AdamW loop'}"
        _log(f"seed setup training steps, {setup} ...")
        case = pool.apply(_training_case, (tuned, fused))
        fraction = case["flops"] / case["best"] / case["rate"]
        rows.append({"name": f"seed setup training step, {setup}", "value": case["best"], "unit": "s",
                     "note": f"best of 5, median {case['median']:.2f} s; {fraction:.0%} of the matmul rate; "
                             f"peak +{case['peak_mb']:.0f} MiB"})
    rows += [
        {"name": "seed setup model FLOPs per step", "value": case["flops"] / 1e9, "unit": "GFLOP"},
        {"name": "matmul rate (2048^3 float32, 2 threads)", "value": case["rate"] / 1e9, "unit": "GFLOP/s"},
        {"name": "seed setup step at the full matmul rate", "value": case["flops"] / case["rate"], "unit": "s",
         "note": "a floor on this machine"},
        {"name": "seed setup FLOP/s / matmul rate, as sfp fit runs it", "value": fraction, "unit": "x",
         "note": "tuned allocator, fused AdamW; target >= 0.55"},
        {"name": "seed's 30,000 training steps, as sfp fit runs them", "value": 30_000 * case["best"] / 3600,
         "unit": "h"},
    ]
    return rows


def attention_rows(pool: multiprocessing.pool.Pool) -> list[dict]:
    rows, seconds = [], {}
    for tokens in TOKENS:
        for kind in ("favor", "exact"):
            _log(f"{kind} attention, {tokens} tokens ...")
            secs, peak_mb = pool.apply(_attention_case, (kind, tokens, True))
            seconds[kind, tokens] = secs
            rows.append({"name": f"attention {kind} {tokens} tokens fwd+bwd", "value": secs, "unit": "s",
                         "note": f"8 heads of d_head {SEED_HEAD}; peak +{peak_mb:.0f} MiB RSS"})
        rows.append({"name": f"attention speed-up favor vs exact at {tokens} tokens",
                     "value": seconds["exact", tokens] / seconds["favor", tokens], "unit": "x",
                     "note": "target >= 50x" if tokens == TOKENS[-1] else ""})
    tokens = TOKENS[-1]
    _log("attention variants: wide heads, default allocator ...")
    wide_exact, _ = pool.apply(_attention_case, ("exact", tokens, True, WIDE_HEAD))
    for n_features in (WIDE_FEATURES, WIDE_FEATURES // 2):
        secs, peak_mb = pool.apply(_attention_case, ("favor", tokens, True, WIDE_HEAD, n_features))
        rows.append({"name": f"attention speed-up favor vs exact at {tokens} tokens, d_head {WIDE_HEAD}, "
                             f"{n_features} features", "value": wide_exact / secs, "unit": "x",
                     "note": f"favor {secs:.3f} s, exact {wide_exact:.2f} s; favor peak +{peak_mb:.0f} MiB RSS"})
    secs, peak_mb = pool.apply(_attention_case, ("favor", tokens, False))
    rows.append({"name": f"attention favor {tokens} tokens fwd+bwd, default allocator", "value": secs,
                 "unit": "s", "note": f"peak +{peak_mb:.0f} MiB RSS"})
    return rows


def _load_row(when: str) -> dict:
    return {"name": f"machine load average (1 min) {when}", "value": os.getloadavg()[0], "unit": "processes",
            "note": "other work sharing the 2 cores slows 2-thread runs a lot"}


def run() -> list[dict]:
    rows = [_load_row("before")]
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        rows += training_step_rows(pool) + attention_rows(pool)
    return rows + [_load_row("after")]
