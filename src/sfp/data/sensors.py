"""Sensor series: probes on a lattice of a gridded field, and an embedded 49-probe Navier–Stokes series.

``extract_datapoints`` reads the seed's CFD arrays ``(T, X, Y, C)`` (C = 2 for velocity u, v): the probes are every
combination of the given x and y indices (a lattice), ordered x-major, so probe ``p`` sits at
``(x_indices[p // len(y_indices)], y_indices[p % len(y_indices)])``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from sfp.data import navier_stokes
from sfp.data.cache import cached_array, single_threaded_torch
from sfp.data.memory import require_memory
from sfp.errors import UserError

log = logging.getLogger(__name__)

LATTICE = 7  # probes per side of the embedded dataset: 7 x 7 = 49 variables


def _checked_indices(indices: Sequence[int], extent: int, axis: str) -> np.ndarray:
    array = np.asarray(indices)
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise UserError(f"{axis}_indices must be a non-empty list of integers, got {indices!r}")
    if array.min() < 0 or array.max() >= extent:
        raise UserError(f"{axis}_indices {array.tolist()} fall outside 0..{extent - 1}")
    return array


def extract_datapoints(
    array: np.ndarray, x_indices: Sequence[int], y_indices: Sequence[int], separate_channels: bool = True
) -> np.ndarray:
    """Probe series ``(T, P * C)`` from a field ``(T, X, Y, C)`` at the lattice of ``x_indices`` x ``y_indices``.

    With ``separate_channels`` the columns are channel-major (all probes' channel 0, then all probes' channel 1:
    ``u_0 .. u_{P-1}, v_0 .. v_{P-1}``); otherwise interleaved per probe (``u_0, v_0, u_1, v_1, ...``).
    """
    array = np.asarray(array)
    if array.ndim != 4:
        raise UserError(f"expected a (T, X, Y, C) array, got shape {array.shape}")
    xs = _checked_indices(x_indices, array.shape[1], "x")
    ys = _checked_indices(y_indices, array.shape[2], "y")
    probes = array[:, xs][:, :, ys]  # (T, len(xs), len(ys), C)
    probes = probes.reshape(array.shape[0], xs.size * ys.size, array.shape[3])
    if separate_channels:
        probes = probes.transpose(0, 2, 1)
    return np.ascontiguousarray(probes.reshape(array.shape[0], -1))


def lattice_indices(size: int, count: int = LATTICE) -> list[int]:
    """``count`` evenly spaced grid indices, centred in ``count`` equal strips of a ``size``-point axis."""
    if not 1 <= count <= size:
        raise UserError(f"cannot place {count} probes on an axis of {size} points")
    return [int((i + 0.5) * size / count) for i in range(count)]


def generate(
    length: int = 20000, size: int = 32, viscosity: float = 1e-3, dt_sample: float = 0.05, spin_up: float = 100.0,
    forcing: str = "fno", drag: float = 0.0, seed: int = 0, cache: bool = True,
) -> np.ndarray:
    """Vorticity at a 7 x 7 probe lattice of one long forced Navier–Stokes run: float32 ``(length, 49)``.

    The run starts from a Gaussian random field with the ``forcing`` (``"fno"`` or ``"kolmogorov"``, see
    :func:`sfp.data.navier_stokes.solve`) and a linear ``drag``; the first ``spin_up`` time units (the decay
    of the initial field onto the flow's attractor, rounded to whole samples) are dropped, then one sample is kept
    every ``dt_sample``.
    Columns follow :func:`extract_datapoints` with ``x_indices = y_indices = lattice_indices(size)``.
    The default grid is 32 x 32: at viscosity 1e-3 its probes match a 64 x 64 run to ~1e-4 (the spectrum has fallen
    by 1e-6 at the de-aliasing cut-off) while the 20 000-sample run costs a quarter as much.
    """
    if length < 1 or size < LATTICE or dt_sample <= 0 or spin_up < 0:
        raise UserError(
            f"need length >= 1, size >= {LATTICE}, dt_sample > 0 and spin_up >= 0; got length={length}, "
            f"size={size}, dt_sample={dt_sample}, spin_up={spin_up}"
        )
    require_memory(size * size * np.dtype(np.complex128).itemsize, f"the sensors' {size} x {size} flow grid")
    params = {"length": length, "size": size, "viscosity": viscosity, "dt_sample": dt_sample, "spin_up": spin_up,
              "forcing": forcing, "drag": drag, "seed": seed}

    def build() -> np.ndarray:
        skipped = round(spin_up / dt_sample)
        lattice = lattice_indices(size)
        series = np.empty((length, LATTICE * LATTICE), dtype=np.float32)
        with single_threaded_torch():  # one small run: more threads only add overhead
            w0 = navier_stokes.grf(1, size, seed=seed).to(torch.float32)
            states = navier_stokes.trajectory(w0, viscosity, (skipped + length) * dt_sample, dt_sample, forcing,
                                              drag=drag)
            for index, state in enumerate(states):
                if index >= skipped:
                    series[index - skipped] = extract_datapoints(state[..., None].numpy(), lattice, lattice)[0]
                if (index + 1) % 5000 == 0:
                    log.info("sensors: %d of %d samples", index + 1, skipped + length)
        return series

    return cached_array("sensors", params, build, cache, shape=(length, LATTICE * LATTICE))
