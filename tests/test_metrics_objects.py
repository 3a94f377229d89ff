"""Object verification on hand-made fields: cells, centroids, one-to-one matching, object CSI and its errors."""

import math

import numpy as np
import pytest
import torch

from sfp.errors import UserError
from sfp.metrics.objects import (
    Objects,
    find_objects,
    label_regions,
    match_objects,
    matched_regions,
    object_counts,
    object_scores,
)


def _field(size: int, cells: dict[tuple[int, int], float]) -> np.ndarray:
    field = np.zeros((size, size))
    for position, value in cells.items():
        field[position] = value
    return field


def test_cells_centroids_and_peaks():
    field = _field(8, {(1, 1): 140.0, (1, 2): 200.0, (2, 2): 150.0, (5, 6): 190.0, (6, 5): 100.0})
    cells = find_objects(field, 133.0)
    # {(1,1), (1,2), (2,2)}: plain centroid (4/3, 5/3), peak 200; the lone (5,6) cell: peak 190; (6,5) is below
    assert np.allclose(cells.centroids, [[4 / 3, 5 / 3], [5, 6]])
    assert cells.peaks.tolist() == [200.0, 190.0]
    assert len(find_objects(field, 133.0, min_size=2)) == 1


def test_diagonal_neighbours_join_with_8_connectivity_only():
    mask = _field(4, {(0, 0): 1, (1, 1): 1}) > 0
    assert label_regions(mask)[1] == 1
    assert label_regions(mask, connectivity=4)[1] == 2
    with pytest.raises(UserError):
        label_regions(mask, connectivity=6)


def test_periodic_regions_join_across_edges_and_centroids_wrap():
    field = _field(8, {(0, 0): 1.0, (7, 0): 1.0, (0, 7): 1.0, (7, 7): 1.0, (4, 4): 1.0})
    assert len(find_objects(field, 1.0)) == 5
    cells = find_objects(field, 1.0, periodic=True)
    assert len(cells) == 2
    # the corner block is centred on the corner itself: (-0.5, -0.5) wraps to (7.5, 7.5)
    assert np.allclose(sorted(cells.centroids.tolist()), [[4, 4], [7.5, 7.5]])


def test_optimal_matching_beats_greedy_nearest_pairs():
    # truth A (2,1), B (2,6); forecast P (2,4), Q (2,9); radius 3.5. Greedy nearest-first takes B-P (2) and
    # leaves A and Q unmatched; the assignment pairs A-P (3) and B-Q (3).
    truth = Objects(np.array([[2.0, 1.0], [2.0, 6.0]]), np.array([200.0, 150.0]))
    forecast = Objects(np.array([[2.0, 4.0], [2.0, 9.0]]), np.array([140.0, 170.0]))
    rows, columns, distances = match_objects(truth, forecast, radius=3.5)
    assert rows.tolist() == [0, 1] and columns.tolist() == [0, 1] and distances.tolist() == [3.0, 3.0]
    rows, _, _ = match_objects(truth, forecast, radius=2.5)  # only B-P is close enough
    assert rows.tolist() == [1]


def test_periodic_distances_take_the_short_way_round():
    truth = Objects(np.array([[0.0, 1.0]]), np.array([1.0]))
    forecast = Objects(np.array([[0.0, 15.0]]), np.array([1.0]))
    assert len(match_objects(truth, forecast, radius=3.0)[0]) == 0
    assert match_objects(truth, forecast, radius=3.0, period=(16, 16))[2].tolist() == [2.0]


def test_object_csi_location_and_peak_errors_by_hand():
    truth = _field(12, {(2, 1): 200.0, (2, 6): 150.0})
    forecast = _field(12, {(2, 4): 140.0, (2, 9): 170.0})
    pred, target = (torch.tensor(x).view(1, 1, 1, 12, 12) for x in (forecast, truth))
    counts = object_counts(pred, target, [133, 181], radius=3.5)
    # at 133 both pairs match (distance 3 each, peak errors 60 and 20); at 181 truth A is missed
    assert counts.tolist() == [[[2, 0, 0, 6.0, 80.0], [0, 1, 0, 0.0, 0.0]]]
    scores = object_scores(counts)
    assert scores["object_csi"].tolist() == [[1.0, 0.0]]
    assert scores["location_error"][0, 0].item() == 3.0 and scores["peak_error"][0, 0].item() == 40.0
    assert math.isnan(scores["location_error"][0, 1].item())  # no pair matched at 181


def test_counts_add_up_over_frames_and_samples_stay_apart():
    truth = torch.zeros(2, 3, 1, 8, 8)
    truth[:, :, 0, 4, 4] = 10.0
    forecast = truth.clone()
    forecast[0, 1] = 0.0  # sample 0 misses the cell in frame 1
    forecast[1, 2, 0, 0, 0] = 10.0  # sample 1 has a false alarm in frame 2
    counts = object_counts(forecast, truth, [5], radius=2)
    assert counts[..., :3].tolist() == [[[2, 1, 0]], [[3, 0, 1]]]
    assert object_scores(counts)["object_csi"].tolist() == [[2 / 3], [3 / 4]]


def test_matched_regions_are_the_forecast_cells_matched_to_the_truth():
    truth = _field(12, {(2, 1): 200.0, (9, 9): 150.0})
    # a 2-pixel cell near truth A (matched), a cell far from everything (a false alarm), a weak cell at B (below 133)
    forecast = _field(12, {(2, 3): 140.0, (3, 3): 150.0, (6, 0): 160.0, (9, 9): 100.0})
    pred, target = (torch.tensor(x).view(1, 1, 1, 12, 12) for x in (forecast, truth))
    inside = matched_regions(pred, target, [133], radius=3.0)
    assert inside.shape == (1, 1, 12, 12) and inside.dtype == torch.bool
    assert sorted(map(tuple, inside[0, 0].nonzero().tolist())) == [(2, 3), (3, 3)]
    both = matched_regions(pred, target, [133, 90], radius=3.0)  # at 90 the weak cell at B is a match too
    assert sorted(map(tuple, both[0, 0].nonzero().tolist())) == [(2, 3), (3, 3), (9, 9)]
    assert not matched_regions(pred, target, [133], radius=1.0).any()  # A's cell is 2 away at best


def test_no_cells_anywhere_is_undefined():
    quiet = torch.zeros(1, 2, 1, 8, 8)
    assert math.isnan(object_scores(object_counts(quiet, quiet, [1], radius=2))["object_csi"].item())


def test_bad_options_are_user_errors():
    field = torch.zeros(1, 1, 1, 4, 4)
    for options in ({"thresholds": [], "radius": 1}, {"thresholds": [1], "radius": 0},
                    {"thresholds": [1], "radius": 1, "min_size": 0}):
        with pytest.raises(UserError):
            object_counts(field, field, **options)
