"""The advection backbone: phase correlation finds known motions, shifting moves fields, and at the start the
model is the extrapolation of a moving blob."""

import pytest
import torch

from sfp.errors import UserError
from sfp.models import build
from sfp.models.advection import cross_correlation_motion, extrapolate, shift_frames


def smooth_field(seed: int = 0, size: int = 48) -> torch.Tensor:
    noise = torch.randn(2, 1, size, size, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.avg_pool2d(torch.nn.functional.pad(noise, (4, 4, 4, 4), mode="circular"), 9, 1)


def blob(row: float, col: float, size: int = 32) -> torch.Tensor:
    """A Gaussian rain cell of width 3 px at (row, col) on a dry (zero) background: ``(1, size, size)``."""
    rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                                indexing="ij")
    return torch.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * 3.0**2))[None]


def test_cross_correlation_motion_finds_a_steady_integer_motion_of_a_periodic_field():
    field = smooth_field()
    frames = torch.stack([field.roll((2 * t, -3 * t), (-2, -1)) for t in range(3)], dim=1)
    torch.testing.assert_close(cross_correlation_motion(frames), torch.tensor([[2.0, -3.0]] * 2), atol=0.05, rtol=0)


def test_shift_moves_content_by_the_displacement_and_fills_with_the_minimum():
    frame = blob(10, 10)[None]
    moved = shift_frames(frame, torch.tensor([[[0.0, 0.0], [3.0, 5.0]]]))
    torch.testing.assert_close(moved[:, 0], frame)
    torch.testing.assert_close(moved[0, 1, :, 3:, 5:], blob(13, 15)[:, 3:, 5:], atol=1e-5, rtol=0)  # came from inside
    edge = shift_frames(frame + 2.0, torch.tensor([[[0.0, 20.0]]]))
    assert edge[0, 0, 0, :, :15].sub(2.0).abs().max() < 1e-3  # entered from outside: the frame's minimum


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
