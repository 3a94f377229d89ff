"""Combustion proxy: ranges, monotone fuel, moving fronts, wind, no spontaneous ignition, determinism."""

import numpy as np
import pytest
import torch

from sfp.data import flame
from sfp.errors import UserError
from sfp.task import FLAME


@pytest.fixture(scope="module")
def fires() -> np.ndarray:
    return flame.generate(6, 16, size=48, seed=2, cache=False)


def test_shape_dtype_and_ranges(fires):
    assert fires.shape == (6, 16, 2, 48, 48) and fires.dtype == np.float32
    assert fires.min() >= 0.0 and fires.max() <= 1.0
    assert FLAME.bounds == (0.0, 1.0)  # forecasts are kept in the range the simulation keeps
    assert fires[:, :, 0].max() > 0.9  # something burns at full heat


def test_fuel_never_increases(fires):
    fuel = fires[:, :, 1]
    assert (np.diff(fuel, axis=1) <= 0).all()


def test_burnt_region_grows(fires):
    fuel = fires[:, :, 1]
    burnt = (fuel < 0.5 * fuel[:, :1]).sum(axis=(2, 3))  # pixels that lost half their fuel, per frame
    assert (np.diff(burnt, axis=1) >= 0).all()
    assert (burnt[:, -1] > burnt[:, 2] + 50).sum() >= 3  # most fires spread over many pixels


def _single_fire(wind: tuple[float, float], frames: int = 14, size: int = 48) -> torch.Tensor:
    fuel = torch.full((1, size, size), 0.8)
    axis = torch.arange(size) - size // 2
    lit = ((axis[:, None] ** 2 + axis[None, :] ** 2) <= 9).float()[None]  # a disc of radius 3 at full heat
    spots = [lit] + [torch.zeros(1, size, size)] * (frames - 1)
    return flame.simulate(fuel, torch.tensor([wind]), spots)


def test_front_moves_outward_at_a_steady_pace_without_wind():
    states = _single_fire((0.0, 0.0))
    burnt = (states[0, :, 1] < 0.4).float()
    radius = torch.sqrt(burnt.sum((-2, -1)) / torch.pi)
    growth = radius[1:] - radius[:-1]
    assert (growth[4:] > 0.3).all() and (growth[4:] < 3.0).all()
    hot = states[0, -1, 0] > 0.5
    rows, cols = torch.nonzero(hot, as_tuple=True)
    assert abs(rows.float().mean() - 24) < 1.5 and abs(cols.float().mean() - 24) < 1.5  # a symmetric ring
    assert not hot[24, 24]  # the centre burnt out and cooled: the flame is a front, not a blob


def test_wind_pushes_the_fire_downwind():
    burnt = _single_fire((0.5, 0.0), frames=9)[0, -1, 1] < 0.4  # wind along +x, the last axis
    rows, cols = torch.nonzero(burnt, as_tuple=True)
    assert cols.min() > 0 and cols.max() < 47  # not yet wrapped around the periodic domain
    assert cols.max() - 24 > 24 - cols.min() + 3
    assert abs(rows.float().mean() - 24) < 0.5


def test_without_ignitions_nothing_happens():
    quiet = flame.generate(2, 6, size=24, seed=0, cache=False, initial_fires=(0.0, 0.0), ignition_rate=0.0)
    assert (quiet[:, :, 0] == 0).all()
    np.testing.assert_array_equal(quiet[:, 1:, 1], quiet[:, :-1, 1])


def test_same_seed_same_fires_other_seed_other_fires():
    a = flame.generate(2, 4, size=24, seed=1, cache=False)
    np.testing.assert_array_equal(a, flame.generate(2, 4, size=24, seed=1, cache=False))
    assert not np.array_equal(a, flame.generate(2, 4, size=24, seed=2, cache=False))


@pytest.mark.parametrize("params", [{"fuel": 1.0}, {"diffusion": -1.0}, {"wind": (1.0, 0.0)}, {"activation": 0.0}])
def test_bad_parameters_raise_user_error(params):
    with pytest.raises(UserError):
        flame.generate(1, 2, size=16, cache=False, **params)
