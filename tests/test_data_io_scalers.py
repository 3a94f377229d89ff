"""Streaming per-channel statistics fit on the training split only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfp.data.scalers import RunningMoments, fit_moments
from sfp.data.windows import ArraySource, split_by_sequence, split_by_time
from sfp.errors import UserError


def _fields(seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(loc=[[[[5.0]], [[-3.0]]]], scale=[[[[2.0]], [[0.5]]]], size=(12, 6, 2, 4, 5))
    data[rng.random(data.shape) < 0.1] = np.nan
    return data.astype(np.float32)


def test_field_stats_equal_numpy_on_the_training_split_in_many_chunks():
    data = _fields()
    source = ArraySource(data)
    splits = split_by_sequence(source, 0.25, 0.25, seed=1)
    train = data[[s.sequence for s in splits["train"]]].astype(np.float64)
    moments = fit_moments(source, splits["train"], chunk_values=50)  # 50 values: one step (40) per chunk
    stats = moments.stats(sample_ndim=3)
    assert stats["mean"].shape == (2, 1, 1) and stats["mean"].dtype == torch.float32
    np.testing.assert_allclose(stats["mean"].flatten(), np.nanmean(train, axis=(0, 1, 3, 4)), rtol=1e-6)
    np.testing.assert_allclose(stats["std"].flatten(), np.nanstd(train, axis=(0, 1, 3, 4)), rtol=1e-5)
    np.testing.assert_array_equal(moments.count, np.isfinite(train).sum(axis=(0, 1, 3, 4)))


def test_stats_ignore_val_and_test_data():
    data = _fields()
    splits = split_by_sequence(ArraySource(data), 0.25, 0.25, seed=1)
    before = fit_moments(ArraySource(data), splits["train"]).stats(3)
    held_out = [s.sequence for s in splits["val"] + splits["test"]]
    data[held_out] = 1e6
    after = fit_moments(ArraySource(data), splits["train"]).stats(3)
    assert torch.equal(before["mean"], after["mean"]) and torch.equal(before["std"], after["std"])


def test_series_stats_per_variable_with_null_value_and_time_split():
    rng = np.random.default_rng(2)
    series = rng.normal(size=(200, 3)) * [1.0, 10.0, 0.1] + [0.0, 100.0, -1.0]
    series[rng.random(series.shape) < 0.05] = -9999.0
    source = ArraySource(series.astype(np.float32), series=True)
    splits = split_by_time(source, 0.1, 0.2, gap=8)
    seg = splits["train"][0]
    train = series[seg.start:seg.stop].astype(np.float32).astype(np.float64)
    train[train == -9999.0] = np.nan
    stats = fit_moments(source, splits["train"], null_value=-9999.0, chunk_values=21).stats(sample_ndim=1)
    assert stats["mean"].shape == (3,)
    np.testing.assert_allclose(stats["mean"], np.nanmean(train, axis=0), rtol=1e-5)
    np.testing.assert_allclose(stats["std"], np.nanstd(train, axis=0), rtol=1e-5)


def test_welford_merge_is_accurate_far_from_zero():
    rng = np.random.default_rng(3)
    values = 1e6 + rng.normal(scale=1e-2, size=(1000, 1))
    moments = RunningMoments()
    for chunk in np.array_split(values, 37):
        moments.update(chunk, channel_axis=1)
    np.testing.assert_allclose(moments.std(), values.std(axis=0), rtol=1e-6)
    np.testing.assert_allclose(moments.mean, values.mean(axis=0), rtol=1e-12)


def test_constant_channel_gets_unit_std_and_empty_channel_is_an_error():
    moments = RunningMoments()
    moments.update(np.array([[2.0, np.nan], [2.0, np.nan]]), channel_axis=1)
    with pytest.raises(UserError, match=r"channel\(s\) \[1\] hold no valid value"):
        moments.stats(1)
    moments = RunningMoments()
    moments.update(np.array([[2.0, 1.0], [2.0, 5.0]]), channel_axis=1)
    stats = moments.stats(1)
    assert stats["std"].tolist() == [1.0, 2.0] and stats["mean"].tolist() == [2.0, 3.0]
