"""Radar regridding, tile rule, event split, the prepared file, the data module and ``sfp data prepare``."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
import torch

from sfp.cli.main import main
from sfp.data.radar import dataset
from sfp.data.radar.datamodule import RadarDataModule
from sfp.data.radar.grid import block_factor, block_mean, on_step
from sfp.data.radar.split import split_by_event
from sfp.data.radar.tiles import TileRule, cut_windows
from sfp.errors import UserError


def test_block_mean_of_known_blocks_keeps_missing_missing():
    field = np.array([[1.0, 3.0, np.nan, np.nan],
                      [5.0, 7.0, np.nan, 2.0],
                      [0.0, 0.0, 4.0, np.nan],
                      [0.0, np.nan, 8.0, 6.0]])
    means = block_mean(field, 2)
    np.testing.assert_allclose(means, [[4.0, np.nan], [0.0, 6.0]])  # 1 valid of 4 is too few; NaN never becomes 0


def test_block_factor_and_steps():
    assert block_factor(500.0, 2.0) == 4 and block_factor(1000.0, 2.0) == 2
    with pytest.raises(UserError):
        block_factor(3000.0, 2.0)
    start = datetime(2020, 1, 1, 10, 0)
    five = [start + timedelta(minutes=5 * i) for i in range(7)]
    assert on_step(five, 10) == [0, 2, 4, 6]
    six = [start + timedelta(minutes=6 * i) for i in range(11)]
    with pytest.raises(UserError, match="not 10 min apart"):
        on_step(six, 10)


def test_tile_rule_keeps_wet_observed_windows_only():
    rule = TileRule(size=4, length=3, context=2, stride=1, min_wet=0.25, max_missing=0.1)
    frames = np.zeros((3, 4, 8), np.float32)
    frames[:2, :2, :2] = 1.0  # left tile: 4 of 16 context pixels wet -> 25 %
    frames[:2, :, 4] = 1.0    # right tile: 4 of 16 wet too ...
    frames[2, :, 5:] = np.nan  # ... but 12 of 48 window pixels missing
    windows, places = cut_windows(frames, rule)
    assert windows.shape == (1, 3, 4, 4) and places.tolist() == [[0, 0, 0]]  # first frame, row, column
    np.testing.assert_array_equal(windows[0], frames[:, :, :4])
    frames[:, :, 4:] = frames[:, :, :4]  # the right tile now the left one's twin: kept, at column 4
    assert cut_windows(frames, rule)[1].tolist() == [[0, 0, 0], [0, 0, 4]]
    assert not rule.keeps(np.full((3, 4, 4), 0.4, np.float32))  # below 0.5 mm/h is dry


def test_split_holds_out_whole_events():
    names = ["fmi/a", "mch/b", "knmi/c", "bom/d"]
    event = np.array([0, 0, 1, 2, 2, 3, 1, 0])
    splits = split_by_event(event, names, val_events=["bom/d"], test_events=["mch/b", "knmi/c"])
    assert splits == {"train": [0, 1, 7], "val": [5], "test": [2, 3, 4, 6]}
    with pytest.raises(UserError, match="unknown radar event"):
        split_by_event(event, names, ["nowhere"], ["mch/b"])
    with pytest.raises(UserError, match="both"):
        split_by_event(event, names, ["mch/b"], ["mch/b"])


@pytest.fixture
def prepared(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.gamma(0.5, 2.0, size=(8, 6, 1, 8, 8)).astype(np.float32)
    data[0, 0, 0, 0, 0] = np.nan
    arrays = {"data": data, "mask": np.isfinite(data), "event": np.array([0, 0, 1, 1, 2, 2, 3, 3]),
              "events": np.array(["fmi/a", "mch/b", "knmi/c", "bom/d"]), "position": np.zeros((8, 3), np.int64),
              "spacing_km": np.float64(2.0),
              "step_minutes": np.int64(10), "context": np.int64(3), "key": np.array("k")}
    return dataset.save(tmp_path / "radar.npz", arrays), data


def test_datamodule_batches_in_mm_per_hour_split_by_event(prepared):
    path, data = prepared
    dm = RadarDataModule(str(path), val_events=["bom/d"], test_events=["mch/b", "knmi/c"], augment=True,
                         windows={"context": 3, "target": 3}, loading={"batch_size": 4})
    dm.setup()
    assert dm.task.name == "radar" and dm.task.fss_windows == (4, 16) and dm.null_value is None
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [2, 2, 4]
    cx, cy, tx, ty = next(iter(dm.test_dataloader()))
    torch.testing.assert_close(torch.cat([cy, ty], 1), torch.from_numpy(data[2:6]))  # test: events 1 and 2, as is
    train_mean = float(np.nanmean(data[0:2]))  # event 0 only: the statistics never see held-out events
    assert dm.normalization_stats()["mean"].reshape(-1).item() == pytest.approx(train_mean, rel=1e-5)


def test_training_windows_are_rotated_or_flipped_copies(prepared):
    path, data = prepared
    dm = RadarDataModule(str(path), val_events=["bom/d"], test_events=["mch/b", "knmi/c"],
                         windows={"context": 3, "target": 3})
    dm.setup()
    _, cy, _, ty = dm.datasets["train"][1]
    window = torch.cat([cy, ty]).nan_to_num(-1)
    original = torch.from_numpy(data[1]).nan_to_num(-1)
    variants = [torch.rot90(original, k, (-2, -1)) for k in range(4)]
    variants += [v.flip(-1) for v in variants]
    assert any(torch.equal(window, v) for v in variants)


def test_prepared_file_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        dataset.load(tmp_path / "none.npz")
    other = tmp_path / "other.npz"
    np.savez(other, data=np.zeros((2, 3)))
    with pytest.raises(UserError, match=f"{other}: not a prepared radar file"):
        dataset.load(other)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(other.read_bytes()[:50])
    with pytest.raises(UserError, match=str(cut)):
        dataset.load(cut)


def test_cli_prepare_without_data_or_internet_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SFP_CACHE", str(tmp_path / "cache"))
    pysteps_datasets = pytest.importorskip("pysteps.datasets")

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(pysteps_datasets, "download_pysteps_data", offline)
    assert main(["data", "prepare", "radar", "--out", str(tmp_path / "r.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot be downloaded" in err and "\n" not in err


def test_cli_info_reads_a_prepared_file(prepared, capsys):
    path, data = prepared
    assert main(["data", "info", str(path), "--thresholds", "0.5,5"]) == 0
    out = capsys.readouterr().out
    assert str(data.shape) in out and "1 NaN/inf" in out
    assert main(["data", "info", str(path)]) == 0  # a prepared radar file: the radar task's mm/h thresholds
    thresholds = [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.strip().startswith(">=")]
    assert thresholds == ["0.5", "1", "2", "5", "10"]
