"""Persistence (exact) and optical-flow extrapolation (recovers a known translation, handles missing values)."""

import importlib.util
import sys

import pytest
import torch

from sfp.errors import UserError
from sfp.models.baselines import BASELINES, OpticalFlowExtrapolation, Persistence, optical_flow_forecast, persistence

needs_pysteps = pytest.mark.skipif(importlib.util.find_spec("pysteps") is None,
                                   reason="optical flow needs the nowcast extra (pysteps)")
SHIFT_X, SHIFT_Y = 2.0, 1.0  # pixels per frame
HEIGHT, WIDTH = 36, 44


def blob_frames(first: int, count: int) -> torch.Tensor:
    """A Gaussian blob moving (SHIFT_X, SHIFT_Y) pixels per frame: (1, count, 1, H, W)."""
    ys = torch.arange(HEIGHT, dtype=torch.float64)[:, None]
    xs = torch.arange(WIDTH, dtype=torch.float64)[None, :]
    frames = [
        torch.exp(-((xs - 10 - SHIFT_X * t) ** 2 + (ys - 10 - SHIFT_Y * t) ** 2) / (2 * 4.0**2))
        for t in range(first, first + count)
    ]
    return torch.stack(frames)[None, :, None].float()


def centroid(field: torch.Tensor) -> tuple[float, float]:
    ys = torch.arange(field.shape[-2], dtype=field.dtype)[:, None]
    xs = torch.arange(field.shape[-1], dtype=field.dtype)[None, :]
    return float((field * xs).sum() / field.sum()), float((field * ys).sum() / field.sum())


def test_persistence_repeats_the_last_frame_exactly():
    context = torch.arange(2 * 3 * 2 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2, 2)
    context[1, 2, 0, 0, 0] = float("nan")
    out = persistence(context, 4)
    assert out.shape == (2, 4, 2, 2, 2)
    for t in range(4):
        assert torch.allclose(out[:, t], context[:, 2], rtol=0, atol=0, equal_nan=True)
    assert torch.isnan(out[1, :, 0, 0, 0]).all()
    assert out[0, 3, 1, 1, 1].item() == context[0, 2, 1, 1, 1].item() == 2 * 8 + 7
    assert torch.equal(Persistence(4)(context[:1]), out[:1])


@pytest.mark.parametrize("out_frames", [0, -1, 1.5])
def test_persistence_rejects_a_bad_horizon(out_frames):
    with pytest.raises(UserError, match="out_frames must be a positive integer"):
        persistence(torch.zeros(1, 2, 1, 3, 3), out_frames)


@needs_pysteps
def test_optical_flow_recovers_the_translation():
    context, truth = blob_frames(0, 4), blob_frames(4, 3)
    forecast = OpticalFlowExtrapolation(out_frames=3)(context)
    assert forecast.shape == truth.shape and forecast.dtype == torch.float32
    for k in range(3):  # the blob moves 2-6 px; persistence would be off by all of it
        x, y = centroid(forecast[0, k, 0])
        assert x == pytest.approx(10 + SHIFT_X * (4 + k), abs=0.5)
        assert y == pytest.approx(10 + SHIFT_Y * (4 + k), abs=0.5)
    flow_error = (forecast - truth).square().mean()
    persistence_error = (persistence(context, 3) - truth).square().mean()
    assert flow_error < 0.02 * persistence_error


@needs_pysteps
def test_darts_motion_also_beats_persistence():
    context, truth = blob_frames(0, 5), blob_frames(5, 2)
    forecast = optical_flow_forecast(context, 2, method="darts")
    assert (forecast - truth).square().mean() < 0.8 * (persistence(context, 2) - truth).square().mean()


@needs_pysteps
def test_optical_flow_treats_samples_and_channels_separately():
    moving = blob_frames(0, 3)
    still = blob_frames(0, 1).repeat(1, 3, 1, 1, 1)
    context = torch.cat([torch.cat([moving, still], dim=2), torch.cat([still, moving], dim=2)])  # (2, 3, 2, H, W)
    forecast = optical_flow_forecast(context, 1)
    assert centroid(forecast[0, 0, 0])[0] == pytest.approx(10 + SHIFT_X * 3, abs=0.3)
    assert centroid(forecast[0, 0, 1])[0] == pytest.approx(10, abs=0.3)
    assert torch.allclose(forecast[1].flip(1), forecast[0], atol=1e-6)


@needs_pysteps
def test_missing_values_are_filled_for_motion_and_stay_missing():
    context = blob_frames(0, 1).repeat(1, 3, 1, 1, 1)  # no motion
    context[:, :, :, 20:24, 30:33] = float("nan")
    forecast = optical_flow_forecast(context, 2)
    missing = torch.zeros(HEIGHT, WIDTH, dtype=torch.bool)
    missing[20:24, 30:33] = True
    for k in range(2):
        assert torch.equal(torch.isnan(forecast[0, k, 0]), missing)
        assert torch.allclose(forecast[0, k, 0][~missing], context[0, -1, 0][~missing], atol=1e-4)


def test_unknown_motion_method_and_short_context_are_user_errors():
    with pytest.raises(UserError, match="unknown motion method 'farneback'; choose one of: proesmans"):
        OpticalFlowExtrapolation(3, method="farneback")
    with pytest.raises(UserError, match="proesmans motion needs at least 2 context frames, got 1"):
        optical_flow_forecast(torch.zeros(1, 1, 1, 8, 8), 2)
    with pytest.raises(UserError, match="darts motion needs at least 3 context frames, got 2"):
        optical_flow_forecast(torch.zeros(1, 2, 1, 8, 8), 2, method="darts")
    with pytest.raises(UserError, match=r"optical flow needs a grid of at least 8x8, got \(7, 30\)"):
        optical_flow_forecast(torch.zeros(1, 3, 1, 7, 30), 2)
    with pytest.raises(UserError, match=r"shape \(B, T, C, H, W\)"):
        optical_flow_forecast(torch.zeros(2, 8, 8), 2)


def test_lucaskanade_without_opencv_says_what_to_install():
    if importlib.util.find_spec("cv2") is not None:
        pytest.skip("OpenCV is installed here")
    with pytest.raises(UserError, match="lucaskanade motion needs OpenCV: pip install opencv-python-headless"):
        optical_flow_forecast(blob_frames(0, 3), 1, method="lucaskanade")


def test_missing_pysteps_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "pysteps" or m.startswith("pysteps.")] + ["pysteps"]:
        monkeypatch.setitem(sys.modules, name, None)
    message = r"optical-flow baseline needs the nowcast extra: pip install sfp-forecast\[nowcast\]"
    with pytest.raises(UserError, match=message):
        OpticalFlowExtrapolation(3)
    with pytest.raises(UserError, match=message):
        optical_flow_forecast(blob_frames(0, 3), 1)


def test_baselines_are_listed_by_name():
    assert BASELINES.items() == [("optical_flow", OpticalFlowExtrapolation), ("persistence", Persistence)]
