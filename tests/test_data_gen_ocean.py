"""Synthetic SST: units and shapes, the climatology's structure, heatwave patches, predictability, years as splits."""

import numpy as np
import pytest

from sfp.data import FieldDataModule, ocean
from sfp.errors import UserError

SIZE = 24


@pytest.fixture(scope="module")
def three_years() -> np.ndarray:
    return ocean.generate(3, 365, size=SIZE, seed=2, cache=False)


@pytest.fixture(scope="module")
def anomalies(three_years) -> np.ndarray:
    """SST minus the generator's own climatology, ``(days, H, W)``."""
    clim = ocean.climatology(np.arange(365), SIZE, ocean.OceanParams())
    return (three_years[:, :, 0] - clim[None]).reshape(-1, SIZE, SIZE)


def test_shape_dtype_and_plausible_temperatures(three_years):
    assert three_years.shape == (3, 365, 1, SIZE, SIZE) and three_years.dtype == np.float32
    assert np.isfinite(three_years).all() and 0 < three_years.min() and three_years.max() < 40


def test_warmer_south_and_a_larger_seasonal_cycle_north(three_years):
    rows = three_years[:, :, 0].mean(axis=(0, 3))  # (days, rows): a year's mean profile
    south, north = rows[:, :3].mean(1), rows[:, -3:].mean(1)
    # the mean falls by 14 °C across the domain; the outer three rows' centres are 21 rows apart
    assert south.mean() - north.mean() == pytest.approx(14.0 * 21 / SIZE, abs=0.5)
    assert np.ptp(north) > 1.8 * np.ptp(south)  # seasonal ranges about 10 and 3 °C


def test_the_warmest_day_varies_in_space():
    clim = ocean.climatology(np.arange(365), 32, ocean.OceanParams())
    warmest = clim.argmax(axis=0)
    assert 180 < warmest.mean() < 270 and np.ptp(warmest) >= 30


def test_heatwave_envelope_by_hand():
    age = np.array([-1.0, 0.0, 2.5, 5.0, 12.5, 20.0, 21.0])
    expected = [0.0, 0.0, 0.5, 1.0, 0.5, 0.0, 0.0]  # growth over 5 of 20 days: sin² rise, cos² decay
    np.testing.assert_allclose(ocean.heatwave_envelope(age, np.array(20.0), np.array(0.25)), expected, atol=1e-12)


def test_heatwaves_are_warm_patches_of_several_degrees(anomalies):
    assert anomalies.max() >= 3.0
    warm = (anomalies > 2.0).mean()
    assert 1e-4 < warm < 0.05  # rare, as heatwave cores are
    quiet = ocean.generate(3, 365, size=SIZE, seed=2, cache=False, events_per_year=0.0)
    assert (quiet - ocean.generate(3, 365, size=SIZE, seed=2, cache=False)).min() < -2.0  # the events make the heat


def test_anomalies_persist_for_days_and_are_lost_after_months(anomalies):
    """Persistence of the anomaly beats the climatology a few days ahead and loses to it two months ahead."""
    climatology_mse = np.mean(anomalies**2)

    def persistence_mse(lead: int) -> float:
        return float(np.mean((anomalies[lead:] - anomalies[:-lead]) ** 2))

    assert persistence_mse(1) < 0.15 * climatology_mse
    assert persistence_mse(5) < 0.6 * climatology_mse
    assert persistence_mse(60) > climatology_mse


def test_patches_drift_slowly():
    events = ocean.sample_heatwaves(np.random.default_rng(0), 3650, ocean.OceanParams())
    assert 50 < len(events.birth) < 110  # Poisson around 8 a year
    assert (np.linalg.norm(events.velocity, axis=1) <= 0.006).all()


def test_coast_is_nan_on_every_day():
    data = ocean.generate(1, 30, size=16, seed=0, cache=False, coast=0.2)
    land = ocean.land_mask(16, 0.2)
    assert 0.1 < land.mean() < 0.3
    assert np.isnan(data[0, :, 0][:, land]).all() and np.isfinite(data[0, :, 0][:, ~land]).all()


def test_same_seed_same_sea_other_seed_other_sea():
    a = ocean.generate(1, 20, size=16, seed=3, cache=False)
    np.testing.assert_array_equal(a, ocean.generate(1, 20, size=16, seed=3, cache=False))
    assert not np.array_equal(a, ocean.generate(1, 20, size=16, seed=4, cache=False))


def test_years_are_consecutive_days_of_one_series():
    """The first day of a year follows the last day of the year before as closely as any two days do."""
    data = ocean.generate(4, 365, size=16, seed=1, cache=False, events_per_year=0.0)
    flat = data.reshape(-1, 16, 16)
    steps = np.abs(np.diff(flat, axis=0)).mean(axis=(1, 2))
    assert steps[[364, 729, 1094]].max() < 3 * np.median(steps)


def test_the_data_module_deals_whole_years():
    module = FieldDataModule(dataset="ocean", n_sequences=5, frames=40, size=8,
                             dataset_kwargs={"events_per_year": 0.0},
                             windows={"context": 5, "target": 5, "stride": 1},
                             splits={"val_fraction": 0.2, "test_fraction": 0.2})
    module.setup()
    years = {}
    for split, segments in module._split(module.source).items():
        assert len(module.datasets[split]) == len(segments) * (40 - 10 + 1)  # every window inside one year
        years[split] = {segment.sequence for segment in segments}
        assert all(segment.start == 0 and segment.stop == 40 for segment in segments)
    assert sorted(len(v) for v in years.values()) == [1, 1, 3]
    assert set.union(*years.values()) == set(range(5))


@pytest.mark.parametrize("params", [{"sst": 1.0}, {"lifetime": (10.0, 5.0)}, {"growth": (0.0, 0.5)},
                                    {"coast": 1.0}, {"anomaly_memory": 0.0}, {"peak": (-1.0, 2.0)}])
def test_bad_parameters_raise_user_error(params):
    with pytest.raises(UserError):
        ocean.generate(1, 2, size=8, cache=False, **params)
