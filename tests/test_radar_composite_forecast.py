"""Whole-composite forecasts as NetCDF: pixel centres from the importer's georeferencing, leads and times, the
observations beside each model's forecast, and the file read back."""

from datetime import datetime, timedelta

import numpy as np
import pytest

from sfp.data.radar.readers import Grid
from sfp.errors import UserError
from sfp.report.composite_forecast import forecast_dataset


def test_pixel_centres_follow_the_corners_the_origin_and_the_blocks():
    grid = Grid("+proj=stere", x1=100.0, y1=-50.0, x2=500.0, y2=250.0, xpixelsize=100.0, ypixelsize=100.0,
                yorigin="upper")
    y, x = grid.centres(3, 4)
    assert x.tolist() == [150.0, 250.0, 350.0, 450.0] and y.tolist() == [200.0, 100.0, 0.0]
    y, x = grid.centres(1, 2, factor=2)  # 2x2 blocks cut from the top-left corner
    assert x.tolist() == [200.0, 400.0] and y.tolist() == [150.0]
    lower = Grid("", 0.0, 0.0, 300.0, 300.0, 100.0, 100.0, "lower")
    assert lower.centres(3, 1)[0].tolist() == [50.0, 150.0, 250.0]
    assert Grid.of({"projection": "p", "x1": 0, "y1": 0, "x2": 2, "y2": 2, "xpixelsize": 1, "ypixelsize": 1,
                    "yorigin": "lower", "cartesian_unit": "km"}) == Grid("p", 0, 0, 2, 2, 1, 1, "lower", "km")


def _frames():
    frames = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)  # frame t is 6t .. 6t + 5
    times = [datetime(2020, 1, 1, 12) + timedelta(minutes=10 * t) for t in range(5)]
    return frames, times, np.array([10.0, 0.0]), np.array([0.0, 1.0, 2.0])


def test_each_model_and_the_observations_on_the_composites_grid(tmp_path):
    import xarray as xr

    frames, times, y, x = _frames()
    last = {"last": lambda context, out: context[:, -1:].expand(-1, out, -1, -1, -1)}
    dataset = forecast_dataset(frames, times, y, x, "+proj=stere", start=1, context=2, target=3, nowcasts=last)
    assert dataset["lead"].values.tolist() == [10, 20, 30]
    assert [str(t)[:16] for t in dataset["time"].values] == ["2020-01-01T12:30", "2020-01-01T12:40",
                                                             "2020-01-01T12:50"]
    np.testing.assert_array_equal(dataset["last"].values, np.stack([frames[2]] * 3))  # the context's last frame
    np.testing.assert_array_equal(dataset["observed"].values[:2], frames[3:5])
    assert np.isnan(dataset["observed"].values[2]).all()  # past the event's end
    assert dataset.attrs["projection"] == "+proj=stere" and dataset.attrs["issued"] == "2020-01-01 12:20:00"
    dataset.to_netcdf(tmp_path / "f.nc", engine="h5netcdf")
    back = xr.open_dataset(tmp_path / "f.nc", engine="h5netcdf")
    assert back["y"].values.tolist() == [10.0, 0.0] and back["last"].attrs["units"] == "mm/h"
    with pytest.raises(UserError, match="start lies in 0..3"):
        forecast_dataset(frames, times, y, x, "", start=4, context=2, target=3, nowcasts=last)


@pytest.mark.parametrize("argv, words", [
    (["--forecast", "fmi/20170509"], "give --composites"),
    (["--forecast", "xyz/1", "--composites", "{t}"], "unknown radar event 'xyz/1'"),
    (["--event", "fmi/20170509"], "use it with --heldout"),
    (["--heldout", "{t}/runs"], "give --composites"),
])
def test_radar_options_used_wrongly_are_one_line(tmp_path, capsys, argv, words):
    from sfp.cli.main import main

    code = main(["radar", "--data", str(tmp_path / "w.npz"), "--out", str(tmp_path / "out"),
                 *(part.format(t=tmp_path) for part in argv)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and "\n" not in err
