"""Nowcasting baselines with the backbone contract ``(B, T_in, C, H, W) -> (B, T_out, C, H, W)``.

- persistence: the last context frame, repeated (missing values stay missing).
- optical flow: a motion field estimated by pysteps from the latest frames, then semi-Lagrangian extrapolation of
  the last frame along it, per sample and channel. pysteps is an optional dependency (the ``nowcast`` extra) and is
  imported only when this baseline is used.

Motion methods: ``proesmans`` (default; anisotropic-diffusion optical flow, needs no extra packages and is accurate
on small grids), ``lucaskanade`` (needs OpenCV) and ``darts`` (spectral; at least 3 frames, smooth global motion).
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import torch
from torch import Tensor, nn

from sfp.errors import UserError
from sfp.models.common import require_positive
from sfp.registry import Registry

MOTION_METHODS = ("proesmans", "lucaskanade", "darts")
_MIN_FRAMES = {"proesmans": 2, "lucaskanade": 2, "darts": 3}
MIN_GRID = 8  # smallest side on which motion is estimated (pysteps' Proesmans corrupts memory on tiny grids)


def _check_context(context: Tensor) -> None:
    if context.ndim != 5:
        raise UserError(f"a baseline expects context of shape (B, T, C, H, W), got {tuple(context.shape)}")


def _check_method(method: str) -> None:
    if method not in MOTION_METHODS:
        raise UserError(f"unknown motion method {method!r}; choose one of: {', '.join(MOTION_METHODS)}")


def persistence(context: Tensor, out_frames: int) -> Tensor:
    """Repeat the last context frame ``out_frames`` times: ``(B, T, C, H, W) -> (B, out_frames, C, H, W)``."""
    _check_context(context)
    require_positive(out_frames=out_frames)
    return context[:, -1:].repeat(1, out_frames, 1, 1, 1)


class Persistence(nn.Module):
    """:func:`persistence` as a module, so it is evaluated like any backbone."""

    def __init__(self, out_frames: int) -> None:
        super().__init__()
        require_positive(out_frames=out_frames)
        self.out_frames = out_frames

    def forward(self, context: Tensor) -> Tensor:
        return persistence(context, self.out_frames)


def _pysteps() -> SimpleNamespace:
    """Import the pysteps functions used here (quietly: pysteps prints where its config file is)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from pysteps.exceptions import MissingOptionalDependency
            from pysteps.extrapolation.semilagrangian import extrapolate
            from pysteps.motion.darts import DARTS
            from pysteps.motion.lucaskanade import dense_lucaskanade
            from pysteps.motion.proesmans import proesmans
    except ImportError as err:
        raise UserError("optical-flow baseline needs the nowcast extra: pip install sfp-forecast[nowcast]") from err
    return SimpleNamespace(
        extrapolate=extrapolate, darts=DARTS, lucaskanade=dense_lucaskanade, proesmans=proesmans,
        MissingOptionalDependency=MissingOptionalDependency,
    )


def _pyramid_levels(size: tuple[int, ...]) -> int:
    """Proesmans pyramid depth (at most its default 6) that keeps the coarsest level at least MIN_GRID a side."""
    return min(6, 1 + int(math.log2(min(size) / MIN_GRID)))


def _motion_estimator(method: str, steps: SimpleNamespace) -> Callable[[np.ndarray], np.ndarray]:
    """A function ``(T, H, W) finite frames -> (2, H, W)`` velocity in pixels per frame (x then y)."""
    if method == "proesmans":
        return lambda frames: steps.proesmans(
            frames[-2:], num_levels=_pyramid_levels(frames.shape[1:]), verbose=False
        )
    if method == "darts":
        return lambda frames: steps.darts(
            frames, verbose=False, N_t=min(4, len(frames) - 2),
            N_y=min(50, (frames.shape[1] - 1) // 2), N_x=min(50, (frames.shape[2] - 1) // 2),
        )

    def lucaskanade(frames: np.ndarray) -> np.ndarray:
        try:
            return steps.lucaskanade(frames, verbose=False)
        except steps.MissingOptionalDependency as err:
            raise UserError("lucaskanade motion needs OpenCV: pip install opencv-python-headless") from err

    return lucaskanade


def _extrapolate_field(
    frames: np.ndarray, out_frames: int, estimate: Callable[[np.ndarray], np.ndarray], extrapolate: Callable
) -> np.ndarray:
    """Forecast one ``(T, H, W)`` field. Missing values count as 0 for the motion and are carried along it."""
    valid = np.isfinite(frames)
    filled = np.where(valid, frames, 0.0)
    velocity = estimate(filled)
    # inflow through the border repeats the border values
    forecast = extrapolate(filled[-1], velocity, out_frames, map_coordinates_mode="nearest")
    if not valid[-1].all():
        carried = extrapolate(valid[-1].astype(np.float64), velocity, out_frames, map_coordinates_mode="nearest")
        forecast[carried < 0.5] = np.nan
    return forecast


def optical_flow_forecast(context: Tensor, out_frames: int, method: str = "proesmans") -> Tensor:
    """Extrapolate the last context frame along the motion seen in the context (no gradient).

    ``(B, T, C, H, W) -> (B, out_frames, C, H, W)``, each sample and channel on its own; the result has the
    context's dtype and device.
    """
    _check_context(context)
    require_positive(out_frames=out_frames)
    _check_method(method)
    if context.shape[1] < _MIN_FRAMES[method]:
        raise UserError(
            f"{method} motion needs at least {_MIN_FRAMES[method]} context frames, got {context.shape[1]}"
        )
    if min(context.shape[-2:]) < MIN_GRID:
        raise UserError(f"optical flow needs a grid of at least {MIN_GRID}x{MIN_GRID}, got {tuple(context.shape[-2:])}")
    steps = _pysteps()
    estimate = _motion_estimator(method, steps)
    frames = context.detach().to("cpu", torch.float64).numpy()
    batch, _, channels, height, width = frames.shape
    out = np.empty((batch, out_frames, channels, height, width))
    for b in range(batch):
        for c in range(channels):
            out[b, :, c] = _extrapolate_field(frames[b, :, c], out_frames, estimate, steps.extrapolate)
    return torch.from_numpy(out).to(dtype=context.dtype, device=context.device)


class OpticalFlowExtrapolation(nn.Module):
    """:func:`optical_flow_forecast` as a module; checks for pysteps when built, so a missing extra fails early."""

    def __init__(self, out_frames: int, method: str = "proesmans") -> None:
        super().__init__()
        require_positive(out_frames=out_frames)
        _check_method(method)
        _pysteps()
        self.out_frames, self.method = out_frames, method

    def forward(self, context: Tensor) -> Tensor:
        return optical_flow_forecast(context, self.out_frames, self.method)


BASELINES: Registry[type[nn.Module]] = Registry.of("baseline", {"persistence": Persistence,
                                                                "optical_flow": OpticalFlowExtrapolation})
