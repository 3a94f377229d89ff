"""Marine heatwave detection: the calendar, the climatology, events and categories by hand, and against heatwave3."""

import numpy as np
import pytest
import torch

from sfp.metrics import heatwaves

# exceedances: a 4-day run (too short), 5 days, a 2-day gap, 5 days (joined), a 3-day gap, 6 days (its own event)
EXCEED = [1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1]
EVENT = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1]


def test_leap_year_numbering():
    dates = np.array(["2001-02-28", "2001-03-01", "2004-02-29", "2004-03-01", "2003-12-31", "2004-12-31"],
                     dtype="datetime64[D]")
    year, day = heatwaves.calendar_days(dates)
    assert year.tolist() == [2001, 2001, 2004, 2004, 2003, 2004]
    assert day.tolist() == [59, 61, 60, 61, 366, 366]
    assert heatwaves.synthetic_days(367)[[0, 58, 59, 364, 365]].tolist() == [1, 59, 61, 366, 1]


def test_events_need_five_days_and_join_across_two_day_gaps():
    exceed = torch.tensor(EXCEED, dtype=torch.bool)
    assert heatwaves.event_days(exceed).int().tolist() == EVENT
    stacked = torch.stack([exceed, exceed.flip(0)])  # leading axes are independent series
    assert heatwaves.event_days(stacked)[1].int().tolist() == EVENT[::-1]
    assert heatwaves.event_days(exceed, max_gap=3).int().tolist() == [0] * 5 + [1] * 21


def test_onsets_by_hand():
    onsets = heatwaves.event_onsets(torch.tensor(EVENT, dtype=torch.bool))
    assert onsets.tolist() == [-1] * 5 + [5] * 12 + [-1] * 3 + [20] * 6


def test_daily_categories_by_multiples_of_threshold_minus_climatology():
    seas, thresh = torch.full((12,), 10.0), torch.full((12,), 11.0)  # thresh - seas = 1 °C
    sst = torch.tensor([11.5, 12.5, 13.5, 19.0, 11.2, 10.5, 11.5, 12.0, 12.5, 13.0, 14.6, 9.0])
    found = heatwaves.detect(sst, seas, thresh)
    assert found.event.int().tolist() == [1] * 11 + [0]  # two 5-day events joined across day 5
    assert found.category.tolist() == [1, 2, 3, 4, 1, 0, 1, 2, 2, 3, 4, 0]  # 19 °C is 9x: capped at IV
    torch.testing.assert_close(found.intensity, sst - 10.0)
    missing = heatwaves.detect(sst.where(torch.arange(12) != 2, torch.nan), seas, thresh)  # a missing day ends a run
    assert missing.event.int().tolist() == [0] * 6 + [1] * 5 + [0]


def test_climatology_pools_neighbouring_days_of_neighbouring_years():
    """Two 365-day years, every day of the first 0 °C and of the second 1 °C, no smoothing. On 1 January the
    window holds 1-6 January of both years and the first year's last five days: 11 zeros and 6 ones."""
    sst = np.repeat([0.0, 1.0], 365)[:, None]
    clim = heatwaves.climatology(sst, np.repeat([0, 1], 365), np.tile(heatwaves.synthetic_days(365), 2),
                                 smooth_width=1)
    assert clim.seas[0, 0] == pytest.approx(6 / 17) and clim.seas[365, 0] == pytest.approx(11 / 17)
    assert clim.seas[100, 0] == pytest.approx(0.5) and clim.thresh[100, 0] == pytest.approx(1.0)
    smoothed = heatwaves.climatology(sst, np.repeat([0, 1], 365), np.tile(heatwaves.synthetic_days(365), 2))
    assert smoothed.seas[100, 0] == pytest.approx(0.5)  # the running mean keeps a constant


def test_climatology_percentile_and_smoothing_by_hand():
    """Values 0..9 in ten years on every day: mean 4.5, 90th percentile (linear) 8.1 everywhere."""
    years = np.repeat(np.arange(10), 365)
    sst = years.astype(float)[:, None, None] * np.ones((1, 2, 3))
    clim = heatwaves.climatology(sst, years, np.tile(heatwaves.synthetic_days(365), 10))
    assert clim.seas.shape == (366, 2, 3)
    np.testing.assert_allclose(clim.seas[30:330], 4.5, atol=1e-5)
    np.testing.assert_allclose(clim.thresh[30:330], 8.1, atol=1e-5)


# ----- against heatwave3 (heatwaveR's C++ core), installed with the test extra -----


def _series_with_heatwaves(dates: np.ndarray) -> np.ndarray:
    """Daily SST ``(T, 2, 3)``: a seasonal cycle, red noise and warm spells of 3-20 days, 1-6 °C."""
    rng = np.random.default_rng(7)
    t = np.arange(len(dates))
    noise = np.zeros((len(t), 2, 3))
    for day in range(1, len(t)):
        noise[day] = 0.8 * noise[day - 1] + 0.4 * rng.standard_normal((2, 3))
    sst = 15 + 4 * np.cos(2 * np.pi * (t - 220) / 365.25)[:, None, None] + noise
    for start in rng.integers(0, len(t) - 30, 60):
        length, peak = rng.integers(3, 21), rng.uniform(1, 6)
        sst[start:start + length] += peak * np.sin(np.pi * (np.arange(length) + 0.5) / length)[:, None, None]
    return sst.astype(np.float32)


def _days_last(values: np.ndarray) -> np.ndarray:
    return np.moveaxis(values, 0, -1)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A written SST file, heatwave3's climatology of its first seven years, and its detection on the last three."""
    hw3 = pytest.importorskip("heatwave3")
    xr = pytest.importorskip("xarray")
    folder = tmp_path_factory.mktemp("heatwave3")
    dates = np.arange("2001-01-01", "2011-01-01", dtype="datetime64[D]")
    sst = _series_with_heatwaves(dates)
    xr.Dataset({"sst": (("time", "lat", "lon"), sst)},
               coords={"time": dates.astype("datetime64[ns]"), "lat": [10.0, 10.25], "lon": [0.0, 0.25, 0.5]},
               ).to_netcdf(folder / "sst.nc", engine="h5netcdf")
    path = hw3.ts2clm3(str(folder / "sst.nc"), str(folder / "run"), ("2001-01-01", "2007-12-31"), roundClm=False,
                       quiet=True, n_threads=1)
    with xr.open_dataset(path) as clim:
        seas, thresh = (clim[v].transpose("doy", "lat", "lon").values.astype(np.float32) for v in ("seas", "thresh"))
    test = dates >= np.datetime64("2008-01-01")
    year, day = heatwaves.calendar_days(dates)
    event, number, category = hw3.detect_event_array3(
        _days_last(sst[test]), _days_last(seas[day[test] - 1]), _days_last(thresh[day[test] - 1]),
        outputs=("event", "event_no", "category"), n_threads=1)
    return {"sst": sst, "year": year, "day": day, "train": dates < np.datetime64("2008-01-01"), "test": test,
            "clim": heatwaves.Climatology(seas, thresh), "event": event, "number": number, "category": category}


def test_climatology_matches_heatwave3(reference):
    train = reference["train"]
    ours = heatwaves.climatology(reference["sst"][train], reference["year"][train], reference["day"][train])
    # equal to float precision, except within a month of 29 February (within 0.001 °C there)
    np.testing.assert_allclose(ours.seas, reference["clim"].seas, atol=1e-3)
    np.testing.assert_allclose(ours.thresh, reference["clim"].thresh, atol=1e-3)
    away = np.r_[0:30, 90:366]
    np.testing.assert_allclose(ours.thresh[away], reference["clim"].thresh[away], atol=1e-4)


def _detect_test_years(reference, clim: heatwaves.Climatology) -> heatwaves.Detection:
    seas, thresh = clim.on(reference["day"][reference["test"]])
    sst = reference["sst"][reference["test"]]
    return heatwaves.detect(*(torch.from_numpy(_days_last(a).copy()) for a in (sst, seas, thresh)))


def test_event_days_onsets_and_categories_match_heatwave3(reference):
    found = _detect_test_years(reference, reference["clim"])
    assert reference["event"].sum() > 50  # the series has heatwaves to find
    np.testing.assert_array_equal(found.event.numpy(), reference["event"])
    np.testing.assert_array_equal(found.category.numpy(), reference["category"])
    number = torch.from_numpy(reference["number"].astype(np.int64))
    reference_starts = (number > 0) & (number != torch.nn.functional.pad(number, (1, 0))[..., :-1])
    ours_starts = heatwaves.event_onsets(found.event) == torch.arange(found.event.shape[-1])
    np.testing.assert_array_equal(ours_starts.numpy(), reference_starts.numpy())


def test_own_climatology_finds_the_same_event_days(reference):
    train = reference["train"]
    ours = heatwaves.climatology(reference["sst"][train], reference["year"][train], reference["day"][train])
    found = _detect_test_years(reference, ours)
    np.testing.assert_array_equal(found.event.numpy(), reference["event"])


def test_a_skipped_year_lends_no_neighbouring_days():
    """Years 0 and 2 only (year 1 went to validation): 1 January pools 1-6 January of both, nothing from December."""
    sst = np.repeat([0.0, 1.0], 365)[:, None]
    clim = heatwaves.climatology(sst, np.repeat([0, 2], 365), np.tile(heatwaves.synthetic_days(365), 2),
                                 smooth_width=1)
    assert clim.seas[0, 0] == pytest.approx(0.5) and clim.seas[365, 0] == pytest.approx(0.5)
