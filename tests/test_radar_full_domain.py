"""pysteps' nowcasts on the whole composite, cut to the scored tiles (issue 36): rain that flows in from beyond a
tile reaches it, one forecast per start serves every tile, and forecast tiles find their windows by context."""

import numpy as np
import pytest
import torch

from sfp.data.radar.first_guess import domain_crops
from sfp.errors import UserError
from sfp.models.nowcasts import extrapolation_nowcast
from sfp.report.full_domain import TileForecast, tiled


def _moving_blob(frames: int = 4, height: int = 32, width: int = 96) -> np.ndarray:
    """A Gaussian rain cell (peak 8 mm/h) moving 6 px a frame to the right from column 6: left of the tile
    at columns 32-63 through the context, into it during the forecast."""
    rows, columns = np.mgrid[0:height, 0:width]
    return np.stack([8 * np.exp(-((rows - 16) ** 2 + (columns - 6 - 6 * t) ** 2) / 18.0)
                     for t in range(frames)]).astype(np.float32)


def test_a_cell_flowing_in_from_beyond_the_tile_reaches_it_only_on_the_whole_domain():
    frames = _moving_blob()
    full = domain_crops(frames, [(0, 0, 32)], context=4, target=4, size=32, nowcast=extrapolation_nowcast)
    alone = extrapolation_nowcast(torch.as_tensor(frames[:, :, 32:64])[None, :, None], 4).numpy()
    assert full.shape == (1, 4, 1, 32, 32)
    assert full[0, -1].sum() > 100 * alone[0, -1].sum()  # the tile alone never sees the cell coming
    assert full[0, -1].sum() > full[0, 0].sum()  # more of it inside the tile at every later lead


def test_one_forecast_per_start_is_cut_to_each_tile():
    frames = np.arange(6 * 4 * 8, dtype=np.float32).reshape(6, 4, 8)
    calls = []

    def last_frame(context, out):  # persistence of the whole domain, counted
        calls.append(context.shape)
        return context[:, -1:].repeat(1, out, 1, 1, 1)

    tiles = domain_crops(frames, [(0, 0, 0), (0, 0, 4), (2, 0, 4)], context=2, target=3, size=4, nowcast=last_frame)
    assert calls == [(1, 2, 1, 4, 8), (1, 2, 1, 4, 8)]  # starts 0 and 2, each once
    np.testing.assert_array_equal(tiles[0, 2, 0], frames[1, :, 0:4])
    np.testing.assert_array_equal(tiles[1, 0, 0], frames[1, :, 4:8])
    np.testing.assert_array_equal(tiles[2, 1, 0], frames[3, :, 4:8])


def test_forecast_tiles_find_their_windows_by_context_in_any_order():
    contexts = [torch.full((2, 1, 4, 4), float(i)) for i in range(3)]
    tiles = np.stack([np.full((3, 1, 4, 4), 10.0 * i, np.float32) for i in range(3)])
    forecast = TileForecast(contexts, tiles)
    batch = (None, torch.stack([contexts[2], contexts[0]]))
    assert forecast(batch)[:, 0, 0, 0, 0].tolist() == [20.0, 0.0]
    with pytest.raises(UserError, match="share a context"):
        TileForecast([contexts[0], contexts[0]], tiles[:2])


def test_tiles_blended_over_a_domain_agree_with_a_forecaster_of_the_whole_domain():
    frames = torch.rand(1, 3, 1, 40, 70)

    def last_frame(tiles):  # a per-pixel forecaster: any tiling of it is the whole domain's persistence
        return tiles[:, -1:].repeat(1, 2, 1, 1, 1)

    whole = tiled(last_frame, size=16, overlap=8)(frames, 2)
    assert whole.shape == (1, 2, 1, 40, 70)  # 40 and 70 are no multiple of the stride: the last tile is flush
    torch.testing.assert_close(whole, frames[:, -1:].repeat(1, 2, 1, 1, 1))

    def tile_mean(tiles):  # a forecaster that sees its tile whole: the blend weighs the tiles that cover a pixel
        return tiles[:, -1:].mean(dim=(-2, -1), keepdim=True).expand(-1, 1, -1, 16, 16)

    corner = tiled(tile_mean, size=16, overlap=8)(frames, 1)[0, 0, 0, 0, 0]
    torch.testing.assert_close(corner, frames[0, -1, 0, :16, :16].mean())  # one tile covers the corner
    with pytest.raises(UserError, match="smaller than"):
        tiled(last_frame, size=64, overlap=32)(frames, 2)


def test_a_checkpoint_forecasts_tiles_in_batches_with_the_windows_time_features(monkeypatch):
    import sfp.forecasting.checkpoints as checkpoints
    from sfp.report.full_domain import forecaster_tiles

    calls = []

    class Agent:
        bounds = None

        def forecast(self, context_x, context_y, target_x):
            calls.append((tuple(context_x.shape), tuple(context_y.shape), tuple(target_x.shape)))
            return context_y[:, -1:] + target_x[:, :, :1, None, None]  # last frame plus the lead's time feature

    monkeypatch.setattr(checkpoints, "load_forecaster", lambda path: Agent())
    context_x, target_x = torch.zeros(3, 1), torch.full((1, 1), 5.0)
    forecast = forecaster_tiles("agent.ckpt", (0.0, None), context_x, target_x, batch=2)
    tiles = torch.rand(5, 3, 1, 4, 4)
    out = forecast(tiles)
    assert calls == [((2, 3, 1), (2, 3, 1, 4, 4), (2, 1, 1))] * 2 + [((1, 3, 1), (1, 3, 1, 4, 4), (1, 1, 1))]
    torch.testing.assert_close(out, tiles[:, -1:] + 5.0)
