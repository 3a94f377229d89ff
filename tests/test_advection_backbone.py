"""The advection backbone: phase correlation finds known motions, the motion field follows motions that differ
across the frame, advection carries fields along it, and at the start the model is the extrapolation of a moving
blob."""

import pytest
import torch

from sfp.errors import UserError
from sfp.models import build
from sfp.models.advection import advect, cross_correlation_motion, extrapolate, motion_field


def smooth_field(seed: int = 0, size: int = 48) -> torch.Tensor:
    noise = torch.randn(2, 1, size, size, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.avg_pool2d(torch.nn.functional.pad(noise, (4, 4, 4, 4), mode="circular"), 9, 1)


def rain_field(size: int = 64) -> torch.Tensor:
    """Smooth rain with dry gaps: ``(1, 1, size, size)``, zero where the smooth noise is negative."""
    return smooth_field(size=size)[:1].clamp_min(0.0)


def blob(row: float, col: float, size: int = 32) -> torch.Tensor:
    """A Gaussian rain cell of width 3 px at (row, col) on a dry (zero) background: ``(1, size, size)``."""
    rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                                indexing="ij")
    return torch.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * 3.0**2))[None]


def test_cross_correlation_motion_finds_a_steady_integer_motion_of_a_periodic_field():
    field = smooth_field()
    frames = torch.stack([field.roll((2 * t, -3 * t), (-2, -1)) for t in range(3)], dim=1)
    torch.testing.assert_close(cross_correlation_motion(frames), torch.tensor([[2.0, -3.0]] * 2), atol=0.05, rtol=0)


def test_a_uniform_field_moves_content_by_k_displacements_and_inflow_repeats_the_border():
    frame = blob(10, 10)[None]
    field = torch.tensor([3.0, 5.0])[None, :, None, None].expand(1, 2, 32, 32)
    moved = advect(frame, field, steps=2)
    for k in (1, 2):
        inside = (slice(None), slice(3 * k, None), slice(5 * k, None))  # what came from inside the frame
        torch.testing.assert_close(moved[0, k - 1][inside], blob(10 + 3 * k, 10 + 5 * k)[inside], atol=1e-5, rtol=0)
    ramp = torch.arange(32.0).repeat(32, 1)[None, None]  # value = column index
    inflow = advect(ramp, torch.tensor([0.0, 4.0])[None, :, None, None].expand(1, 2, 32, 32), steps=1)
    torch.testing.assert_close(inflow[0, 0, 0, :, :5], torch.zeros(32, 5))  # entered from the left: the border's 0
    torch.testing.assert_close(inflow[0, 0, 0, :, 4:], ramp[0, 0, :, :28])


def test_the_motion_field_follows_two_halves_moving_apart_and_a_dry_half_follows_the_whole():
    top = bottom = rain_field()[..., :32, :]  # the same rain in both halves: equal mean squares
    frames = torch.stack([torch.cat([top.roll(2 * t, -1), bottom.roll(-2 * t, -1)], dim=-2) for t in range(3)], 1)
    motion = motion_field(frames)  # (1, 2, 64, 64): columns move +2 above, -2 below
    # the top and bottom blocks hold about the frames' mean square (e = E), so each keeps half of its own motion:
    # top - bottom = (2 - (-2)) / 2, whatever the whole frames' motion
    assert abs(motion[0, 1, :12].mean() - motion[0, 1, -12:].mean() - 2.0) < 0.4
    assert motion[0, 0].abs().max() < 0.5
    dry_below = torch.stack([torch.cat([top.roll(2 * t, -1), torch.zeros_like(bottom)], dim=-2) for t in range(3)], 1)
    whole = cross_correlation_motion(dry_below)[0]
    torch.testing.assert_close(motion_field(dry_below)[0, :, -1, :], whole[:, None].expand(2, 64), atol=1e-4, rtol=0)


def test_uniform_motion_gives_a_uniform_field_equal_to_the_whole_frames_motion():
    field = rain_field()
    frames = torch.stack([field.roll((t, -2 * t), (-2, -1)) for t in range(3)], dim=1)
    motion = motion_field(frames)
    torch.testing.assert_close(motion, torch.tensor([1.0, -2.0])[None, :, None, None].expand(1, 2, 64, 64),
                               atol=0.15, rtol=0)


def test_a_moving_blob_is_extrapolated_along_its_motion():
    context = torch.stack([blob(8 + 2 * t, 6 + 1.5 * t) for t in range(4)])[None]  # (1, 4, 1, 32, 32)
    forecast = extrapolate(context, out_frames=3, motion_frames=3)
    for k in range(3):
        truth = blob(8 + 2 * (3 + k + 1), 6 + 1.5 * (3 + k + 1))
        assert (forecast[0, k] - truth).abs().max() < 0.15, k
        peak = int(forecast[0, k, 0].argmax())
        assert abs(peak // 32 - (16 + 2 * k)) <= 1 and abs(peak % 32 - (12 + 1.5 * k)) <= 1


def test_the_backbone_starts_as_the_extrapolation_and_its_residual_learns():
    torch.manual_seed(0)
    model = build("advection", in_frames=4, out_frames=2, channels=1,
                  backbone_kwargs={"hidden_spatial": 4, "hidden_temporal": 8, "spatial_layers": 2,
                                   "temporal_blocks": 1})
    context = torch.stack([blob(8 + 2 * t, 6 + t) for t in range(4)])[None].repeat(2, 1, 1, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(context), extrapolate(context, 2, 3))
    target = 0.5 * extrapolate(context, 2, 3)  # decay the motion alone cannot explain
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = (model(context) - target).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_bad_motion_frames_is_a_user_error():
    with pytest.raises(UserError, match="motion_frames"):
        build("advection", in_frames=4, out_frames=2, channels=1, motion_frames=5)


def test_the_motion_field_of_normalized_frames_is_that_of_the_raw_ones():
    rain = torch.stack([torch.cat([blob(8 + 2 * t, 8 + t, 64)[:, :32], blob(40 - t, 40 + 2 * t, 64)[:, 32:]], -2)
                        for t in range(3)])[None]  # (1, 3, 1, 64, 64): two cells on a dry background
    torch.testing.assert_close(motion_field((rain - 0.2) / 1.7), motion_field(rain), atol=1e-4, rtol=0)
