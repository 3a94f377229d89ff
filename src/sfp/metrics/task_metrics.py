"""The metrics a :class:`~sfp.task.TaskSpec` asks for, as one module with a flat ``dict[str, Tensor]`` result.

``update(preds, target)`` takes forecasts and truth in original units ``(B, T, *S)``; ``compute()`` returns
scalars keyed ``mse``, ``mae`` (on value/value_scale), ``mse_t1..mse_tT`` (when ``target_len`` is given) and, as
the task asks, ``csi_m``, ``csi_<thr>``, ``pod_m``, ``far_m``, ``hss_m``, ``ets_m``, ``bias_m``,
``csi_pool<s>_m``, ``fss``, ``ssim``, ``psnr``, ``tke_error``, and the marine heatwave scores ``mhw_csi``,
``strong_core_csi``, ``onset_error``, ``peak_error`` (these need each batch, ``update(preds, target, batch)``,
and the data module's ``heatwave_windows``). A ``*_m`` key is the mean over the thresholds where
the score is defined and ``fss`` the mean over the defined (threshold, window) pairs; a value with nothing to
define it (e.g. no event at any threshold) is NaN, never 0.

``extras`` adds the scores with no gradient, computed on CPU (slower; absent unless asked, so the default keys and
values never change), each with its options: ``{"objects": {"radius": 8, "min_size": 1, "thresholds": [...]}}``
(thresholds default to the task's) gives ``object_csi_m``, ``object_csi_<thr>``, ``object_location_error_m``,
``object_peak_error_m``; ``{"sal": {...}}`` gives ``sal_structure``, ``sal_amplitude``, ``sal_location`` (means over
the frames where each is defined) and ``sal_penalty`` (the mean ``|S| + |A| + L`` the SAL reward scores);
``{"vortices": {"radius": 4, ...}}`` gives ``vortex_csi``, ``vortex_location_error``, ``vortex_peak_error``.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from sfp.errors import UserError
from sfp.metrics.events import SCORE_NAMES
from sfp.metrics.heatwave_scores import SCORES as HEATWAVE_SCORES
from sfp.metrics.heatwave_scores import HeatwaveScores, Window
from sfp.metrics.modules import (
    FSS,
    MAE,
    MSE,
    PSNR,
    SSIM,
    ContingencyScores,
    MSEPerLead,
    ObjectScores,
    SALScores,
    TKESpectrumError,
    VortexCensus,
)
from sfp.metrics.sal import SAL_NAMES
from sfp.task import TaskSpec

Extract = Callable[[Any], Tensor]
Extras = Mapping[str, Mapping[str, Any]]
Windows = Callable[[tuple[Tensor, ...]], Window]  # a batch -> its context and climatology
DIMENSIONLESS = "dimensionless"
PIXELS = "pixels"


def threshold_key(threshold: float) -> str:
    """A threshold as it appears in a key: integers without ".0" (``16.0 -> "16"``), others as Python prints them."""
    threshold = float(threshold)
    return str(int(threshold)) if threshold.is_integer() else repr(threshold)


def _itself(value: Tensor) -> Tensor:
    return value


# torchmetrics squeezes one-element results to 0-d tensors (one lead time, one threshold): index them flattened
def _element(index: int) -> Extract:
    return lambda value: value.reshape(-1)[index]


def _score(name: str, index: int) -> Extract:
    return lambda scores: scores[name].reshape(-1)[index]


def _key(name: str) -> Extract:
    return lambda scores: scores[name]


def _defined_mean(name: str | None = None) -> Extract:
    """Mean over the defined (non-NaN) entries of a score tensor, or of ``scores[name]``; NaN if none is defined."""
    return lambda value: torch.nanmean(value if name is None else value[name])


class TaskMetrics(torch.nn.Module):
    """Accumulates a task's metrics over an evaluation set; ``.to(device)`` moves the states, ``reset()`` clears them.

    ``units`` maps every key of ``compute()`` to its unit. ``windows`` (a task with heatwaves) maps a batch to its
    context and climatology; without it the heatwave scores are left out. ``extras`` adds the scores with no
    gradient (see the module docstring).
    """

    def __init__(self, task: TaskSpec, target_len: int | None = None, windows: Windows | None = None,
                 extras: Extras | None = None) -> None:
        super().__init__()
        self.task = task
        self.windows = windows if task.heatwaves else None
        self.metrics = torch.nn.ModuleDict()
        self.units: dict[str, str] = {}
        self._extractors: dict[str, tuple[str, Extract]] = {}

        value_unit = "value" if task.value_scale == 1 else f"value/{task.value_scale:g}"
        squared = f"{value_unit} squared"
        self._add("mse", MSE(task.value_scale), {"mse": (_itself, squared)})
        self._add("mae", MAE(task.value_scale), {"mae": (_itself, value_unit)})
        if target_len is not None:
            per_lead = MSEPerLead(target_len, task.value_scale)
            self._add("mse_t", per_lead, {f"mse_t{t + 1}": (_element(t), squared) for t in range(per_lead.target_len)})
        if task.thresholds:
            outputs = {f"{name}_m": (_defined_mean(name), DIMENSIONLESS) for name in SCORE_NAMES}
            for i, threshold in enumerate(task.thresholds):
                outputs[f"csi_{threshold_key(threshold)}"] = (_score("csi", i), DIMENSIONLESS)
            self._add("events", ContingencyScores(task.thresholds), outputs)
            for size in task.pools:
                key = f"csi_pool{size}_m"
                pooled = ContingencyScores(task.thresholds, pool=size)
                self._add(key, pooled, {key: (_defined_mean("csi"), DIMENSIONLESS)})
            if task.fss_windows:
                self._add("fss", FSS(task.thresholds, task.fss_windows), {"fss": (_defined_mean(), DIMENSIONLESS)})
        if task.ssim:
            self._add("ssim", SSIM(task.data_range), {"ssim": (_itself, DIMENSIONLESS)})
            self._add("psnr", PSNR(task.data_range), {"psnr": (_itself, "dB")})
        if task.tke:
            self._add("tke_error", TKESpectrumError(vorticity=True), {"tke_error": (_itself, "decades of energy")})
        if self.windows is not None:
            units = {"mhw_csi": DIMENSIONLESS, "strong_core_csi": DIMENSIONLESS, "onset_error": "days",
                     "peak_error": "value"}
            self._add("heatwaves", HeatwaveScores(), {key: (_key(key), units[key]) for key in HEATWAVE_SCORES})
        task_keys = set(self.units)
        self._add_extras(dict(extras or {}))
        self.extra_keys = [key for key in self.units if key not in task_keys]  # the scores ``extras`` added

    def _add_extras(self, extras: dict[str, Mapping[str, Any]]) -> None:
        unknown = sorted(set(extras) - {"objects", "sal", "vortices"})
        if unknown:
            raise UserError(f"unknown extra metrics {unknown}; known: objects, sal, vortices")
        if "objects" in extras:
            options = {"thresholds": self.task.thresholds, **extras["objects"]}
            objects = _build(ObjectScores, "objects", options)
            outputs = {"object_csi_m": (_defined_mean("object_csi"), DIMENSIONLESS),
                       "object_location_error_m": (_defined_mean("location_error"), PIXELS),
                       "object_peak_error_m": (_defined_mean("peak_error"), "value")}  # original units
            for i, threshold in enumerate(objects.thresholds):
                outputs[f"object_csi_{threshold_key(threshold)}"] = (_score("object_csi", i), DIMENSIONLESS)
            self._add("objects", objects, outputs)
        if "sal" in extras:
            self._add("sal", _build(SALScores, "sal", extras["sal"]),
                      {f"sal_{name}": (_score(name, 0), DIMENSIONLESS) for name in (*SAL_NAMES, "penalty")})
        if "vortices" in extras:
            self._add("vortices", _build(VortexCensus, "vortices", extras["vortices"]),
                      {"vortex_csi": (_score("object_csi", 0), DIMENSIONLESS),
                       "vortex_location_error": (_score("location_error", 0), PIXELS),
                       "vortex_peak_error": (_score("peak_error", 0), "vorticity")})

    def _add(self, name: str, metric: Metric, outputs: dict[str, tuple[Extract, str]]) -> None:
        """Register ``metric`` and the keys it reports: key -> (how to read it from ``compute()``, unit)."""
        self.metrics[name] = metric
        for key, (extract, unit) in outputs.items():
            self._extractors[key] = (name, extract)
            self.units[key] = unit

    def update(self, preds: Tensor, target: Tensor, batch: tuple[Tensor, ...] | None = None) -> None:
        """Add a batch of forecasts and truth in original units, ``(B, T, *S)``; the heatwave scores also need the
        batch they forecast (its context and days)."""
        preds = preds.detach()
        for name, metric in self.metrics.items():
            if name != "heatwaves":
                metric.update(preds, target)
            elif batch is None:
                raise UserError("the heatwave scores need each batch: update(preds, target, batch)")
            else:
                window = self.windows(batch)
                metric.update(window.context, preds, target, window.seas, window.thresh)

    def compute(self) -> dict[str, Tensor]:
        """Every key's scalar over all batches since the last reset."""
        results = {name: metric.compute() for name, metric in self.metrics.items()}
        return {key: extract(results[name]) for key, (name, extract) in self._extractors.items()}

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()

    def _metric_names(self, keys: Sequence[str]) -> list[str]:
        """The metric modules behind ``keys``, in a fixed order."""
        unknown = [key for key in keys if key not in self._extractors]
        if unknown:
            raise UserError(f"no metric {unknown[0]!r} here; known: {', '.join(sorted(self._extractors))}")
        return sorted({self._extractors[key][0] for key in keys})

    def window_states(self, keys: Sequence[str], preds: Tensor, target: Tensor,
                      batch: tuple[Tensor, ...] | None = None) -> Tensor:
        """Per window (axis 0), the states of the metrics behind ``keys`` flattened into one float64 row ``(B, n)``:
        every state is a sum over windows, so rows summed over any set of windows give the metrics over that set
        (:meth:`from_states`: what a bootstrap over test sequences resamples). Resets those metrics."""
        names = self._metric_names(keys)
        window = self.windows(batch) if "heatwaves" in names and batch is not None else None
        rows = []
        for i in range(preds.shape[0]):
            row = []
            for name in names:
                metric = self.metrics[name]
                metric.reset()
                if name == "heatwaves":
                    if window is None:
                        raise UserError("the heatwave scores need each batch: window_states(keys, preds, target, "
                                        "batch)")
                    metric.update(window.context[i : i + 1], preds[i : i + 1].detach(), target[i : i + 1],
                                  window.seas[i : i + 1], window.thresh[i : i + 1])
                else:
                    metric.update(preds[i : i + 1].detach(), target[i : i + 1])
                row += [getattr(metric, state).reshape(-1).double() for state in metric._defaults]
            rows.append(torch.cat(row))
        for name in names:
            self.metrics[name].reset()
        return torch.stack(rows) if rows else preds.new_zeros(0, 0, dtype=torch.float64)

    def from_states(self, keys: Sequence[str], rows: Tensor) -> dict[str, Tensor]:
        """Each key's value from each row of summed states ``(R, n)`` (as :meth:`window_states` lays them out):
        ``{key: (R,)}``. Resets those metrics."""
        names = self._metric_names(keys)
        values: dict[str, list[Tensor]] = {key: [] for key in keys}
        for row in rows:
            offset = 0
            for name in names:
                metric = self.metrics[name]
                metric.reset()  # a Metric keeps its last result until reset
                for state, default in metric._defaults.items():
                    size = default.numel()
                    setattr(metric, state, row[offset : offset + size].reshape(default.shape).to(default))
                    offset += size
            with warnings.catch_warnings():  # states set by hand, not by update()
                warnings.filterwarnings("ignore", message=".*compute.*before the ``update``")
                results = {name: self.metrics[name].compute() for name in names}
            for key in keys:
                name, extract = self._extractors[key]
                values[key].append(torch.as_tensor(extract(results[name]), dtype=torch.float64))
        for name in names:
            self.metrics[name].reset()
        return {key: torch.stack(found) if found else torch.zeros(0) for key, found in values.items()}


def _build(metric: Callable[..., Metric], name: str, options: Mapping[str, Any]) -> Metric:
    """``metric(**options)``, a UserError naming the extra ``name`` when the options do not fit (the Metric's own
    ``**kwargs`` are not offered: they belong to torchmetrics)."""
    parameters = inspect.signature(metric).parameters
    accepted = sorted(key for key, parameter in parameters.items() if parameter.kind is not parameter.VAR_KEYWORD)
    try:
        if set(options) - set(accepted):
            raise TypeError(f"it takes {', '.join(accepted)}")
        inspect.signature(metric).bind(**options)
    except TypeError as error:
        raise UserError(f"extra metric {name!r} does not accept the options {sorted(options)}: {error}") from None
    return metric(**options)


LOWER_IS_BETTER = frozenset({"mse", "mae", "tke_error", "object_location_error_m", "object_peak_error_m",
                             "sal_location", "sal_penalty", "vortex_location_error", "vortex_peak_error"})


def higher_is_better(key: str, task: TaskSpec) -> bool:
    """Whether a larger value of metric ``key`` is better (the headline's direction is the task's; a per-lead key
    ``mse_t3`` goes as ``mse``)."""
    return task.higher_is_better if key == task.headline else key.split("_t")[0] not in LOWER_IS_BETTER


def build_task_metrics(task: TaskSpec, target_len: int | None = None, windows: Windows | None = None,
                       extras: Extras | None = None) -> TaskMetrics:
    """The metrics ``task`` asks for; ``target_len`` adds the per-lead-time MSE keys ``mse_t1..mse_t<target_len>``;
    ``windows`` the heatwave scores of a task with heatwaves; ``extras`` the scores with no gradient (objects, SAL,
    vortex census)."""
    return TaskMetrics(task, target_len, windows, extras)


def metric_units(task: TaskSpec, target_len: int | None = None, windows: Windows | None = None,
                 extras: Extras | None = None) -> dict[str, str]:
    """The unit of each key that ``build_task_metrics(task, target_len, windows, extras).compute()`` returns."""
    return dict(build_task_metrics(task, target_len, windows, extras).units)
