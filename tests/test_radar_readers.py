"""Radar readers: every network's importer on the real files, tiny written files, unit conversions, bad files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

pytest.importorskip("pysteps")
pytest.importorskip("pyproj")

from radar_helpers import radar_root, write_bom_netcdf, write_fmi_pgm, write_knmi_hdf5, write_mch_gif  # noqa: E402
from sfp.data.radar.events import EVENTS  # noqa: E402
from sfp.data.radar.readers import NETWORKS, event_files, file_time, read_frame, to_mm_per_hour  # noqa: E402
from sfp.errors import UserError  # noqa: E402

SHAPES = {"fmi": (1226, 760), "mch": (640, 710), "knmi": (765, 700), "bom": (512, 512)}


@pytest.mark.parametrize("network", sorted(SHAPES))
def test_real_file_reads_as_rain_rate(network):
    event = next(e for e in EVENTS if e.network == network)
    path = event_files(NETWORKS[network], radar_root() / event.folder)[0]
    frame = read_frame(NETWORKS[network], path)
    assert frame.rain.shape == SHAPES[network]
    finite = frame.rain[np.isfinite(frame.rain)]
    assert finite.size and finite.min() >= 0 and finite.max() < 500  # mm/h, not dBZ nor mm per 5 min only


def test_fmi_pgm_written_here_converts_dbz_with_the_files_z_r(tmp_path):
    pixels = np.array([[0, 110, 255], [0, 144, 0]])  # byte b is (b - 64) / 2 dBZ; 255 is missing
    path = write_fmi_pgm(tmp_path / "201609281445_fmi.radar.composite.lowest_FIN_SUOMI1.pgm.gz", pixels)
    frame = read_frame(NETWORKS["fmi"], path)
    z_r = lambda dbz: (10 ** (dbz / 10) / 223.0) ** (1 / 1.53)  # noqa: E731  FMI's Z = 223 R^1.53
    np.testing.assert_allclose(frame.rain[[0, 1], [1, 1]], [z_r(23.0), z_r(40.0)], rtol=1e-5)
    assert frame.rain[0, 0] == 0 and np.isnan(frame.rain[0, 2])
    assert frame.time.isoformat() == "2016-09-28T14:45:00"


def test_bom_netcdf_written_here_gives_mm_per_hour(tmp_path):
    mm = np.array([[1.0, 0.0], [np.nan, 0.25]])  # mm per 10 min
    path = write_bom_netcdf(tmp_path / "66_20201031_001000.prcp-c10.nc", mm)
    frame = read_frame(NETWORKS["bom"], path)
    np.testing.assert_allclose(frame.rain, [[6.0, 0.0], [np.nan, 1.5]])
    assert frame.time.isoformat() == "2020-10-31T00:10:00"


def test_mch_gif_written_here_decodes_the_aqc_palette(tmp_path):
    indices = np.array([[0, 100], [171, 255]])
    frame = read_frame(NETWORKS["mch"], write_mch_gif(tmp_path / "AQC151351545F_00005.801.gif", indices))
    per_5_min = lambda i: (10 ** ((i - 71.5) / 20) / 316.0) ** (1 / 1.5)  # noqa: E731  pysteps' AQC table, mm
    np.testing.assert_allclose(frame.rain[[0, 1], [1, 0]], [12 * per_5_min(100), 12 * per_5_min(171)], rtol=1e-5)
    assert frame.rain[0, 0] == 0 and np.isnan(frame.rain[1, 1])


def test_knmi_hdf5_written_here_gives_mm_per_hour(tmp_path):
    values = np.array([[0, 50], [65535, 125]])  # 0.01 mm per 5 min; 65535 is missing
    frame = read_frame(NETWORKS["knmi"], write_knmi_hdf5(tmp_path / "RAD_NL25_RAP_5min_201008260000.h5", values))
    np.testing.assert_allclose(frame.rain, [[0.0, 6.0], [np.nan, 15.0]])


def test_truncated_file_is_a_one_line_error_naming_it(tmp_path):
    good = write_fmi_pgm(tmp_path / "x.pgm.gz", np.full((40, 40), 100))
    bad = tmp_path / "201609281445_fmi.radar.pgm.gz"
    bad.write_bytes(good.read_bytes()[:60])
    with pytest.raises(UserError, match=str(bad)) as info:
        read_frame(NETWORKS["fmi"], bad)
    assert "\n" not in str(info.value)


def test_mislabeled_file_is_a_one_line_error_naming_it(tmp_path):
    path = tmp_path / "AQC151351545F_00005.801.gif"
    with gzip.open(path, "wb") as handle:
        handle.write(b"not a gif at all")
    with pytest.raises(UserError, match="cannot read as mch") as info:
        read_frame(NETWORKS["mch"], path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_file_and_foreign_name(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_frame(NETWORKS["knmi"], tmp_path / "RAD_NL25_RAP_5min_201008260000.h5")
    assert file_time(NETWORKS["mch"], tmp_path / "AQC170311045F_00005.801.gif").isoformat() == "2017-01-31T10:45:00"
    with pytest.raises(UserError, match="not a knmi file name"):
        file_time(NETWORKS["knmi"], tmp_path / "rain.h5")


def test_marshall_palmer_dbz_to_rain_rate():
    metadata = {"unit": "dBZ", "transform": "dB", "zr_a": 200.0, "zr_b": 1.6, "threshold": 0.0,
                "zerovalue": -10.0, "accutime": 5.0}
    rain = to_mm_per_hour(np.array([23.0, 40.0, np.nan]), metadata)
    expected = [(10 ** 2.3 / 200) ** (1 / 1.6), (10 ** 4.0 / 200) ** (1 / 1.6)]
    np.testing.assert_allclose(rain[:2], expected, rtol=1e-6)
    assert np.isnan(rain[2])


def test_accumulation_to_rain_rate():
    rain = to_mm_per_hour(np.array([0.5, 0.0]), {"unit": "mm", "transform": None, "accutime": 5.0,
                                                  "threshold": 0.5, "zerovalue": 0.0})
    np.testing.assert_allclose(rain, [6.0, 0.0])
