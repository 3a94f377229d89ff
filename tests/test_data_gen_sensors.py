"""Probe extraction with hand-computed indices, and the embedded Navier–Stokes probe series."""

import numpy as np
import pytest
import torch

from sfp.data import navier_stokes, sensors
from sfp.errors import UserError


def _coded_field() -> np.ndarray:
    """A (T=2, X=3, Y=4, C=2) array whose value spells its index: 1000 t + 100 x + 10 y + c."""
    t, x, y, c = np.meshgrid(np.arange(2), np.arange(3), np.arange(4), np.arange(2), indexing="ij")
    return (1000 * t + 100 * x + 10 * y + c).astype(np.float32)


def test_separate_channels_puts_all_u_then_all_v():
    probes = sensors.extract_datapoints(_coded_field(), [0, 2], [1, 3], separate_channels=True)
    # the lattice, x-major: (0, 1), (0, 3), (2, 1), (2, 3)
    np.testing.assert_array_equal(probes[0], [10, 30, 210, 230, 11, 31, 211, 231])
    np.testing.assert_array_equal(probes[1], np.array([10, 30, 210, 230, 11, 31, 211, 231]) + 1000)


def test_interleaved_channels_pair_u_and_v_per_probe():
    probes = sensors.extract_datapoints(_coded_field(), [0, 2], [1, 3], separate_channels=False)
    np.testing.assert_array_equal(probes[0], [10, 11, 30, 31, 210, 211, 230, 231])


def test_single_channel_and_repeated_indices():
    field = _coded_field()[..., :1]
    np.testing.assert_array_equal(sensors.extract_datapoints(field, [1], [2, 2]), [[120, 120], [1120, 1120]])


@pytest.mark.parametrize(
    "array, xs, ys",
    [(np.zeros((2, 3, 4)), [0], [0]), (np.zeros((2, 3, 4, 2)), [3], [0]), (np.zeros((2, 3, 4, 2)), [0], [-1]),
     (np.zeros((2, 3, 4, 2)), [], [0]), (np.zeros((2, 3, 4, 2)), [0.5], [0])],
)
def test_bad_probe_requests_raise_user_error(array, xs, ys):
    with pytest.raises(UserError):
        sensors.extract_datapoints(array, xs, ys)


def test_lattice_indices_are_centred_in_equal_strips():
    assert sensors.lattice_indices(32) == [2, 6, 11, 16, 20, 25, 29]  # floor((i + 1/2) * 32 / 7)
    assert sensors.lattice_indices(7) == list(range(7))
    with pytest.raises(UserError):
        sensors.lattice_indices(5)


@pytest.mark.parametrize("flow", [{}, {"forcing": "kolmogorov", "drag": 0.5}])
def test_series_are_the_lattice_probes_of_one_navier_stokes_run(flow):
    series = sensors.generate(length=30, size=16, dt_sample=0.1, spin_up=0.5, seed=3, cache=False, **flow)
    assert series.shape == (30, 49) and series.dtype == np.float32
    w0 = navier_stokes.grf(1, 16, seed=3).to(torch.float32)
    run = navier_stokes.solve(w0, 1e-3, t_final=3.5, record_every=0.1, **flow)[0, 5:]  # drop 5 spin-up samples
    lattice = sensors.lattice_indices(16)
    expected = run[:, lattice][:, :, lattice].reshape(30, 49).numpy()
    np.testing.assert_allclose(series, expected, atol=1e-6)
    assert (series.std(axis=0) > 1e-3).all()  # every probe sees a changing flow


def test_series_are_deterministic_and_seeded(tmp_path, monkeypatch):
    monkeypatch.setenv("SFP_CACHE", str(tmp_path))
    a = sensors.generate(length=10, size=16, spin_up=0.0, seed=0)
    np.testing.assert_array_equal(a, sensors.generate(length=10, size=16, spin_up=0.0, seed=0, cache=False))
    assert not np.allclose(a, sensors.generate(length=10, size=16, spin_up=0.0, seed=1, cache=False))


@pytest.mark.parametrize("kwargs", [{"length": 0}, {"size": 6}, {"dt_sample": 0.0}, {"spin_up": -1.0}])
def test_bad_series_arguments_raise_user_error(kwargs):
    with pytest.raises(UserError):
        sensors.generate(**kwargs, cache=False)
