"""Paired bootstrap intervals (sfp.metrics.bootstrap): identical models, a systematic difference, the coverage of
a known mean difference, and the metrics rebuilt from per-sequence statistics."""

import numpy as np
import pytest

from sfp.errors import UserError
from sfp.metrics.bootstrap import csi_m_of_counts, mean_of_sums, paired_bootstrap


def _sums(values: np.ndarray) -> np.ndarray:
    """One value per sequence as (sum, count) statistics."""
    return np.stack([values, np.ones_like(values)], axis=-1)


def test_identical_models_change_by_nothing_in_every_resample():
    old = _sums(np.random.default_rng(0).normal(10, 2, size=30))
    interval = paired_bootstrap(old.copy(), old, mean_of_sums, resamples=200)
    assert (interval.change, interval.low, interval.high) == (0.0, 0.0, 0.0)
    assert not interval.significant


def test_a_systematic_difference_is_significant():
    rng = np.random.default_rng(1)
    old = rng.normal(10, 2, size=30)
    scaled = paired_bootstrap(_sums(1.5 * old), _sums(old), mean_of_sums, resamples=200)
    # paired: every resample's means are in the ratio 1.5, so the interval is that one value
    assert [scaled.change, scaled.low, scaled.high] == pytest.approx([0.5, 0.5, 0.5])
    noisy = paired_bootstrap(_sums(old - 2 + rng.normal(0, 1, size=30)), _sums(old), mean_of_sums, resamples=500)
    assert noisy.significant and noisy.high < 0
    assert noisy.low < noisy.change < noisy.high


def test_the_interval_covers_a_known_relative_change_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    true_change, covered = 0.5 / 10, 0
    for repetition in range(200):
        old = rng.normal(10, 2, size=40)
        new = old + rng.normal(0.5, 1, size=40)  # mean 10.5 against 10: +5 %
        interval = paired_bootstrap(_sums(new), _sums(old), mean_of_sums, resamples=400, seed=repetition)
        covered += interval.low <= true_change <= interval.high
    assert 0.88 <= covered / 200 <= 0.99


def test_the_draws_are_seeded():
    rng = np.random.default_rng(3)
    old = _sums(rng.normal(10, 2, size=20))
    new = _sums(rng.normal(11, 2, size=20))
    first, again = (paired_bootstrap(new, old, mean_of_sums, resamples=100, seed=7) for _ in range(2))
    assert first == again
    assert paired_bootstrap(new, old, mean_of_sums, resamples=100, seed=8) != first


def test_csi_m_is_pooled_from_counts_over_the_defined_thresholds():
    # two sequences, two thresholds, (hits, misses, false alarms); the second threshold never has an event
    counts = np.array([[[2, 1, 1], [0, 0, 0]], [[4, 1, 3], [0, 0, 0]]], dtype=float)
    assert csi_m_of_counts(counts.sum(0)) == pytest.approx(6 / 12)  # pooled (6, 2, 4), not the mean of 1/2 and 1/2
    better = counts.copy()
    better[:, 0, 0] += 1  # a hit more in each sequence: 8 / 14
    interval = paired_bootstrap(better, counts, csi_m_of_counts, resamples=100)
    assert interval.change == pytest.approx((8 / 14 - 6 / 12) / (6 / 12))
    assert np.isnan(csi_m_of_counts(np.zeros((2, 3))))


def test_a_zero_reference_or_unpaired_statistics_are_refused():
    with pytest.raises(UserError, match="no relative change"):
        paired_bootstrap(_sums(np.ones(3)), _sums(np.zeros(3)), mean_of_sums)
    with pytest.raises(UserError, match="one row per sequence"):
        paired_bootstrap(_sums(np.ones(3)), _sums(np.ones(4)), mean_of_sums)
