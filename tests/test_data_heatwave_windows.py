"""The ocean data module: whole years per split, the climatology of the training years, each window's days."""

import numpy as np
import pytest
import torch

from sfp.data import OceanDataModule
from sfp.data.heatwave_windows import HeatwaveWindows
from sfp.metrics.heatwaves import Climatology, climatology, synthetic_days


@pytest.fixture(scope="module")
def module() -> OceanDataModule:
    data = OceanDataModule(n_sequences=4, frames=365, size=8, seed=1,
                           windows={"context": 5, "target": 5, "stride": 1},
                           splits={"val_fraction": 0.25, "test_fraction": 0.25}, loading={"batch_size": 4})
    data.setup()
    return data


def test_the_climatology_is_that_of_the_training_years(module):
    years = sorted(segment.sequence for segment in module._split(module.source)["train"])
    assert len(years) == 2
    sst = module.source.array[years]  # (2, 365, 1, 8, 8)
    expected = climatology(sst.reshape(-1, 1, 8, 8), np.repeat(years, 365), np.tile(synthetic_days(365), 2))
    day = synthetic_days(365) - 1
    seas, thresh = module.heatwave_windows._days["seas"], module.heatwave_windows._days["thresh"]
    np.testing.assert_array_equal(seas.numpy(), expected.seas[day])
    np.testing.assert_array_equal(thresh.numpy(), expected.thresh[day])
    everything = climatology(module.source.array.reshape(-1, 1, 8, 8), np.repeat(np.arange(4), 365),
                             np.tile(synthetic_days(365), 4))
    assert not np.allclose(everything.seas[day], seas.numpy())


def test_each_window_gets_its_own_days(module):
    dataset = module.datasets["test"]
    sequence, start = (int(v) for v in dataset.index[300])
    batch = tuple(x[None] for x in dataset[300])
    windows = module.heatwave_windows
    assert windows.days(batch).tolist() == [list(range(start, start + 10))]
    context, seas, thresh, truth = windows(batch)
    assert torch.equal(context, batch[1]) and torch.equal(truth, batch[3])
    assert seas.shape == thresh.shape == (1, 10, 1, 8, 8)
    torch.testing.assert_close(seas[0, 3], windows._days["seas"][start + 3])
    assert (thresh > seas).all()


def test_days_of_the_year_skip_29_february():
    clim = Climatology(np.arange(366, dtype=np.float32)[:, None], np.arange(366, dtype=np.float32)[:, None] + 1)
    windows = HeatwaveWindows(clim, 365)
    position = torch.tensor([[57.0, 58.0, 59.0]]) / 364  # 27, 28 February, 1 March
    batch = (position[..., None], torch.zeros(1, 3, 1), torch.zeros(1, 0, 1), torch.zeros(1, 0, 1))
    assert windows(batch)[1].flatten().tolist() == [57.0, 58.0, 60.0]  # rows of days 58, 59 and 61


def test_normalization_is_per_pixel_over_the_training_years(module):
    years = sorted(segment.sequence for segment in module._split(module.source)["train"])
    stats = module.normalization_stats()
    train = module.source.array[years]
    assert stats["mean"].shape == stats["std"].shape == (1, 8, 8)
    np.testing.assert_allclose(stats["mean"].numpy(), train.mean(axis=(0, 1)), rtol=1e-5)
    np.testing.assert_allclose(stats["std"].numpy(), train.std(axis=(0, 1)), rtol=1e-4)
    assert stats["mean"][0, 0].mean() > stats["mean"][0, -1].mean() + 5  # warmer south
