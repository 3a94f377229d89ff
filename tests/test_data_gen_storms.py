"""Synthetic storms: units, intensity statistics, cell life cycles, advection, determinism, parameter checks."""

import numpy as np
import pytest

from sfp.data import storms
from sfp.errors import UserError


@pytest.fixture(scope="module")
def default_storms() -> np.ndarray:
    return storms.generate(16, 25, seed=11, cache=False)


def test_shape_dtype_and_vil_range(default_storms):
    assert default_storms.shape == (16, 25, 1, 64, 64) and default_storms.dtype == np.float32
    assert default_storms.min() >= 0.0 and default_storms.max() <= 255.0


def test_cores_cross_the_high_sevir_thresholds(default_storms):
    assert (default_storms >= 133).mean() >= 0.02
    assert (default_storms >= 181).mean() >= 0.003
    assert (default_storms >= 16).mean() <= 0.5  # still mostly dry, as radar images are


def test_life_envelope_values():
    birth, lifetime = np.array(2.0), np.array(8.0)
    frames = np.array([0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0])
    expected = [0.0, 0.0, 0.5, 1.0, 0.5, 0.0, 0.0]  # sin^2(pi s) at s = -1/4, 0, 1/4, 1/2, 3/4, 1, 5/4
    np.testing.assert_allclose(storms.life_envelope(frames, birth, lifetime), expected, atol=1e-12)


def test_cells_are_born_and_die_within_sequences():
    cells = storms.sample_cells(32, 25, np.random.default_rng(0), storms.StormParams())
    live = cells.active
    born_inside = live & (cells.birth > 0)
    dead_inside = born_inside & (cells.birth + cells.lifetime < 25)
    assert born_inside.sum() >= 32 and dead_inside.sum() >= 8
    assert (cells.birth[live & (cells.birth <= 0)] + cells.lifetime[live & (cells.birth <= 0)] > 0).all()
    # amplitudes are zero outside each cell's life and positive inside it
    frames = np.arange(25)[None, :, None]
    alive = (frames > cells.birth[:, None]) & (frames < (cells.birth + cells.lifetime)[:, None]) & live[:, None]
    assert (cells.body[~alive] == 0).all() and (cells.body[alive] > 0).all()


def test_a_single_cell_appears_then_vanishes_in_the_images():
    params = {"initial_cells": 0, "birth_rate": 1.0, "max_cells": 1, "lifetime": (6.0, 8.0), "speed": (0.0, 0.0)}
    fields = storms.generate(8, 30, size=32, seed=5, cache=False, **params)
    rain = fields.sum(axis=(2, 3, 4)) > 0  # (sequence, frame)
    complete = 0
    for wet in rain:
        frames = np.flatnonzero(wet)
        if frames.size == 0:  # born after the last frame
            continue
        assert frames.size <= 8 and np.array_equal(frames, np.arange(frames[0], frames[-1] + 1))  # one life
        complete += frames[0] > 0 and frames[-1] < 29
    assert complete >= 3  # most cells were born and died inside their sequence


def test_cells_follow_the_steering_flow():
    params = storms.StormParams(perturbation=0.0, speed=(0.01, 0.01))
    cells = storms.sample_cells(4, 10, np.random.default_rng(1), params)
    np.testing.assert_allclose(np.linalg.norm(cells.drift, axis=-1), 0.01)
    moved = cells.position[:, 9] - cells.position[:, 0]
    np.testing.assert_allclose(moved, 9 * np.broadcast_to(cells.drift[:, None], moved.shape), atol=1e-12)


def test_same_seed_same_storms_other_seed_other_storms():
    a = storms.generate(2, 5, size=32, seed=3, cache=False)
    np.testing.assert_array_equal(a, storms.generate(2, 5, size=32, seed=3, cache=False))
    assert not np.array_equal(a, storms.generate(2, 5, size=32, seed=4, cache=False))


@pytest.mark.parametrize(
    "params",
    [{"hail": 1.0}, {"birth_rate": -0.1}, {"lifetime": (10.0, 5.0)}, {"aspect": (0.5, 2.0)}, {"max_cells": 2.5},
     {"surge_probability": 2.0}],
)
def test_bad_parameters_raise_user_error(params):
    with pytest.raises(UserError):
        storms.generate(1, 2, size=16, cache=False, **params)


def test_bad_sizes_raise_user_error():
    with pytest.raises(UserError):
        storms.generate(0, 5)
