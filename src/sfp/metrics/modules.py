"""torchmetrics ``Metric`` classes that accumulate exact sums over a whole evaluation set.

States are float64 tensors on the metric's device, summed across processes (``dist_reduce_fx="sum"``), and
``update`` never reads a value back to the host, so a training loop keeps the accelerator busy. Ratios are taken
only in ``compute``: CSI comes from counts summed over the set, not from a mean of per-batch CSIs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from sfp.errors import UserError
from sfp.metrics._common import check_thresholds, positive_float, positive_int
from sfp.metrics.events import contingency, fss_sums, scores
from sfp.metrics.functional import crps_elements, masked_errors, psnr, ssim
from sfp.metrics.objects import COUNT_NAMES, object_counts, object_scores
from sfp.metrics.sal import PAPER_THRESHOLD_FACTOR, SAL_NAMES, check_sal_options, sal, sal_penalty
from sfp.metrics.spectrum import tke_spectrum_error
from sfp.metrics.vortices import OKUBO_WEISS_LEVEL, vortex_counts

_SUM = torch.float64


class _ExactSums(Metric):
    """Non-differentiable metric whose states are float64 sums, kept float64 even when the owning module is cast
    (``module.to(torch.bfloat16)``, as Lightning's "16-true" precision does), so counts stay exact integers."""

    is_differentiable = False
    full_state_update = False

    def _add_sum(self, name: str, *shape: int) -> None:
        self.add_state(name, default=torch.zeros(shape, dtype=_SUM), dist_reduce_fx="sum")

    def _apply(self, fn: Callable[[Tensor], Tensor], exclude_state: Sequence[str] = "") -> _ExactSums:
        this = super()._apply(fn, exclude_state)
        for key, default in this._defaults.items():
            this._defaults[key] = default.to(_SUM)
            setattr(this, key, getattr(this, key).to(_SUM))
        return this


class _Accumulator(_ExactSums):
    """A sum of values and a count, reported as their ratio."""

    def __init__(self, *shape: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self._add_sum("total", *shape)
        self._add_sum("count", *shape)

    def compute(self) -> Tensor:
        return self.total / self.count


class _MaskedMeanError(_Accumulator):
    """Mean of ``|pred − target| ** power`` on ``value / value_scale``, ignoring NaN targets."""

    higher_is_better = False
    power: int

    def __init__(self, value_scale: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.value_scale = positive_float("value_scale", value_scale)

    def update(self, pred: Tensor, target: Tensor) -> None:
        error, valid = masked_errors(pred / self.value_scale, target / self.value_scale, self.power)
        self.total += error.sum(dtype=_SUM)
        self.count += valid.sum()


class MSE(_MaskedMeanError):
    """Mean squared error over the set on ``value / value_scale``."""

    power = 2


class MAE(_MaskedMeanError):
    """Mean absolute error over the set on ``value / value_scale``."""

    power = 1


class MSEPerLead(_Accumulator):
    """MSE of each lead time of ``(B, T, *S)`` forecasts, on ``value / value_scale``: compute gives ``(T,)``."""

    higher_is_better = False

    def __init__(self, target_len: int, value_scale: float = 1.0, **kwargs) -> None:
        target_len = positive_int("target_len", target_len)
        super().__init__(target_len, **kwargs)
        self.target_len = target_len
        self.value_scale = positive_float("value_scale", value_scale)

    def update(self, pred: Tensor, target: Tensor) -> None:
        if pred.dim() < 2 or pred.shape[1] != self.target_len:
            raise UserError(f"expected forecasts (B, {self.target_len}, ...), got shape {tuple(pred.shape)}")
        error, valid = masked_errors(pred / self.value_scale, target / self.value_scale, 2)
        other_axes = [0, *range(2, error.dim())]
        self.total += error.sum(dim=other_axes, dtype=_SUM)
        self.count += valid.sum(dim=other_axes)


class ContingencyScores(_ExactSums):
    """Contingency counts summed over the set; compute gives ``scores(counts)``: csi, pod, … each ``(K,)``."""

    higher_is_better = True

    def __init__(self, thresholds: Sequence[float], pool: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.thresholds = check_thresholds(thresholds)
        self.pool = None if pool is None else positive_int("pool", pool)
        self._add_sum("counts", len(self.thresholds), 4)

    def update(self, pred: Tensor, target: Tensor) -> None:
        self.counts += contingency(pred, target, self.thresholds, self.pool)

    def compute(self) -> dict[str, Tensor]:
        return scores(self.counts)


class FSS(_ExactSums):
    """Fractions skill score per threshold and window, from error and reference sums over the set: ``(K, W)``."""

    higher_is_better = True

    def __init__(self, thresholds: Sequence[float], windows: Sequence[int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.thresholds = check_thresholds(thresholds)
        self.windows = tuple(positive_int("window", w) for w in windows)
        if not self.windows:
            raise UserError("FSS needs at least one window size")
        self._add_sum("error", len(self.thresholds), len(self.windows))
        self._add_sum("reference", len(self.thresholds), len(self.windows))

    def update(self, pred: Tensor, target: Tensor) -> None:
        for j, window in enumerate(self.windows):
            error, reference = fss_sums(pred, target, self.thresholds, window)
            self.error[:, j] += error.sum(0, dtype=_SUM)
            self.reference[:, j] += reference.sum(0, dtype=_SUM)

    def compute(self) -> Tensor:
        return torch.where(self.reference > 0, 1 - self.error / self.reference, torch.nan)


class _PerSampleMean(_Accumulator):
    """Mean over samples of a per-sample score (every sample has the same number of frames)."""

    def _add(self, per_sample: Tensor) -> None:
        self.total += per_sample.sum(dtype=_SUM)
        self.count += per_sample.shape[0]


class SSIM(_PerSampleMean):
    """Mean SSIM over all frames and channels of the set (see :func:`sfp.metrics.functional.ssim`)."""

    higher_is_better = True

    def __init__(self, data_range: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.data_range = positive_float("data_range", data_range)

    def update(self, pred: Tensor, target: Tensor) -> None:
        self._add(ssim(pred, target, self.data_range, reduction="none"))


class PSNR(_PerSampleMean):
    """Mean over samples of the per-sample PSNR in dB (see :func:`sfp.metrics.functional.psnr`)."""

    higher_is_better = True

    def __init__(self, data_range: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.data_range = positive_float("data_range", data_range)

    def update(self, pred: Tensor, target: Tensor) -> None:
        self._add(psnr(pred, target, self.data_range, reduction="none"))


class TKESpectrumError(_PerSampleMean):
    """Mean TKE spectrum error over the frames of the set (see :func:`sfp.metrics.spectrum.tke_spectrum_error`)."""

    higher_is_better = False

    def __init__(self, vorticity: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.vorticity = vorticity

    def update(self, pred: Tensor, target: Tensor) -> None:
        self._add(tke_spectrum_error(pred, target, self.vorticity, reduction="none"))


class CRPS(_Accumulator):
    """Ensemble CRPS averaged over every valid target entry of the set; ``update(ensemble (B, M, ...), target)``."""

    higher_is_better = False

    def update(self, ensemble: Tensor, target: Tensor) -> None:
        values, valid = crps_elements(ensemble, target)
        self.total += values.sum(dtype=_SUM)
        self.count += valid.sum()


class ObjectScores(_ExactSums):
    """Object counts and matched-pair error sums over the set (:mod:`sfp.metrics.objects`); compute gives
    ``object_csi``, ``location_error`` (pixels) and ``peak_error`` (value units), each ``(K,)``. Runs on CPU."""

    higher_is_better = True

    def __init__(self, thresholds: Sequence[float], radius: float, min_size: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.thresholds = check_thresholds(thresholds)
        self.radius = positive_float("radius", radius)
        self.min_size = positive_int("min_size", min_size)
        self._add_sum("counts", len(self.thresholds), len(COUNT_NAMES))

    def update(self, pred: Tensor, target: Tensor) -> None:
        counts = object_counts(pred, target, self.thresholds, self.radius, self.min_size)
        self.counts += counts.sum(0).to(self.counts.device)

    def compute(self) -> dict[str, Tensor]:
        return object_scores(self.counts)


class VortexCensus(_ExactSums):
    """Vortex-core counts and matched-pair error sums over the set (:mod:`sfp.metrics.vortices`); compute gives
    ``object_csi`` (the vortex CSI), ``location_error`` (pixels) and ``peak_error`` (of |ω|), scalars."""

    higher_is_better = True

    def __init__(self, radius: float, level: float = OKUBO_WEISS_LEVEL, min_size: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.radius = positive_float("radius", radius)
        self.level = positive_float("level", level)
        self.min_size = positive_int("min_size", min_size)
        self._add_sum("counts", len(COUNT_NAMES))

    def update(self, pred: Tensor, target: Tensor) -> None:
        counts = vortex_counts(pred, target, self.radius, self.level, self.min_size)
        self.counts += counts.sum(0).to(self.counts.device)

    def compute(self) -> dict[str, Tensor]:
        return object_scores(self.counts)


class SALScores(_ExactSums):
    """Mean S, A and L over the frames of the set where each is defined (:mod:`sfp.metrics.sal`); compute gives
    ``structure``, ``amplitude`` and ``location``, NaN where no frame defines one, and ``penalty``, the mean of
    ``|S| + |A| + L`` over every frame as the SAL reward scores it (:func:`~sfp.metrics.sal.sal_penalty`: an
    undefined component its worst, a frame dry in both fields 0). Runs on CPU."""

    higher_is_better = False

    def __init__(self, threshold_factor: float = PAPER_THRESHOLD_FACTOR, quantile: float = 0.95,
                 min_size: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        check_sal_options(threshold_factor, quantile, min_size)
        self.options = {"threshold_factor": float(threshold_factor), "quantile": float(quantile),
                        "min_size": min_size}
        self._add_sum("total", len(SAL_NAMES))
        self._add_sum("count", len(SAL_NAMES))
        self._add_sum("penalty", 1)
        self._add_sum("frames", 1)

    def update(self, pred: Tensor, target: Tensor) -> None:
        components = sal(pred, target, **self.options).reshape(-1, len(SAL_NAMES))
        defined = ~torch.isnan(components)
        self.total += torch.where(defined, components, 0.0).sum(0).to(self.total.device)
        self.count += defined.sum(0).to(self.count.device)
        self.penalty += sal_penalty(components).sum().to(self.penalty.device)
        self.frames += components.shape[0]

    def compute(self) -> dict[str, Tensor]:
        means = torch.where(self.count > 0, self.total / self.count.clamp_min(1), torch.nan)
        penalty = torch.where(self.frames > 0, self.penalty / self.frames.clamp_min(1), torch.nan)
        return {**dict(zip(SAL_NAMES, means.unbind(0))), "penalty": penalty}
