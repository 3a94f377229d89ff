"""Timing shared by the benchmarks: the fastest of a few calls, the least noisy estimate on a shared machine."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_seconds(work: Callable[[], object], repeats: int = 3, warmups: int = 1) -> float:
    """Seconds of the fastest of ``repeats`` timed calls of ``work()``, after ``warmups`` untimed ones."""
    for _ in range(warmups):
        work()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best
