"""Reference nowcasts on a rain blob moving at a known constant speed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pysteps")
pytest.importorskip("cv2")

from sfp.models.nowcasts import NOWCASTS, extrapolation_nowcast, steps_mean_nowcast  # noqa: E402

SIZE, SPEED = 48, 2  # pixels per frame, to the right


def _blob(shift: float) -> np.ndarray:
    y, x = np.mgrid[:SIZE, :SIZE]
    field = 8.0 * np.exp(-((x - 14 - shift) ** 2 + (y - 24) ** 2) / (2 * 4.0 ** 2))
    field += 3.0 * np.exp(-((x - 10 - shift) ** 2 + (y - 16) ** 2) / (2 * 2.5 ** 2))
    return field


def _moving(frames: int, first: int = 0) -> torch.Tensor:
    return torch.tensor(np.stack([_blob(SPEED * (first + t)) for t in range(frames)]))[None, :, None]


def _centroid_x(field: torch.Tensor) -> float:
    weights = field.clamp(min=0).numpy()
    return float((weights * np.arange(SIZE)[None, :]).sum() / weights.sum())


def test_extrapolation_moves_the_field_with_the_context_motion():
    context, truth = _moving(4), _moving(3, first=4)
    forecast = extrapolation_nowcast(context, 3)
    assert forecast.shape == (1, 3, 1, SIZE, SIZE) and torch.isfinite(forecast).all()
    for lead in range(3):
        assert _centroid_x(forecast[0, lead, 0]) == pytest.approx(_centroid_x(truth[0, lead, 0]), abs=0.5)
    assert ((forecast - truth) ** 2).mean() < ((context[:, -1:] - truth) ** 2).mean() / 4  # beats persistence


@pytest.mark.parametrize("name", ["sprog", "steps_mean"])
def test_cascade_nowcasts_follow_the_motion(name):
    context = _moving(4)
    forecast = NOWCASTS[name](context, 2) if name == "sprog" else steps_mean_nowcast(context, 2, members=4)
    assert forecast.shape == (1, 2, 1, SIZE, SIZE) and torch.isfinite(forecast).all() and (forecast >= 0).all()
    expected = _centroid_x(_moving(1, first=5)[0, 0, 0])
    assert _centroid_x(forecast[0, 1, 0]) == pytest.approx(expected, abs=2.0)


def test_steps_mean_is_reproducible_from_its_seed():
    context = _moving(3)
    first, again = (steps_mean_nowcast(context, 1, members=2, seed=3) for _ in range(2))
    torch.testing.assert_close(first, again)
