"""Generation time of each embedded dataset at its standard size, against the speed targets.

Targets: navier_stokes (256 x 20 frames, 64 x 64, viscosity 1e-4) under 120 s; storms and flame (256 x 25 frames,
64 x 64) under 30 s each; sensors (20 000 samples of 49 probes) under 30 s. Each dataset is generated once without
the cache, with torch's current thread count. Rows give wall seconds, CPU seconds (all threads) and wall / target;
the machine is shared, so wall time includes waiting for the neighbours' processes.
"""

from __future__ import annotations

import time

import torch

from sfp.data.registry import get_dataset

TARGET_SECONDS = {"storms": 30.0, "flame": 30.0, "sensors": 30.0, "navier_stokes": 120.0}


def run() -> list[dict]:
    rows = []
    threads = torch.get_num_threads()
    for name, target in TARGET_SECONDS.items():
        spec = get_dataset(name)
        wall, cpu = time.perf_counter(), time.process_time()
        data = spec.generate(**spec.defaults, seed=0, cache=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        shape = "x".join(map(str, data.shape))
        rows += [
            {"name": f"{name} generate wall", "value": wall, "unit": "s", "note": f"{shape}, {threads} threads"},
            {"name": f"{name} generate cpu", "value": cpu, "unit": "s"},
            {"name": f"{name} wall / target ({target:.0f} s)", "value": wall / target, "unit": "x"},
        ]
    return rows
