"""Sliding windows, time features and leak-free splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfp.data.windows import (
    ArraySource,
    Segment,
    WindowDataset,
    split_by_sequence,
    split_by_time,
    time_features,
)
from sfp.errors import UserError


def _sequences(n=3, t=10, shape=(2, 3)):
    """Values that encode (sequence, step) so every window can be traced back: 100 * seq + step."""
    seq = np.arange(n)[:, None] * 100.0 + np.arange(t)[None, :]
    return np.broadcast_to(seq.reshape((n, t) + (1,) * len(shape)), (n, t) + shape).astype(np.float32)


def test_windows_cover_each_sequence_with_stride_and_never_cross():
    data = WindowDataset(ArraySource(_sequences()), context=3, target=2, stride=2)
    # per sequence of 10 steps, windows of 5 start at 0, 2, 4 (6 + 5 > 10)
    assert len(data) == 3 * 3
    starts = []
    for cx, cy, tx, ty in data:
        assert cy.shape == (3, 2, 3) and ty.shape == (2, 2, 3) and cx.shape == (3, 1) and tx.shape == (2, 1)
        steps = torch.cat([cy, ty])[:, 0, 0]
        assert len(set((steps // 100).tolist())) == 1  # one sequence per window
        assert torch.equal(torch.diff(steps), torch.ones(4))
        starts.append(int(steps[0]))
    assert starts == [0, 2, 4, 100, 102, 104, 200, 202, 204]


def test_default_stride_is_target_so_targets_tile():
    data = WindowDataset(ArraySource(_sequences(n=1, t=13)), context=4, target=3)
    targets = torch.cat([ty[:, 0, 0] for _, _, _, ty in data])
    assert targets.tolist() == [4, 5, 6, 7, 8, 9, 10, 11, 12]


def test_position_feature_within_sequence_and_window():
    source = ArraySource(_sequences(n=1, t=11))
    cx, _, tx, _ = WindowDataset(source, context=2, target=2, stride=3)[1]  # steps 3..6 of 0..10
    np.testing.assert_allclose(torch.cat([cx, tx])[:, 0], [0.3, 0.4, 0.5, 0.6], rtol=1e-6)
    cx, _, tx, _ = WindowDataset(source, context=2, target=3, stride=3, position="window")[1]
    np.testing.assert_allclose(torch.cat([cx, tx])[:, 0], [0.0, 0.25, 0.5, 0.75, 1.0])


def test_calendar_features_hand_computed():
    stamps = np.array(["2019-01-01T00:00", "2019-01-01T06:00", "2019-07-02T12:00"], dtype="datetime64[ns]")
    features = time_features(np.arange(3), 3, stamps)
    assert features.shape == (3, 5) and features.dtype == np.float32
    # 06:00 is a quarter day; 2019-07-02T12:00 is 182.5 days into the year
    np.testing.assert_allclose(features[:, 0], [0, 0.5, 1])
    np.testing.assert_allclose(features[1, 3:], [1, 0], atol=1e-6)
    np.testing.assert_allclose(features[2, 3:], [0, -1], atol=1e-6)
    year = 182.5 / 365.2425
    np.testing.assert_allclose(features[2, 1:3], [np.sin(2 * np.pi * year), np.cos(2 * np.pi * year)], atol=1e-6)
    np.testing.assert_allclose(features[0, 1:], [0, 1, 0, 1], atol=1e-6)


def test_calendar_needs_timestamps():
    with pytest.raises(UserError, match="timestamps"):
        WindowDataset(ArraySource(_sequences()), context=2, target=2, calendar=True)


def test_series_and_segments():
    series = np.arange(30, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)
    source = ArraySource(series, series=True)
    assert (source.num_sequences, source.sequence_length, source.sample_shape) == (1, 30, (4,))
    data = WindowDataset(source, context=3, target=1, stride=1, segments=[Segment(0, 10, 16)])
    assert [int(cy[0, 0]) for cy, *_ in ((d[1],) for d in data)] == [10, 11, 12]


def test_window_dataset_reads_only_its_window():
    class Counting(ArraySource):
        reads = []

        def read(self, sequence, start, stop):
            self.reads.append((sequence, start, stop))
            return super().read(sequence, start, stop)

    data = WindowDataset(Counting(_sequences(n=50, t=40)), context=5, target=5, stride=10)
    data[17]
    assert Counting.reads == [(4, 10, 20)]


@pytest.mark.parametrize("kwargs, message", [
    ({"context": 8, "target": 3}, "longer than the data"),
    ({"context": 0, "target": 3}, "context must be a positive integer"),
    ({"context": 2, "target": 3, "stride": 0}, "stride must be"),
    ({"context": 2, "target": 3, "position": "global"}, "position must be"),
    ({"context": 2, "target": 3, "segments": [(0, 4, 12)]}, "outside the source"),
])
def test_bad_window_arguments(kwargs, message):
    with pytest.raises(UserError, match=message):
        WindowDataset(ArraySource(_sequences()), **kwargs)


def test_split_by_sequence_is_disjoint_complete_and_seeded():
    source = ArraySource(_sequences(n=20, t=4, shape=(1,)))
    splits = split_by_sequence(source, 0.2, 0.1, seed=3)
    ids = {name: [s.sequence for s in segs] for name, segs in splits.items()}
    assert [len(ids[n]) for n in ("train", "val", "test")] == [14, 4, 2]
    assert sorted(ids["train"] + ids["val"] + ids["test"]) == list(range(20))
    assert all(s.start == 0 and s.stop == 4 for segs in splits.values() for s in segs)
    assert split_by_sequence(source, 0.2, 0.1, seed=3) == splits
    assert split_by_sequence(source, 0.2, 0.1, seed=4) != splits


def test_split_by_time_leaves_a_gap_no_window_straddles():
    source = ArraySource(np.arange(110, dtype=np.float32)[:, None], series=True)
    splits = split_by_time(source, 0.1, 0.1, gap=5)
    assert splits == {"train": [Segment(0, 0, 80)], "val": [Segment(0, 85, 95)], "test": [Segment(0, 100, 110)]}
    steps = {}
    for name, segments in splits.items():
        data = WindowDataset(source, context=4, target=1, stride=1, segments=segments)
        steps[name] = {int(v) for item in data for v in torch.cat([item[1], item[3]])[:, 0]}
    assert max(steps["train"]) + 5 < min(steps["val"]) and max(steps["val"]) + 5 < min(steps["test"])


@pytest.mark.parametrize("val, test, message", [(1.2, 0.1, "val_fraction"), (0.1, -0.1, "test_fraction"),
                                                (0.5, 0.5, "below 1"), (0.6, 0.3, "too few")])
def test_bad_fractions(val, test, message):
    with pytest.raises(UserError, match=message):
        split_by_sequence(ArraySource(_sequences(n=3, t=4)), val, test, seed=0)
