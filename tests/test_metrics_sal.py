"""SAL against hand-worked values on tiny fields, its undefined cases, and pysteps' implementation."""

import math

import numpy as np
import pytest
import torch

from sfp.errors import UserError
from sfp.metrics.sal import sal, sal_frame, sal_penalty

BLOB = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])


def _with_blob(size: int, row: int, column: int, blob: np.ndarray = BLOB) -> np.ndarray:
    field = np.zeros((size, size))
    field[row: row + blob.shape[0], column: column + blob.shape[1]] = blob
    return field


def test_identical_fields_score_zero():
    field = _with_blob(16, 3, 4) + _with_blob(16, 10, 9)
    assert sal_frame(field, field) == (0.0, 0.0, 0.0)


def test_a_doubled_field_only_changes_the_amplitude():
    # the threshold doubles with the field, so the objects and their scaled volumes stay: S = L = 0
    field = _with_blob(16, 3, 4) + _with_blob(16, 10, 9)
    structure, amplitude, location = sal_frame(2 * field, field)
    assert amplitude == pytest.approx(2 * (2 - 1) / (2 + 1))
    assert structure == pytest.approx(0.0) and location == pytest.approx(0.0)


def test_a_shifted_blob_only_changes_the_location():
    structure, amplitude, location = sal_frame(_with_blob(16, 5, 8), _with_blob(16, 5, 5))
    assert (structure, amplitude) == (0.0, 0.0)
    assert location == pytest.approx(3 / math.hypot(16, 16))  # L1 = shift / diagonal; one object each: L2 = 0


def test_two_cells_against_one_block_by_hand():
    truth = np.zeros((8, 8))
    truth[3:5, 3:5] = 1.0  # one object: R = 4, peak 1, V = 4, centred on (3.5, 3.5)
    forecast = np.zeros((8, 8))
    forecast[2, 2] = forecast[5, 5] = 2.0  # two 1-cell objects (not touching): V = 1, same centre, same mean
    structure, amplitude, location = sal_frame(forecast, truth)
    assert structure == pytest.approx((1 - 4) / (0.5 * (1 + 4)))
    assert amplitude == 0.0
    # L1 = 0; each cell lies 1.5·√2 from the centre: L2 = 2 · 1.5√2 / √128 = 3/8
    assert location == pytest.approx(3 / 8)


def test_dry_fields_leave_components_undefined_and_the_penalty_finite():
    dry, wet = np.zeros((8, 8)), _with_blob(8, 2, 2)
    assert all(math.isnan(x) for x in sal_frame(dry, dry))
    structure, amplitude, location = sal_frame(dry, wet)
    assert (structure, amplitude) == (-2.0, -2.0) and math.isnan(location)
    components = torch.tensor([[0.5, -0.25, 0.125], [-2.0, -2.0, math.nan], [math.nan] * 3], dtype=torch.float64)
    assert sal_penalty(components).tolist() == [0.875, 6.0, 0.0]


def test_batches_give_components_per_frame():
    truth = torch.from_numpy(np.stack([_with_blob(16, 5, 5), _with_blob(16, 5, 5)])).view(1, 2, 1, 16, 16)
    forecast = truth.clone()
    forecast[0, 1] = torch.from_numpy(_with_blob(16, 5, 8))
    components = sal(forecast, truth)
    assert components.shape == (1, 2, 3)
    assert components[0, 0].tolist() == [0.0, 0.0, 0.0]
    assert components[0, 1, 2].item() == pytest.approx(3 / math.hypot(16, 16))


def test_bad_options_are_user_errors():
    field = torch.zeros(1, 1, 1, 4, 4)
    with pytest.raises(UserError):
        sal(field, field, quantile=0.0)
    with pytest.raises(UserError):
        sal(field, field, threshold_factor=-1.0)


def _separate_storms(generator: np.random.Generator, size: int = 64, spacing: int = 21) -> np.ndarray:
    """Gaussian cells of random width and strength, at most one per ``spacing``-pixel square, far enough apart
    that each object holds one maximum and no other within 10 pixels (where pysteps' cell detection, which splits
    regions at their maxima and drops maxima closer than 10 pixels, finds the paper's threshold objects)."""
    rows, columns = np.indices((size, size))
    field = np.zeros((size, size))
    for row in range(spacing // 2, size, spacing):
        for column in range(spacing // 2, size, spacing):
            if generator.random() < 0.75:
                centre = np.array([row, column]) + generator.uniform(-2, 2, 2)
                width, strength = generator.uniform(1.5, 3.0), generator.uniform(1.0, 10.0)
                field += strength * np.exp(-((rows - centre[0]) ** 2 + (columns - centre[1]) ** 2) / (2 * width**2))
    return np.where(field > 0.05, field, 0.0)


def test_matches_pysteps_on_random_storms():
    pytest.importorskip("pysteps")
    pytest.importorskip("pandas")
    pytest.importorskip("skimage")  # pysteps' SAL needs pandas and scikit-image
    from pysteps.verification.salscores import sal as pysteps_sal

    generator = np.random.default_rng(0)
    for _ in range(6):
        forecast, truth = _separate_storms(generator), _separate_storms(generator)
        # pysteps' cells are 4-connected and at least 50 pixels (tstorm's minsize, which its SAL always applies)
        expected = pysteps_sal(forecast, truth, thr_factor=0.067)
        ours = sal_frame(forecast, truth, threshold_factor=0.067, connectivity=4, min_size=50)
        assert ours == pytest.approx(expected, abs=1e-9)
