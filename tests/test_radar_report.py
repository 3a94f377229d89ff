"""Radar scores per lead time from known forecasts, the table, the CSI plot and the forecast pictures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sfp.report.radar import evaluate_radar, plot_csi_per_lead, write_table
from sfp.task import RADAR


def _batch() -> tuple[torch.Tensor, ...]:
    truth = torch.zeros(2, 2, 1, 32, 32)
    truth[:, 0, :, 4:12, 4:12] = 3.0   # lead 1: 64 pixels of 3 mm/h per sample
    truth[:, 1, :, 4:12, 4:12] = 0.7   # lead 2: below 1 mm/h everywhere
    truth[0, 1, 0, 0, 0] = math.nan
    return torch.zeros(2, 3, 1), torch.ones(2, 3, 1, 32, 32), torch.zeros(2, 2, 1), truth


def test_scores_per_lead_from_known_forecasts():
    batch = _batch()
    half = batch[3].clone()
    half[:, :, :, 4:8] = 0.0  # hits on half of the rain, misses on the other half
    forecasts = {"perfect": lambda b: b[3].nan_to_num(0.0), "half": lambda b: half.nan_to_num(0.0)}
    results = evaluate_radar(forecasts, [batch], RADAR, target_len=2)
    perfect, halved = results["models"]["perfect"], results["models"]["half"]
    assert results["lead_minutes"] == [10, 20] and results["windows"] == 2
    assert perfect["csi_per_lead"]["0.5"] == [1.0, 1.0] and halved["csi_per_lead"]["0.5"] == [0.5, 0.5]
    assert perfect["csi_per_lead"]["2"][0] == 1.0 and math.isnan(perfect["csi_per_lead"]["2"][1])  # no event
    assert perfect["fss"]["1mm_8km"] == pytest.approx(1.0) and perfect["mse"] == 0.0
    assert halved["mae"] == pytest.approx((32 * 3.0 + 32 * 0.7) * 2 / (2 * 2 * 32 * 32 - 1))


def test_table_and_plot_are_written(tmp_path):
    forecasts = {"zero": lambda b: torch.zeros_like(b[3]), "truth": lambda b: b[3].nan_to_num(0.0)}
    results = evaluate_radar(forecasts, [_batch()], RADAR, target_len=2)
    table = write_table(tmp_path / "m.md", results).read_text().splitlines()
    assert table[0].startswith("| model | CSI-M | CSI 0.5") and len(table) == 4
    assert table[3].split(" | ")[1] == "1.000"
    assert plot_csi_per_lead(tmp_path / "c.png", results).stat().st_size > 1000


def test_forecast_pictures_have_big_panels_and_a_frame_per_lead(tmp_path):
    pytest.importorskip("pysteps")
    from PIL import Image

    from sfp.report.pictures import DPI, PANEL_INCHES, colour_scale, forecast_gif, forecast_png, minutes

    truth = _batch()[3][0, :, 0].numpy()
    scale = colour_scale(RADAR)
    assert scale.label == "rain rate (mm/h)"
    png = forecast_png(tmp_path / "f.png", truth, {"model": truth * 2}, scale, minutes(10))
    gif = forecast_gif(tmp_path / "f.gif", truth, {"model": truth * 2}, scale, minutes(10))
    assert PANEL_INCHES * DPI >= 128
    for path in (png, gif):
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L"))
            middle = pixels[:, pixels.shape[1] // 4]  # a column through the first panels: black frames
            frame_rows = np.flatnonzero(middle < 30)
            first_panel = frame_rows[np.flatnonzero(np.diff(frame_rows) > 1)[0] + 1] - frame_rows[0]
            assert first_panel >= 128, (path, first_panel)
    with Image.open(gif) as image:
        assert image.n_frames == 2


def test_the_vil_scale_changes_colour_at_each_csi_threshold():
    from sfp.report.pictures import colour_scale
    from sfp.task import STORMS

    scale = colour_scale(STORMS)
    below, above = ([t - 0.5 for t in STORMS.thresholds], [t + 0.5 for t in STORMS.thresholds])
    assert all(scale.norm(b) != scale.norm(a) for b, a in zip(below, above))
    assert scale.label == "VIL (0-255)"


def _prepared(path):
    """A prepared radar file of 8 windows of 12 frames, two per event, under the real events' names."""
    from sfp.data.radar import dataset

    data = np.random.default_rng(0).gamma(0.5, 2.0, size=(8, 12, 1, 16, 16)).astype(np.float32)
    arrays = {"data": data, "mask": np.isfinite(data), "event": np.repeat(np.arange(4), 2),
              "events": np.array(["fmi/20170509", "mch/20160711", "mch/20150515", "fmi/20160928"]),
              "position": np.zeros((8, 3), np.int64), "spacing_km": np.float64(2.0), "step_minutes": np.int64(10),
              "context": np.int64(6), "key": np.array("k")}
    return dataset.save(path, arrays)


@pytest.mark.parametrize("argv, words", [
    (["--data", "{t}/nosuch.npz"], "nosuch.npz: no such file"),
    (["--data", "{t}/bad.npz"], "bad.npz: cannot read"),
    (["--data", "{t}/good.npz", "--members", "0"], "members"),
    (["--data", "{t}/good.npz", "--composites", "{t}/nowhere"], "no such folder"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, words):
    from sfp.cli.main import main

    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    _prepared(tmp_path / "good.npz")
    code = main(["radar", *(part.format(t=tmp_path) for part in argv), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_the_performance_points_and_power_spectra_come_from_the_forecasts(tmp_path):
    """The half forecast hits 32 of 64 rain pixels per sample at lead 1 with no false alarm: POD 0.5, success ratio
    1; the perfect forecast's spectrum is the observations'; both views are drawn."""
    from sfp.metrics.spectrum import rapsd
    from sfp.report.radar import plot_views

    batch = _batch()
    half = batch[3].clone()
    half[:, :, :, 4:8] = 0.0
    forecasts = {"perfect": lambda b: b[3].nan_to_num(0.0), "half": lambda b: half.nan_to_num(0.0)}
    results = evaluate_radar(forecasts, [batch], RADAR, target_len=2)
    halved, perfect = results["models"]["half"]["performance"], results["models"]["perfect"]["performance"]
    column = list(RADAR.thresholds).index(1.0)
    assert halved["pod"][0][column] == pytest.approx(0.5) and halved["success_ratio"][0][column] == 1.0
    assert perfect["pod"][0][column] == 1.0 and math.isnan(perfect["pod"][1][column])  # lead 2: no rain >= 1
    spectra = results["models"]["perfect"]["rapsd"]
    assert np.asarray(spectra["forecast"]) == pytest.approx(np.asarray(spectra["observations"]))
    expected = rapsd(batch[3].nan_to_num(0.0)[:, :, 0], 2.0)[1].mean(0)  # (T, K), averaged over the 2 windows
    assert np.asarray(spectra["observations"]) == pytest.approx(expected.numpy())
    plot_views(tmp_path, results, RADAR)
    assert (tmp_path / "performance_diagram.png").stat().st_size > 0 and (tmp_path / "rapsd.png").stat().st_size > 0
