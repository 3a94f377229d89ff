"""The dataset cache: keys, reuse, atomic writes, recovery from corrupt files; generator parameter overrides."""

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from sfp.data import cache
from sfp.errors import UserError


class _Counter:
    """A build function that counts its calls."""

    def __init__(self, array: np.ndarray):
        self.array, self.calls = array, 0

    def __call__(self) -> np.ndarray:
        self.calls += 1
        return self.array


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SFP_CACHE", str(tmp_path))
    return tmp_path


def test_cache_dir_follows_the_environment(cache_dir):
    assert cache.cache_dir() == cache_dir


def test_second_call_loads_instead_of_building(cache_dir):
    build = _Counter(np.arange(6, dtype=np.float32).reshape(2, 3))
    first = cache.cached_array("toy", {"a": 1}, build)
    second = cache.cached_array("toy", {"a": 1}, build)
    assert build.calls == 1
    np.testing.assert_array_equal(second, build.array)
    assert second.dtype == np.float32 and first is build.array
    assert [p.name for p in cache_dir.iterdir()] == [cache.cache_path("toy", {"a": 1}).name]


def test_key_ignores_order_and_tuple_spelling_but_not_values_names_or_version():
    base = cache.cache_key("toy", {"a": 1, "b": (1.0, 2.0)})
    assert cache.cache_key("toy", {"b": [1.0, 2.0], "a": np.int64(1)}) == base
    assert cache.cache_key("toy", {"a": 2, "b": (1.0, 2.0)}) != base
    assert cache.cache_key("other", {"a": 1, "b": (1.0, 2.0)}) != base
    assert cache.cache_key("toy", {"a": 1, "b": (1.0, 2.0)}, version="other") != base
    assert len(base) == 64 and int(base, 16) >= 0  # a sha256 hex digest


def test_unhashable_parameter_is_rejected():
    with pytest.raises(TypeError):
        cache.cache_key("toy", {"a": object()})


def test_cache_false_never_touches_the_disk(cache_dir):
    build = _Counter(np.zeros(3))
    cache.cached_array("toy", {}, build, cache=False)
    cache.cached_array("toy", {}, build, cache=False)
    assert build.calls == 2 and not any(cache_dir.iterdir())


def test_truncated_file_is_regenerated_and_repaired(cache_dir):
    build = _Counter(np.arange(1000, dtype=np.float32))
    cache.cached_array("toy", {}, build)
    path = cache.cache_path("toy", {})
    path.write_bytes(path.read_bytes()[:500])
    np.testing.assert_array_equal(cache.cached_array("toy", {}, build), build.array)
    assert build.calls == 2
    np.testing.assert_array_equal(np.load(path), build.array)


def test_garbage_file_is_regenerated(cache_dir):
    build = _Counter(np.ones(4))
    cache.cache_path("toy", {}).write_bytes(b"not an npy file")
    np.testing.assert_array_equal(cache.cached_array("toy", {}, build), build.array)
    assert build.calls == 1


def test_file_of_the_wrong_shape_is_regenerated(cache_dir):
    np.save(cache.cache_path("toy", {}), np.zeros((2, 2)))
    build = _Counter(np.ones((3, 2)))
    result = cache.cached_array("toy", {}, build, shape=(3, 2))
    assert build.calls == 1 and result.shape == (3, 2)
    assert np.load(cache.cache_path("toy", {})).shape == (3, 2)


def test_write_killed_midway_leaves_no_file(cache_dir, monkeypatch):
    def dying_save(file, array, allow_pickle=False):
        file.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt  # the run is killed while writing

    monkeypatch.setattr(cache.np, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        cache.cached_array("toy", {}, lambda: np.ones(3))
    assert list(cache_dir.iterdir()) == []


def test_unwritable_cache_still_returns_the_array(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SFP_CACHE", str(blocker / "sub"))  # a folder below a file cannot be created
    np.testing.assert_array_equal(cache.cached_array("toy", {}, lambda: np.ones(2)), np.ones(2))
    assert os.path.isfile(blocker)


@dataclasses.dataclass(frozen=True)
class _Knobs(cache.GeneratorParams):
    rate: float = 1.0
    span: tuple[float, float] = (1.0, 2.0)


def test_overrides_replace_defaults_and_lists_become_tuples():
    knobs = _Knobs.from_overrides({"span": [0.5, 3.0]})
    assert knobs == _Knobs(rate=1.0, span=(0.5, 3.0))


@pytest.mark.parametrize(
    "overrides, message",
    [({"speed": 1.0}, "speed"), ({"rate": -1.0}, "rate"), ({"span": (3.0, 1.0)}, "span"), ({"rate": "x"}, "rate")],
)
def test_bad_overrides_raise_user_error_naming_the_parameter(overrides, message):
    with pytest.raises(UserError, match=message):
        _Knobs.from_overrides(overrides)


def test_unknown_override_lists_the_known_names():
    with pytest.raises(UserError, match="known: rate, span"):
        _Knobs.from_overrides({"speed": 1.0})


def test_map_chunks_keeps_order_runs_ops_single_threaded_and_restores_the_setting():
    torch.set_num_threads(2)
    try:
        seen = cache.map_chunks(lambda chunk: (chunk, torch.get_num_threads()), [3, 1, 2])
        assert seen == [(3, 1), (1, 1), (2, 1)]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_generators_give_the_same_bits_whatever_the_thread_count():
    from sfp.data import flame, navier_stokes, storms

    def all_generated() -> list[np.ndarray]:
        return [
            storms.generate(40, 3, size=16, cache=False),  # more sequences than one chunk
            flame.generate(40, 3, size=16, cache=False),
            navier_stokes.generate(40, 1, size=16, cache=False),
        ]

    single = all_generated()
    torch.set_num_threads(2)
    try:
        double = all_generated()
    finally:
        torch.set_num_threads(1)
    for a, b in zip(single, double):
        np.testing.assert_array_equal(a, b)
