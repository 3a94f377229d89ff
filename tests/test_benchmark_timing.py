"""The benchmarks' shared timing helper, on a scripted clock."""

import benchmarks.timing as timing


def test_best_seconds_is_the_fastest_timed_call_after_the_warmups(monkeypatch):
    ticks = iter([0.0, 3.0, 10.0, 11.5, 20.0, 22.0])  # timed calls of 3, 1.5 and 2 s
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(ticks))
    calls = []
    assert timing.best_seconds(lambda: calls.append(1), repeats=3, warmups=2) == 1.5
    assert len(calls) == 5  # two untimed, three timed
