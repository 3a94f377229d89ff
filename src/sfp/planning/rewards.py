"""Per-sample rewards of forecasts against the truth (higher is better): the built-in ones, their registry, and
the reward a task is judged on by default (the contract: :mod:`sfp.planning.reward_types`).

Rewards are built by name from configs: :func:`get_reward` takes a registered name, a dict ``{"name": ...,
**options}``, or an import path ``"package.module:function"`` naming a user function ``function(pred, target,
**options) -> (N,)`` that scores ``N`` forecasts against ``N`` truths of the same shape.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.metrics._common import check_thresholds, per_sample_sum, positive_float, positive_int
from sfp.metrics.events import contingency, fss_sums
from sfp.metrics.functional import masked_errors
from sfp.metrics.functional import ssim as ssim_score
from sfp.metrics.heatwave_scores import Window, WindowLookup, classify, day_classes
from sfp.metrics.objects import matched_regions, object_counts
from sfp.metrics.sal import PAPER_THRESHOLD_FACTOR, check_sal_options, sal_penalty
from sfp.metrics.sal import sal as sal_components
from sfp.metrics.spectrum import tke_spectrum_error
from sfp.metrics.vortices import OKUBO_WEISS_LEVEL, vortex_counts
from sfp.planning.reward_types import AdditiveReward, Reward, ScoreFunction, WeightedSum
from sfp.registry import Registry
from sfp.task import TaskSpec

RewardFactory = TypeVar("RewardFactory", bound=Callable[..., Reward])
REWARDS: Registry[Callable[..., Reward]] = Registry("reward")


def register_reward(name: str) -> Callable[[RewardFactory], RewardFactory]:
    """Decorator adding a reward factory ``factory(**options) -> Reward`` under ``name`` (once per name)."""
    if ":" in name:
        raise ValueError(f"reward name {name!r} must not contain ':' (that marks an import path)")
    return REWARDS.register(name)


def available_rewards() -> list[str]:
    """Names of all registered rewards, sorted."""
    return REWARDS.names()


def get_reward(spec: str | Mapping[str, Any] | Reward) -> Reward:
    """A reward from a name, a dict ``{"name": ..., **options}``, an import path, or a Reward (returned as is)."""
    if isinstance(spec, Reward):
        return spec
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        options = {key: value for key, value in spec.items() if key != "name"}
        name = spec["name"]
    else:
        raise UserError(f"a reward is a name, a dict with a 'name' key, or an import path; got {spec!r}")
    if ":" in name:
        return _import_reward(name, options)
    if name not in REWARDS:
        raise UserError(f"unknown reward {name!r}; known: {', '.join(available_rewards())}, "
                        f"or an import path 'package.module:function'")
    factory = REWARDS.get(name)
    _check_options(factory, name, (), options)
    return factory(**options)


def _check_options(function: Callable[..., Any], name: str, positional: tuple[Any, ...], options: dict) -> None:
    """Raise UserError if ``function(*positional, **options)`` does not match its signature."""
    try:
        inspect.signature(function).bind(*positional, **options)
    except TypeError as error:
        raise UserError(f"reward {name!r} does not accept the options {sorted(options)}: {error}") from None


def _import_reward(path: str, options: dict[str, Any]) -> Reward:
    """The user reward at ``"package.module:function"``, with ``options`` bound as keyword arguments."""
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UserError(f"cannot import the module of reward {path!r}: {error}") from None
    function = getattr(module, attribute, None)
    if isinstance(function, Reward) and not options:
        return function
    if not callable(function) or isinstance(function, Reward):
        raise UserError(f"reward {path!r} must name a function (pred, target, **options) -> per-sample scores "
                        f"(or a Reward, without options); found {function!r}")
    try:
        inspect.signature(function).bind(None, None, **options)
    except (TypeError, ValueError) as error:
        what = (f"does not accept the options {sorted(options)}" if options
                else "must be a function (pred, target, **options) -> per-sample scores")
        raise UserError(f"reward {path!r} {what}: {error} (an import path imports that module, running its code: "
                        "name only code you trust)") from None
    return Reward(partial(function, **options) if options else function, path)


# ----- built-in rewards -----


def _csi_totals(pred: Tensor, target: Tensor, thresholds: tuple[float, ...], pool: int | None) -> Tensor:
    """Hits, misses and false alarms per threshold: ``(N, 3K)``."""
    return contingency(pred, target, thresholds, pool, reduction="none")[..., :3].flatten(1)


def _csi_finish(totals: Tensor) -> Tensor:
    hits, misses, false_alarms = totals.unflatten(1, (-1, 3)).unbind(-1)
    events = hits + misses + false_alarms
    return torch.where(events > 0, hits / events.clamp_min(1), 1.0).mean(-1)


def _csi_local(pred: Tensor, target: Tensor, thresholds: tuple[float, ...]) -> Tensor:
    """Minus each pixel's wrong events (misses and false alarms), per threshold divided by the forecast's events
    in either field there (the CSI denominator), summed over thresholds and channels: ``(N, T, H, W)``.

    A pixel that turns a miss or false alarm into a hit or correct negative raises CSI at that threshold by about
    the inverse of that denominator, so rare high thresholds weigh as much in the sum as they do in CSI-M."""
    levels = torch.tensor(thresholds, dtype=pred.dtype, device=pred.device)
    valid = ~torch.isnan(target)[..., None]
    forecast_events, true_events = pred[..., None] >= levels, target[..., None] >= levels
    wrong = (forecast_events ^ true_events) & valid
    either = ((forecast_events | true_events) & valid).flatten(1, -2).sum(1).clamp_min(1)  # (N, K)
    weights = 1.0 / either.to(pred.dtype)
    return -(wrong.to(pred.dtype) * weights[:, None, None, None, None, :]).sum((-1, 2))


@register_reward("csi")
def csi(thresholds: Sequence[float], pool: int | None = None) -> AdditiveReward:
    """Mean CSI over ``thresholds`` per sample (optionally after ``pool``×``pool`` max-pooling); no events = 1."""
    levels = check_thresholds(thresholds)
    if pool is not None:
        positive_int("pool", pool)
    suffix = f", pool={pool}" if pool is not None else ""
    return AdditiveReward(partial(_csi_totals, thresholds=levels, pool=pool), _csi_finish,
                          f"csi({', '.join(f'{t:g}' for t in levels)}{suffix})",
                          local=partial(_csi_local, thresholds=levels))


def _fss_totals(pred: Tensor, target: Tensor, threshold: float, window: int) -> Tensor:
    """The fractions Brier score and its reference, summed: ``(N, 2)``."""
    return torch.cat(fss_sums(pred, target, [threshold], window), dim=1)


def _fss_finish(totals: Tensor) -> Tensor:
    error, reference = totals.unbind(1)
    return torch.where(reference > 0, 1 - error / reference.clamp_min(1e-300), 1.0)


@register_reward("fss")
def fss(threshold: float, window: int) -> AdditiveReward:
    """Fractions skill score at one threshold and window per sample; a sample with no event in either field = 1."""
    (level,) = check_thresholds([threshold])
    positive_int("window", window)
    return AdditiveReward(partial(_fss_totals, threshold=level, window=window), _fss_finish,
                          f"fss({level:g}, window={window})")


def _squared_error_totals(pred: Tensor, target: Tensor) -> Tensor:
    """Squared errors and valid (non-NaN target) values, summed: ``(N, 2)``."""
    errors, valid = masked_errors(pred, target, 2)
    return torch.stack([per_sample_sum(errors).double(), per_sample_sum(valid).double()], dim=1)


def _neg_mse_finish(totals: Tensor, scale: float) -> Tensor:
    return -totals[:, 0] / totals[:, 1] / scale**2


@register_reward("neg_mse")
def neg_mse(scale: float = 1.0) -> AdditiveReward:
    """Minus the MSE of ``value / scale`` per sample (NaN targets left out), e.g. scale 255 for VIL."""
    positive_float("scale", scale)
    name = "neg_mse" if scale == 1 else f"neg_mse(/{scale:g})"
    return AdditiveReward(_squared_error_totals, partial(_neg_mse_finish, scale=float(scale)), name)


def _frame_mean_totals(pred: Tensor, target: Tensor, metric: ScoreFunction) -> Tensor:
    """For a metric that is a per-sample mean over frames (every ``H x W`` slice): its sum and the frame count."""
    frames = pred[0].numel() // (pred.shape[-2] * pred.shape[-1])
    per_sample = metric(pred, target).double()
    return torch.stack([per_sample * frames, torch.full_like(per_sample, frames)], dim=1)


def _mean_finish(totals: Tensor, sign: float) -> Tensor:
    return sign * totals[:, 0] / totals[:, 1]


@register_reward("ssim")
def ssim(data_range: float = 1.0) -> AdditiveReward:
    """SSIM per sample (mean over frames and channels) with the value range ``data_range``."""
    positive_float("data_range", data_range)
    metric = partial(ssim_score, data_range=float(data_range), reduction="none")
    return AdditiveReward(partial(_frame_mean_totals, metric=metric), partial(_mean_finish, sign=1.0),
                          f"ssim({data_range:g})")


@register_reward("neg_tke_error")
def neg_tke_error(vorticity: bool = True) -> AdditiveReward:
    """Minus the TKE spectrum error per sample (square frames; vorticity fields, or the scalar spectrum)."""
    metric = partial(tke_spectrum_error, vorticity=bool(vorticity), reduction="none")
    return AdditiveReward(partial(_frame_mean_totals, metric=metric), partial(_mean_finish, sign=-1.0),
                          "neg_tke_error")


# ----- rewards with no gradient: objects, SAL, vortices (numpy on CPU; the mosaic planner's local score is -MSE) -----


def _object_totals(pred: Tensor, target: Tensor, thresholds: tuple[float, ...], radius: float,
                   min_size: int) -> Tensor:
    """Object hits, misses and false alarms per threshold: ``(N, 3K)``."""
    return object_counts(pred, target, thresholds, radius, min_size)[..., :3].flatten(1)


@register_reward("object_csi")
def object_csi(thresholds: Sequence[float], radius: float, min_size: int = 1) -> AdditiveReward:
    """Mean object CSI over ``thresholds`` per sample (:mod:`sfp.metrics.objects`: cells matched one-to-one within
    ``radius`` pixels, cells under ``min_size`` pixels left out); a threshold with no cell in either field = 1."""
    levels = check_thresholds(thresholds)
    radius, min_size = positive_float("radius", radius), positive_int("min_size", min_size)
    options = {"thresholds": levels, "radius": radius, "min_size": min_size}
    return AdditiveReward(partial(_object_totals, **options), _csi_finish,
                          f"object_csi({', '.join(f'{t:g}' for t in levels)}, radius={radius:g})",
                          regions=partial(matched_regions, **options))


def _negative_sal_penalty(pred: Tensor, target: Tensor, **options: Any) -> Tensor:
    """Minus the mean SAL penalty ``|S| + |A| + L`` over the frames of each sample: ``(N,)``."""
    return -sal_penalty(sal_components(pred, target, **options)).mean(1)


@register_reward("sal")
def sal(threshold_factor: float = PAPER_THRESHOLD_FACTOR, quantile: float = 0.95, min_size: int = 1) -> AdditiveReward:
    """Minus ``|S| + |A| + L`` per frame (:mod:`sfp.metrics.sal`), averaged over frames: 0 is perfect, -6 the worst;
    an undefined component counts as its worst (2), a frame dry in both fields as perfect."""
    check_sal_options(threshold_factor, quantile, min_size)
    metric = partial(_negative_sal_penalty, threshold_factor=float(threshold_factor), quantile=float(quantile),
                     min_size=min_size)
    return AdditiveReward(partial(_frame_mean_totals, metric=metric), partial(_mean_finish, sign=1.0), "sal")


def _vortex_totals(pred: Tensor, target: Tensor, radius: float, level: float, min_size: int) -> Tensor:
    """Vortex hits, misses and false alarms over both signs: ``(N, 3)``."""
    return vortex_counts(pred, target, radius, level, min_size)[:, :3]


@register_reward("vortex_census")
def vortex_census(radius: float, level: float = OKUBO_WEISS_LEVEL, min_size: int = 1) -> AdditiveReward:
    """Vortex CSI per sample (:mod:`sfp.metrics.vortices`: Okubo–Weiss cores of each sign matched within
    ``radius`` pixels on the torus); no core in either field = 1."""
    radius, level = positive_float("radius", radius), positive_float("level", level)
    min_size = positive_int("min_size", min_size)
    return AdditiveReward(partial(_vortex_totals, radius=radius, level=level, min_size=min_size), _csi_finish,
                          f"vortex_census(radius={radius:g})")


@register_reward("weighted")
def weighted(**terms: float | Mapping[str, Any]) -> WeightedSum:
    """A weighted sum of rewards by name: ``weighted(neg_mse=0.1, csi={"weight": 1.0, "thresholds": [16, 74]})``.

    A number is the weight of the reward of that name with its default options; a dict holds ``weight`` and the
    reward's options. Names may be import paths. Use :class:`WeightedSum` directly to repeat a reward.
    """
    pairs = []
    for name, term in terms.items():
        if isinstance(term, Mapping):
            options = {key: value for key, value in term.items() if key != "weight"}
            if "weight" not in term:
                raise UserError(f"weighted reward term {name!r} needs a 'weight'")
            pairs.append((get_reward({"name": name, **options}), term["weight"]))
        else:
            pairs.append((get_reward(name), term))
    return WeightedSum(pairs)


class HeatwaveReward(Reward):
    """CSI of marine heatwave days (``level`` 1) or of strong cores (category II or above, ``level`` 2) over the
    forecast days, each forecast classified after its window's context (:mod:`sfp.metrics.heatwave_scores`): the
    five-day rule and the categories have no gradient, which is what planning is for.

    Classifying needs each window's context days and climatology: :meth:`given` binds a batch's
    :class:`~sfp.metrics.heatwave_scores.Window` and returns the reward to call, which finds each truth's window
    again (:class:`~sfp.metrics.heatwave_scores.WindowLookup`: blocks of samples, repeated candidates and partial
    forecasts all work); calling this one unbound is a UserError. Not additive over frames: a day's class depends on
    the days after it (the beam search rescores partial forecasts).
    """

    def __init__(self, level: float, name: str) -> None:
        super().__init__(self._unbound, name)
        self.level = level

    def _unbound(self, pred: Tensor, target: Tensor) -> Tensor:
        raise UserError(f"reward {self.name} needs each window's context and climatology: bind them with "
                        f".given(window) before scoring")

    def given(self, window: Window) -> Reward:
        """The reward of forecasts of ``window``'s samples (any of them, in any order, any number of times)."""
        bound = {"lookup": WindowLookup(window), "levels": (self.level,)}
        return Reward(partial(_heatwave_csi, **bound), self.name, local=partial(_heatwave_csi_local, **bound))


def _heatwave_csi(pred: Tensor, target: Tensor, lookup: WindowLookup, levels: tuple[float, ...]) -> Tensor:
    forecast, truth = _classes_after_context(pred, target, lookup)
    return _csi_finish(_csi_totals(forecast, truth, levels, None).to(torch.float64))


def _heatwave_csi_local(pred: Tensor, target: Tensor, lookup: WindowLookup, levels: tuple[float, ...]) -> Tensor:
    return _csi_local(*_classes_after_context(pred, target, lookup), levels)


def _classes_after_context(pred: Tensor, target: Tensor, lookup: WindowLookup) -> tuple[Tensor, Tensor]:
    """Day classes (:func:`~sfp.metrics.heatwave_scores.day_classes`) of forecasts and their truths ``(N, T', *S)``,
    each after its window's context (NaN where the truth is missing)."""
    context, seas, thresh = lookup(target)
    forecast = day_classes(classify(context, pred, seas, thresh))
    truth = day_classes(classify(context, target, seas, thresh), torch.isnan(target))
    return forecast, truth


@register_reward("mhw_csi")
def mhw_csi() -> HeatwaveReward:
    """CSI of marine heatwave days per sample (no heatwave in either field: 1); bind with ``.given(...)``."""
    return HeatwaveReward(1.0, "mhw_csi")


@register_reward("strong_core_csi")
def strong_core_csi() -> HeatwaveReward:
    """CSI of category II+ heatwave days per sample (none in either field: 1); bind with ``.given(...)``."""
    return HeatwaveReward(2.0, "strong_core_csi")


def reward_for_task(task: TaskSpec) -> Reward:
    """The reward of a task's headline metric: CSI-M over its thresholds, -TKE error, SSIM, the strong-core or
    heatwave-day CSI (bind it with :func:`~sfp.metrics.heatwave_scores.bind_window`), otherwise -MSE."""
    if task.headline == "strong_core_csi":
        return strong_core_csi()
    if task.headline == "mhw_csi":
        return mhw_csi()
    if task.headline == "csi_m":
        if not task.thresholds:
            raise UserError(f"task {task.name!r} has the headline csi_m but no thresholds")
        return csi(task.thresholds)
    if task.headline == "tke_error":
        return neg_tke_error()
    if task.headline == "ssim":
        return ssim(task.data_range)
    return neg_mse(task.value_scale)
