"""Marine heatwaves of a written OISST-layout file: the base period's climatology, land, and `sfp data info`.

The file: daily SST on a 3 x 4 grid, 2001-2003, one land pixel (NaN). Every day of 2001 is 20 °C and of 2002
21 °C, so every pooled window of the base period 2001-2002 holds both values and its 90th percentile is 21 °C;
2003 is 20.5 °C except at pixel (1, 2), 24.5 °C on 10-19 March: one heatwave of 10 days, 4 °C above a
climatology near 20.5 °C, more than four times threshold minus climatology (category IV).
"""

import numpy as np
import pytest
import xarray as xr

from sfp.cli.main import main
from sfp.data.readers.sst import heatwave_statistics, sst_climatology
from sfp.errors import UserError

BASE = ("2001-01-01", "2002-12-31")


@pytest.fixture(scope="module")
def sst_path(tmp_path_factory):
    dates = np.arange("2001-01-01", "2004-01-01", dtype="datetime64[D]")
    year = dates.astype("datetime64[Y]").astype(int) + 1970
    sst = np.select([year == 2001, year == 2002], [20.0, 21.0], 20.5)[:, None, None] * np.ones((1, 3, 4))
    march = (dates >= np.datetime64("2003-03-10")) & (dates <= np.datetime64("2003-03-19"))
    sst[march, 1, 2] = 24.5
    sst[:, 0, 3] = np.nan  # land
    path = tmp_path_factory.mktemp("oisst") / "sst.day.mean.nc"
    xr.Dataset({"sst": (("time", "lat", "lon"), sst.astype(np.float32))},
               coords={"time": dates.astype("datetime64[ns]"), "lat": [40.125, 40.375, 40.625],
                       "lon": [200.125, 200.375, 200.625, 200.875]}).to_netcdf(path, engine="h5netcdf")
    return path


def test_climatology_of_the_base_period(sst_path):
    clim = sst_climatology(sst_path, BASE)
    assert clim.seas.shape == (366, 3, 4)
    assert np.isnan(clim.seas[:, 0, 3]).all()  # land has no climatology
    np.testing.assert_allclose(clim.thresh[:, 1, 2], 21.0, atol=1e-5)
    np.testing.assert_allclose(clim.seas[100:300, 1, 2], 20.5, atol=1e-5)


def test_one_category_four_heatwave(sst_path):
    stats = heatwave_statistics(sst_path, BASE)
    assert stats["ocean_pixels"] == 11 and stats["days"] == 3 * 365
    assert stats["events"] == 1 and stats["mean_duration"] == 10
    assert stats["heatwave_fraction"] == pytest.approx(10 / (11 * 1095))
    assert stats["category_4_fraction"] == pytest.approx(10 / (11 * 1095)) and stats["category_1_fraction"] == 0
    assert stats["max_intensity"] == pytest.approx(4.0, abs=1e-4)


def test_sfp_data_info_prints_heatwave_statistics(sst_path, capsys):
    assert main(["data", "info", str(sst_path), "--variable", "sst", "--heatwaves", ",".join(BASE)]) in (0, None)
    out = capsys.readouterr().out
    assert "1 events" in out and "mean duration 10 days" in out and "11 ocean pixels" in out
    assert "IV extreme" in out


def test_dates_must_be_consecutive_days(tmp_path):
    dates = np.array(["2001-01-01", "2001-01-03"], dtype="datetime64[ns]")
    path = tmp_path / "gappy.nc"
    xr.Dataset({"sst": (("time", "lat", "lon"), np.zeros((2, 1, 1), np.float32))},
               coords={"time": dates, "lat": [0.0], "lon": [0.0]}).to_netcdf(path, engine="h5netcdf")
    with pytest.raises(UserError, match="consecutive daily"):
        heatwave_statistics(path, ("2001-01-01", "2001-01-03"))
