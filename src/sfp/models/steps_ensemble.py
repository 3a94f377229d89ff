"""pysteps' STEPS ensemble nowcast (Bowler et al. 2006; Seed et al. 2013) as a reference ensemble.

Per sample: a motion field from the context frames (:mod:`sfp.models.baselines`' estimators), then
``pysteps.nowcasts.steps.forecast`` on the decibel transform of the context. Values are treated as rain-rate-like
intensities (storms' VIL 0-255 as is) through :func:`sfp.models.nowcasts.to_db` with ``threshold``; members are
transformed back and dry pixels set to 0. pysteps (the ``nowcast`` extra) is
imported only here.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.metrics._common import positive_float
from sfp.models.baselines import _motion_estimator, _pysteps
from sfp.models.common import require_positive
from sfp.models.nowcasts import from_db, to_db


def steps_ensemble(context: Tensor, out_frames: int, members: int, threshold: float = 16.0,
                   cascade_levels: int = 4, motion: str = "proesmans", seed: int = 0) -> Tensor:
    """STEPS members ``(B, members, out_frames, 1, H, W)`` from one-channel context ``(B, T, 1, H, W)`` (T >= 3).

    ``threshold``: the smallest intensity that counts as precipitation; ``cascade_levels``: the spatial scales of
    the cascade (at least 3; few on small grids); sample ``b`` uses seed ``seed + b``. Context's dtype and device.
    """
    if context.ndim != 5 or context.shape[2] != 1 or context.shape[1] < 3:
        raise UserError(f"STEPS needs one-channel context (B, T >= 3, 1, H, W), got {tuple(context.shape)}")
    require_positive(out_frames=out_frames, members=members)
    if isinstance(cascade_levels, bool) or not isinstance(cascade_levels, int) or cascade_levels < 3:
        raise UserError(f"STEPS needs an integer cascade_levels >= 3, got {cascade_levels!r}")
    positive_float("threshold", threshold)
    estimate = _motion_estimator(motion, _pysteps())
    with contextlib.redirect_stdout(io.StringIO()):
        from pysteps.nowcasts.steps import forecast

        frames = np.nan_to_num(context[:, :, 0].detach().to("cpu", torch.float64).numpy())
        out = []
        for b, sample in enumerate(frames):
            db = to_db(sample, threshold)
            result = forecast(db[-3:], estimate(sample), out_frames, n_ens_members=members,
                              n_cascade_levels=cascade_levels, precip_thr=10 * np.log10(threshold),
                              vel_pert_method=None, mask_method="incremental", kmperpixel=1.0,
                              timestep=5.0, seed=seed + b)
            out.append(from_db(result, threshold))
    return torch.as_tensor(np.stack(out)[:, :, :, None], dtype=context.dtype, device=context.device)
