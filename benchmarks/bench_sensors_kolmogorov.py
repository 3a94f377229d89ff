"""The nonlinear sensors benchmark (``sensors_kolmogorov``: 49 probes of a weakly chaotic Kolmogorov flow, 32 steps
in, 16 out): the SpatioTemporal Performer against an LSTM encoder-decoder, DLinear, the linear reference and
persistence, each trained and tested as its shipped config says (see ``bench_sensors``)."""

from __future__ import annotations

from benchmarks.bench_sensors import compare

MODELS = ("performer", "lstm", "dlinear", "linear")


def run() -> list[dict]:
    return compare("sensors_kolmogorov", MODELS)
