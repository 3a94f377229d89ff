"""Vortex census on hand-made periodic vorticity fields: the Okubo–Weiss field, cores and their matching."""

import numpy as np
import pytest
import torch

from sfp.errors import UserError
from sfp.metrics.objects import object_scores
from sfp.metrics.vortices import find_vortices, okubo_weiss, vortex_counts

SIZE = 32


def _vortex(row: float, column: float, strength: float = 1.0, width: float = 2.0) -> np.ndarray:
    """A Gaussian vortex on the periodic ``SIZE × SIZE`` grid (distances the short way round)."""
    rows, columns = np.indices((SIZE, SIZE))
    d_row = (rows - row + SIZE / 2) % SIZE - SIZE / 2
    d_column = (columns - column + SIZE / 2) % SIZE - SIZE / 2
    return strength * np.exp(-(d_row**2 + d_column**2) / (2 * width**2))


def _pair(shift: int = 0) -> np.ndarray:
    """A positive vortex at (8, 8 + shift) and a negative one at (22, 20)."""
    return _vortex(8, 8 + shift) - _vortex(22, 20)


def _batch(*fields: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(fields)).view(1, len(fields), 1, SIZE, SIZE)


def test_okubo_weiss_of_a_shear_flow_and_a_vortex_centre():
    # a parallel shear flow has as much strain as rotation everywhere: W = 0
    shear = np.cos(2 * np.pi * np.indices((SIZE, SIZE))[0] / SIZE)
    assert np.abs(okubo_weiss(shear)).max() == pytest.approx(0.0, abs=1e-12)
    # at the centre of a lone symmetric vortex the strain vanishes: W = -ω² (ω without its mean)
    vortex = _vortex(8, 8)
    assert okubo_weiss(vortex)[8, 8] == pytest.approx(-((vortex[8, 8] - vortex.mean()) ** 2))


def test_each_vortex_is_one_core_of_its_sign():
    positive, negative = find_vortices(_pair())
    assert len(positive) == 1 and len(negative) == 1
    assert np.allclose(positive.centroids, [[8, 8]], atol=0.15) and np.allclose(negative.centroids, [[22, 20]],
                                                                                 atol=0.15)
    assert positive.peaks.tolist() == [1.0] and negative.peaks.tolist() == [1.0]
    # a vortex on the corner of the torus is still one core
    corner, _ = find_vortices(_vortex(0, 0) - _vortex(16, 16))
    assert len(corner) == 1 and np.allclose(np.minimum(corner.centroids, SIZE - corner.centroids), 0, atol=1e-9)


def test_a_rolled_field_moves_every_core_by_the_roll():
    truth = _pair()
    rolled = np.roll(truth, (0, 3), axis=(0, 1))
    counts = vortex_counts(_batch(rolled), _batch(truth), radius=4)
    assert counts[0, :3].tolist() == [2, 0, 0]
    assert counts[0, 3].item() == pytest.approx(6.0) and counts[0, 4].item() == pytest.approx(0.0)
    assert vortex_counts(_batch(rolled), _batch(truth), radius=2)[0, :3].tolist() == [0, 2, 2]


def test_one_vortex_moved_by_k_pixels():
    for shift in (1, 3):
        scores = object_scores(vortex_counts(_batch(_pair(shift)), _batch(_pair()), radius=4))
        assert scores["object_csi"].item() == 1.0
        # one pair 0 apart, the other `shift`: the other vortex's strain barely moves the cores
        assert scores["location_error"].item() == pytest.approx(shift / 2, abs=0.1)


def test_signs_must_agree_and_strength_errors_count():
    truth = _pair()
    counts = vortex_counts(_batch(-truth), _batch(truth), radius=4)
    assert counts[0, :3].tolist() == [0, 2, 2]  # both cores in place, with the wrong spin
    weak = _vortex(8, 8, strength=0.5) - _vortex(22, 20)
    assert object_scores(vortex_counts(_batch(weak), _batch(truth), radius=4))["peak_error"].item() == \
        pytest.approx(0.25)  # |0.5 - 1| and 0 over two pairs


def test_counts_add_up_over_frames():
    counts = vortex_counts(_batch(_pair(), -_pair()), _batch(_pair(), _pair()), radius=4)
    assert counts[0, :3].tolist() == [2, 2, 2]


def test_bad_options_are_user_errors():
    field = _batch(_pair())
    for options in ({"radius": 0}, {"radius": 1, "level": -1.0}, {"radius": 1, "min_size": 0}):
        with pytest.raises(UserError):
            vortex_counts(field, field, **options)
