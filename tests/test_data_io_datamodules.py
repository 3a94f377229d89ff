"""Data modules: splits without overlap, statistics from the training split, batch shapes, augmentation, YAML."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data_io_files import write_fno_hdf5, write_sevir, write_sst
from sfp.data.datamodules import FieldDataModule, SeriesAugment, SeriesDataModule
from sfp.data.file_datamodules import FNODataModule, NetCDFDataModule, SEVIRDataModule
from sfp.data.registry import get_dataset
from sfp.data.sensors import extract_datapoints
from sfp.errors import UserError
from sfp.task import SEVIR_THRESHOLDS


def _sequences_of(dataset) -> set[int]:
    return {int(s) for s in dataset.index[:, 0]}


def _epoch_sum(loader) -> float:
    """Sum of every value handed out in one pass: independent of the order of the batches."""
    return sum(float(torch.cat([b[1].flatten(), b[3].flatten()]).double().sum()) for b in loader)


# ---------------------------------------------------------------- generated fields

SMALL_STORMS = dict(dataset="storms", n_sequences=10, frames=6, size=16, windows={"context": 3, "target": 3},
                    loading={"batch_size": 4}, splits={"val_fraction": 0.2, "test_fraction": 0.2})


def test_field_module_batches_splits_and_stats():
    dm = FieldDataModule(**SMALL_STORMS, seed=1)
    assert dm.sample_shape == (1, 16, 16) and dm.d_x == 1 and dm.task.thresholds == SEVIR_THRESHOLDS
    dm.prepare_data()
    dm.setup("fit")
    ids = {name: _sequences_of(dm.datasets[name]) for name in ("train", "val", "test")}
    assert [len(ids[n]) for n in ("train", "val", "test")] == [6, 2, 2]
    assert set().union(*ids.values()) == set(range(10))
    cx, cy, tx, ty = next(iter(dm.train_dataloader()))
    assert cx.shape == (4, 3, 1) and tx.shape == (4, 3, 1) and cy.shape == ty.shape == (4, 3, 1, 16, 16)
    assert cy.dtype == torch.float32 and float(ty.max()) <= 255 and float(ty.min()) >= 0
    spec = get_dataset("storms")
    data = spec.generate(**{**spec.defaults, "n": 10, "frames": 6, "size": 16, "seed": 1}).astype(np.float64)
    train = data[sorted(ids["train"])]
    stats = dm.normalization_stats()
    assert stats["mean"].shape == (1, 1, 1)
    np.testing.assert_allclose(stats["mean"].flatten(), [train.mean()], rtol=1e-5)
    np.testing.assert_allclose(stats["std"].flatten(), [train.std()], rtol=1e-5)


def test_field_module_is_reproducible_from_its_seed():
    def first_batch(seed):
        dm = FieldDataModule(**SMALL_STORMS, seed=seed)
        return next(iter(dm.train_dataloader()))[1]

    assert torch.equal(first_batch(3), first_batch(3))
    assert not torch.equal(first_batch(3), first_batch(4))


def test_train_order_changes_between_epochs_but_not_the_data():
    dm = FieldDataModule(**SMALL_STORMS, seed=0)
    loader = dm.train_dataloader()
    epochs, sums = [], []
    for epoch in range(2):
        loader.epoch_sampler.set_epoch(epoch)  # as the Trainer does
        epochs.append(torch.cat([b[1] for b in loader]))
        sums.append(_epoch_sum(loader))
    assert not torch.equal(epochs[0], epochs[1])
    assert sums[0] == pytest.approx(sums[1], rel=1e-12)
    assert torch.equal(torch.cat([b[1] for b in dm.val_dataloader()]), torch.cat([b[1] for b in dm.val_dataloader()]))


@pytest.mark.parametrize("kwargs, message", [
    ({"dataset": "hurricanes"}, "hurricanes"),
    ({"dataset": "sensors"}, "series dataset"),
    ({"windows": {"context": 4, "target": 3}}, "longer than the 6 frames"),
    ({"windows": {"stride": 0}}, "windows.stride"),
    ({"splits": {"val_fraction": 1.5}}, "val_fraction"),
    ({"splits": {"test_fraction": -0.1}}, "test_fraction"),
    ({"loading": {"batch_size": 0}}, "loading.batch_size"),
    ({"loading": {"num_workers": -1}}, "loading.num_workers"),
    ({"windows": {"context": 3, "target": 3, "horizon": 2}}, "unknown option 'horizon'"),
    ({"loading": 4}, "loading must be a mapping"),
    ({"dataset_kwargs": {"no_such_parameter": 1}}, "no_such_parameter"),
])
def test_field_module_bad_arguments(kwargs, message):
    with pytest.raises(UserError, match=message):
        dm = FieldDataModule(**{**SMALL_STORMS, **kwargs})
        dm.prepare_data()


# ---------------------------------------------------------------- FNO file

def test_fno_module_splits_by_trajectory_and_fits_train_only(tmp_path):
    rng = np.random.default_rng(0)
    u = rng.normal(size=(10, 8, 6, 9)) * 3 + 1
    path = write_fno_hdf5(tmp_path / "ns.h5", u)
    dm = FNODataModule(str(path), seed=2, windows={"context": 3, "target": 2},
                       splits={"val_fraction": 0.2, "test_fraction": 0.2}, loading={"batch_size": 3})
    dm.setup()
    ids = {name: _sequences_of(dm.datasets[name]) for name in ("train", "val", "test")}
    assert len(ids["train"]) == 6 and not (ids["train"] & (ids["val"] | ids["test"]))
    assert len(dm.datasets["train"]) == 6 * 3  # windows of 5 at steps 0, 2, 4 of 9
    stats = dm.normalization_stats()
    train = u[sorted(ids["train"])].astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(stats["mean"].flatten(), [train.mean()], rtol=1e-5)
    np.testing.assert_allclose(stats["std"].flatten(), [train.std()], rtol=1e-5)
    cx, cy, tx, ty = next(iter(dm.val_dataloader()))
    assert cy.shape == (3, 3, 1, 8, 6) and ty.shape == (3, 2, 1, 8, 6) and dm.sample_shape == (1, 8, 6)
    assert dm.task.tke

    u[sorted(ids["val"] | ids["test"])] = 1e3  # held-out data must not move the statistics
    write_fno_hdf5(tmp_path / "ns2.h5", u)
    dm2 = FNODataModule(str(tmp_path / "ns2.h5"), seed=2, windows={"context": 3, "target": 2},
                        splits={"val_fraction": 0.2, "test_fraction": 0.2})
    assert torch.equal(dm2.normalization_stats()["mean"], stats["mean"])


def test_fno_module_window_too_long(tmp_path):
    path = write_fno_hdf5(tmp_path / "ns.h5", np.zeros((4, 4, 4, 5)))
    with pytest.raises(UserError, match="longer than the data"):
        FNODataModule(str(path), windows={"context": 3, "target": 3},
                      splits={"val_fraction": 0.25, "test_fraction": 0.25}).setup()


# ---------------------------------------------------------------- SEVIR files

def test_sevir_module_time_split_and_calendar_features(tmp_path):
    rng = np.random.default_rng(1)
    times = ["2018-03-01 10:00:00", "2018-08-01 10:00:00", "2019-02-01 10:00:00", "2019-08-01 10:00:00"]
    write_sevir(tmp_path, [(t, rng.integers(0, 255, size=(12, 12, 49), dtype=np.uint8)) for t in times])
    dm = SEVIRDataModule(str(tmp_path), size=6, loading={"batch_size": 2})
    assert (dm.context, dm.target, dm.d_x, dm.sample_shape) == (13, 12, 5, (1, 6, 6))
    assert dm.task.value_scale == 255.0
    dm.setup()
    assert [len(dm.datasets[n]) for n in ("train", "val", "test")] == [2 * 3, 3, 3]  # 3 windows per event
    cx, cy, tx, ty = next(iter(dm.test_dataloader()))
    assert cx.shape == (2, 13, 5) and cy.shape == (2, 13, 1, 6, 6) and ty.shape == (2, 12, 1, 6, 6)
    # the event of 2019-08-01 10:00 starts 120 min earlier: 08:00 UTC is a third of a day
    np.testing.assert_allclose(cx[0, 0, 3:], [np.sin(2 * np.pi / 3), np.cos(2 * np.pi / 3)], atol=1e-5)


def test_sevir_module_needs_training_events(tmp_path):
    write_sevir(tmp_path, [("2019-08-01 10:00:00", np.zeros((12, 12, 49), np.uint8))])
    with pytest.raises(UserError, match="no SEVIR event before 2019-01-01"):
        SEVIRDataModule(str(tmp_path), size=6).setup()


# ---------------------------------------------------------------- NetCDF file

def test_netcdf_module_time_split_land_stays_nan(tmp_path):
    times = np.arange("2015-01-01", "2015-04-11", dtype="datetime64[D]").astype("datetime64[ns]")  # 100 days
    lat, lon = np.linspace(10.0, -10.0, 5), np.arange(0.0, 40.0, 10.0)
    rng = np.random.default_rng(2)
    sst = np.round(rng.uniform(0, 30, size=(100, 5, 4)), 2)
    sst[:, 0, 0] = np.nan
    path = write_sst(tmp_path / "sst.nc", sst, times, lat, lon)
    dm = NetCDFDataModule(str(path), "sst", windows={"context": 5, "target": 5},
                          splits={"val_fraction": 0.2, "test_fraction": 0.2}, loading={"batch_size": 4})
    dm.setup()
    segments = {name: (int(dm.datasets[name].index[:, 1].min()), int(dm.datasets[name].index[:, 1].max()) + 10)
                for name in ("train", "val", "test")}
    assert segments["train"][1] + 10 <= segments["val"][0] and segments["val"][1] + 10 <= segments["test"][0]
    first, last = segments["train"]
    stats = dm.normalization_stats()
    np.testing.assert_allclose(stats["mean"].flatten(), [np.nanmean(sst[first:last])], rtol=1e-4)
    cx, cy, tx, ty = next(iter(dm.train_dataloader()))
    assert cx.shape == (4, 5, 5) and cy.shape == (4, 5, 1, 5, 4)
    assert torch.isnan(cy[:, :, 0, 0, 0]).all() and not torch.isnan(cy[:, :, 0, 1:]).any()
    assert dm.mask.tolist()[0] == [False, True, True, True]


# ---------------------------------------------------------------- series

def _velocity_file(tmp_path, steps=300):
    rng = np.random.default_rng(3)
    t = np.arange(steps)[:, None, None, None]
    array = np.sin(0.05 * t + rng.uniform(0, 6, size=(1, 6, 5, 2))) + 0.1 * rng.normal(size=(steps, 6, 5, 2))
    path = tmp_path / "velocity.npy"
    np.save(path, array.astype(np.float32))
    return path, array.astype(np.float32)


def test_series_module_reads_probes_from_a_seed_style_array(tmp_path):
    path, array = _velocity_file(tmp_path)
    dm = SeriesDataModule(path=str(path), x_indices=[1, 4], y_indices=[0, 2, 3], augment=None,
                          windows={"context": 20, "target": 4}, loading={"batch_size": 5})
    probes = extract_datapoints(array, [1, 4], [0, 2, 3])
    assert dm.sample_shape == (probes.shape[1],) == (12,)
    dm.setup()
    cx, cy, tx, ty = dm.datasets["val"][0]
    start = int(dm.datasets["val"].index[0, 1])
    np.testing.assert_array_equal(torch.cat([cy, ty]).numpy(), probes[start:start + 24])
    np.testing.assert_allclose(torch.cat([cx, tx])[:, 0].numpy(), np.arange(24) / 23, rtol=1e-6)
    assert dm.normalization_stats()["std"].shape == (12,)


def test_series_module_on_the_embedded_sensors():
    dm = SeriesDataModule(length=300, dataset_kwargs={"spin_up": 1.0, "size": 8},
                          windows={"context": 20, "target": 4}, splits={"val_fraction": 0.1, "test_fraction": 0.2},
                          loading={"batch_size": 8})
    assert dm.sample_shape == (49,) and dm.d_x == 1 and dm.task.name == "sensors"
    dm.setup()
    # 300 steps less two gaps of 24 leave 252: val 25, test 50, train 177 -> 154, 2 and 27 windows of 24
    assert [len(dm.datasets[n]) for n in ("train", "val", "test")] == [154, 2, 27]
    cx, cy, tx, ty = next(iter(dm.train_dataloader()))
    assert cx.shape == (8, 20, 1) and cy.shape == (8, 20, 49) and ty.shape == (8, 4, 49)


def test_series_module_bad_inputs(tmp_path):
    path, _ = _velocity_file(tmp_path)
    with pytest.raises(UserError, match="needs x_indices and y_indices"):
        SeriesDataModule(path=str(path)).setup()
    with pytest.raises(UserError, match="no such file"):
        SeriesDataModule(path=str(tmp_path / "absent.npy")).setup()
    with pytest.raises(UserError, match="field dataset"):
        SeriesDataModule(dataset="storms")


def test_augmentation_fresh_each_epoch_on_train_only(tmp_path):
    path, _ = _velocity_file(tmp_path)
    dm = SeriesDataModule(path=str(path), x_indices=[0, 2], y_indices=[1], seed=5,
                          windows={"context": 16, "target": 4, "stride": 4}, loading={"batch_size": 8})
    train, val = dm.train_dataloader(), dm.val_dataloader()
    assert _epoch_sum(train) != _epoch_sum(train)
    assert _epoch_sum(val) == _epoch_sum(val)
    plain = SeriesDataModule(path=str(path), x_indices=[0, 2], y_indices=[1], seed=5, augment=None,
                             windows={"context": 16, "target": 4, "stride": 4}, loading={"batch_size": 8})
    assert _epoch_sum(plain.val_dataloader()) == _epoch_sum(val)
    item = dm.datasets["train"][0][1]
    assert not torch.equal(item, plain.datasets["train"][0][1])
    assert torch.allclose(item, plain.datasets["train"][0][1], atol=1.0)


def test_augmentation_is_fresh_in_loader_workers_across_epochs(tmp_path):
    path, _ = _velocity_file(tmp_path, steps=120)
    dm = SeriesDataModule(path=str(path), x_indices=[0], y_indices=[1], seed=1,
                          windows={"context": 8, "target": 2, "stride": 5},
                          loading={"batch_size": 64, "num_workers": 1})
    train = dm.train_dataloader()
    assert _epoch_sum(train) != _epoch_sum(train)


def test_frequency_noise_keeps_the_window_mean_and_missing_values():
    t = torch.linspace(0, 6, 32)[:, None]
    window = torch.cat([torch.sin(t), torch.cos(2 * t) + 3], dim=1)
    augment = SeriesAugment(torch.ones(2), noise_std=0.0, freq_noise_std=0.2, seed=0)
    out = augment(window.clone())
    torch.testing.assert_close(out.mean(0), window.mean(0), atol=1e-5, rtol=0)
    assert (out - window).abs().max() > 1e-2
    window[5, 1] = float("nan")
    out = augment(window.clone())
    assert torch.isnan(out[5, 1]) and torch.isnan(out).sum() == 1


def test_gaussian_noise_scales_with_training_std():
    augment = SeriesAugment(torch.tensor([1.0, 10.0]), noise_std=0.1, freq_noise_std=0.0, seed=0)
    noise = augment(torch.zeros(20000, 2))
    np.testing.assert_allclose(noise.std(0).numpy(), [0.1, 1.0], rtol=0.03)


# ---------------------------------------------------------------- YAML

def test_modules_build_from_yaml_through_jsonargparse(tmp_path):
    from jsonargparse import ArgumentParser

    path = write_fno_hdf5(tmp_path / "ns.h5", np.zeros((5, 4, 4, 6)))
    parser = ArgumentParser()
    parser.add_class_arguments(FieldDataModule, "field")
    parser.add_class_arguments(FNODataModule, "fno")
    parser.add_class_arguments(NetCDFDataModule, "nc")
    parser.add_class_arguments(SeriesDataModule, "series")
    config = parser.parse_string(f"""
field: {{dataset: navier_stokes, n_sequences: 4, frames: 6, windows: {{context: 3, target: 3}},
        dataset_kwargs: {{viscosity: 0.001}}}}
fno: {{path: {path}, windows: {{context: 2, target: 2}}, loading: {{batch_size: 2}}}}
nc: {{path: sst.nc, variable: sst, lat_range: [-10, 10], time_start: "2015-01-01"}}
series: {{windows: {{target: 6}}, augment: {{noise_std: 0.1}}}}
""")
    built = parser.instantiate_classes(config)
    assert built.field.spec.name == "navier_stokes" and built.field.params["viscosity"] == 0.001
    assert (built.field.context, built.field.target, built.field.stride) == (3, 3, None)
    assert built.fno.batch_size == 2 and built.fno.num_workers == 0 and built.fno.sample_shape == (1, 4, 4)
    # a group's fields left out keep the module's defaults (a series: 80 steps in, a window every step)
    assert (built.series.context, built.series.target, built.series.stride, built.series.batch_size) == (80, 6, 1, 32)
    assert (built.series.augment.noise_std, built.series.augment.freq_noise_std) == (0.1, 0.05)
    assert tuple(built.nc.lat_range) == (-10, 10) and built.nc.time_range == ("2015-01-01", None)


def test_yaml_class_path_and_light_package_import():
    import subprocess
    import sys

    from jsonargparse import ArgumentParser

    from sfp.data.datamodules import WindowDataModule

    parser = ArgumentParser()
    parser.add_subclass_arguments(WindowDataModule, "data")
    config = parser.parse_string("data: {class_path: sfp.data.FieldDataModule, init_args: {dataset: flame, size: 8}}")
    dm = parser.instantiate_classes(config).data
    assert isinstance(dm, FieldDataModule) and dm.sample_shape == (2, 8, 8)
    code = "import sys, sfp.data.files; print('lightning' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_loader_workers_read_the_same_batches(tmp_path):
    u = np.random.default_rng(4).normal(size=(6, 4, 4, 6))
    path = write_fno_hdf5(tmp_path / "ns.h5", u)

    def batches(workers):
        dm = FNODataModule(str(path), windows={"context": 2, "target": 2},
                           splits={"val_fraction": 0.2, "test_fraction": 0.2},
                           loading={"batch_size": 2, "num_workers": workers})
        return torch.cat([b[1] for b in dm.test_dataloader()])

    assert torch.equal(batches(1), batches(0))


def test_trainer_fits_validates_and_predicts_through_the_module():
    import lightning.pytorch as pl

    class Persistence(pl.LightningModule):
        """Repeats the last context frame, times a learned scale."""

        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(1))

        def forward(self, cy, steps):
            return self.scale * cy[:, -1:].expand(-1, steps, *cy.shape[2:])

        def training_step(self, batch, _):
            cx, cy, tx, ty = batch
            return torch.nn.functional.mse_loss(self(cy, ty.shape[1]), ty)

        def validation_step(self, batch, _):
            self.log("val_loss", self.training_step(batch, _))

        def predict_step(self, batch, _):
            return self(batch[1], batch[3].shape[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=1e-6)

    dm = FieldDataModule(**SMALL_STORMS)
    trainer = pl.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False, accelerator="cpu")
    trainer.fit(Persistence(), datamodule=dm)
    predictions = trainer.predict(Persistence(), datamodule=dm)
    assert sum(len(p) for p in predictions) == len(dm.datasets["test"]) == 2
    assert predictions[0].shape[1:] == (3, 1, 16, 16)


def test_a_train_fraction_keeps_a_nested_random_share_of_the_training_sequences_only():
    from sfp.data import FieldDataModule

    def splits(fraction):
        module = FieldDataModule("storms", n_sequences=40, frames=4, size=8, train_fraction=fraction,
                                 windows={"context": 2, "target": 2, "stride": 2})
        return {name: [segment.sequence for segment in found] for name, found in module._split(module.source).items()}

    full, quarter, tenth = splits(1.0), splits(0.25), splits(0.1)
    assert len(full["train"]) == 32 and len(quarter["train"]) == 8 and len(tenth["train"]) == 3
    assert set(tenth["train"]) <= set(quarter["train"]) <= set(full["train"])  # nested: less data, same draws
    assert quarter["train"] != full["train"][:8]  # a random share, not the first sequences
    assert quarter["val"] == full["val"] and quarter["test"] == full["test"]  # validation and test unchanged
    with pytest.raises(UserError, match="train_fraction"):
        FieldDataModule("storms", n_sequences=40, frames=4, size=8, train_fraction=0.0,
                        windows={"context": 2, "target": 2})
