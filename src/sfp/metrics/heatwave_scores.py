"""How well a forecast of daily SST finds the marine heatwaves of the truth (definitions: :mod:`.heatwaves`).

A forecast is classified with its context days prepended, so that the five-day rule sees the whole run: a
heatwave that began in the context counts from its first day. Only the forecast days are scored:

- ``mhw_csi``: CSI of heatwave days (an event day, gap days included);
- ``strong_core_csi``: CSI of days of category II or above ("strong cores");
- ``onset_error``: mean |forecast onset − true onset| in days over the matched true events;
- ``peak_error``: mean |forecast peak − true peak| intensity (sst − seas, °C) over the matched true events.

A true event is scored when it has a forecast day; it is matched when the forecast has a heatwave on one of those
days at that pixel, by the forecast event on the first such day. Shapes follow the project: ``(B, T, *S)``, time
on axis 1; ``seas`` and ``thresh`` cover the context and forecast days, ``(B, T_context + T, *S)``. NaN truth
(land) is left out.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.metrics.events import contingency
from sfp.metrics.heatwaves import Detection, detect, event_onsets
from sfp.metrics.modules import _ExactSums

LEVELS = (1.0, 2.0)  # heatwave day, strong core (category II or above) on the day-class scale of day_classes
SCORES = ("mhw_csi", "strong_core_csi", "onset_error", "peak_error")


class Window(NamedTuple):
    """What the heatwave scores of a batch of windows need beyond the forecasts: the context ``(B, Tc, *S)``, the
    climatology on every day of the window ``(B, Tc + T, *S)`` and the truth ``(B, T, *S)``."""

    context: Tensor
    seas: Tensor
    thresh: Tensor
    truth: Tensor


def bind_window(scorer: Any, window: Window | None) -> Any:
    """``scorer.given(window)`` for a scorer that needs each window's context and climatology (a heatwave reward
    or surrogate), any other scorer as it is. ``window`` comes from the data module's ``heatwave_windows``."""
    given = getattr(scorer, "given", None)
    if given is None:
        return scorer
    if window is None:
        raise UserError(f"{scorer!r} needs a data module with heatwave_windows (e.g. sfp.data.OceanDataModule)")
    return given(window)


class WindowLookup:
    """A batch's windows, found again from the truths they are scored against.

    A planner scores blocks of samples, each sample's candidates side by side, and partial forecasts (frames
    0..t), against the matching rows of the truth: so each truth ``(N, T', *S)`` is matched to the window whose
    truth has the same first frame (a fixed random projection of it, equal bit for bit), and gets that window's
    context and the climatology of its first ``Tc + T'`` days.
    """

    def __init__(self, window: Window) -> None:
        self.window = window
        frame = window.truth[:1, 0]
        generator = torch.Generator().manual_seed(0)
        self._weights = torch.rand(frame.shape, generator=generator, dtype=torch.float64).to(frame.device)
        self._keys = self._key(window.truth[:, 0])

    def _key(self, frames: Tensor) -> Tensor:
        return (frames.double().nan_to_num(0.0) * self._weights).flatten(1).sum(1)

    def __call__(self, truth: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(context, seas, thresh)`` of each row of ``truth``; a truth of no window is a UserError."""
        gap, rows = (self._key(truth[:, 0])[:, None] - self._keys[None]).abs().min(dim=1)
        if bool((gap > 1e-9 * self._keys.abs().max().clamp_min(1.0)).any()):
            raise UserError("a heatwave scorer was given a truth of none of the windows it was bound to")
        days = self.window.context.shape[1] + truth.shape[1]
        return self.window.context[rows], self.window.seas[rows, :days], self.window.thresh[rows, :days]


def classify(context: Tensor, forecast: Tensor, seas: Tensor, thresh: Tensor) -> Detection:
    """Heatwave days, categories and intensities of ``forecast (B, T, *S)`` after ``context (B, Tc, *S)``, over
    the forecast days only (time on axis 1)."""
    full = torch.cat([context, forecast], dim=1).movedim(1, -1)
    found = detect(full, seas.movedim(1, -1), thresh.movedim(1, -1))
    days = slice(context.shape[1], None)
    return Detection(*(x.movedim(-1, 1)[:, days] for x in (found.event, found.category, found.intensity)))


def day_classes(found: Detection, missing: Tensor | None = None) -> Tensor:
    """One number per day: 0 no heatwave, 1 a heatwave day below category II, else the category (2-4); NaN where
    ``missing``. Thresholding it at :data:`LEVELS` gives heatwave days and strong cores."""
    classes = torch.where(found.event, found.category.clamp_min(1), 0).to(torch.float32)
    return classes if missing is None else classes.masked_fill(missing, torch.nan)


def event_matches(context: Tensor, forecast: Tensor, target: Tensor, seas: Tensor,
                  thresh: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per true event with a forecast day, whether it is matched, and the absolute onset (days) and peak (°C)
    errors of the matched ones: three ``(E,)`` tensors over all events of the batch (errors 0 where unmatched)."""
    true, pred = (detect(torch.cat([context, x], dim=1).movedim(1, -1), seas.movedim(1, -1), thresh.movedim(1, -1))
                  for x in (target, forecast))
    length = true.event.shape[-1]
    rows = true.event.reshape(-1, length)
    keys_per_row = torch.arange(rows.shape[0], device=rows.device)[:, None] * length
    true_onset, pred_onset = (event_onsets(x.event).reshape(-1, length) for x in (true, pred))
    true_key, pred_key = keys_per_row + true_onset, keys_per_row + pred_onset
    day = torch.arange(length, device=rows.device).expand_as(rows)
    pred_event = pred.event.reshape(-1, length)
    overlap = rows & pred_event & (day >= context.shape[1])

    def per_event(values: Tensor, keys: Tensor, where: Tensor, reduce: str, fill: float) -> Tensor:
        out = torch.full((rows.numel(),), fill, dtype=values.dtype, device=rows.device)
        return out.scatter_reduce(0, keys[where], values[where], reduce)

    scored = per_event(day.float(), true_key, rows, "amax", -1.0) >= context.shape[1]
    first_overlap = per_event(day.float(), true_key, overlap, "amin", float(length)).long()
    matched = scored & (first_overlap < length)
    true_peak = per_event(true.intensity.reshape(-1, length), true_key, rows, "amax", -torch.inf)
    pred_peak = per_event(pred.intensity.reshape(-1, length), pred_key, pred_event, "amax", -torch.inf)
    events = torch.nonzero(scored).squeeze(1)
    hit = matched[events]
    first = first_overlap[events].clamp_max(length - 1)
    row = events // length
    matched_onset = pred_onset[row, first]
    onset_error = torch.where(hit, (matched_onset - events % length).abs().float(), 0.0)
    peak_error = torch.where(hit, (pred_peak[row * length + matched_onset.clamp_min(0)] - true_peak[events]).abs(), 0.0)
    return hit, onset_error, peak_error


class HeatwaveScores(_ExactSums):
    """The scores of the module docstring, accumulated over an evaluation set (CSIs from summed counts, errors
    averaged over all matched events). ``compute()`` gives a dict keyed by :data:`SCORES`; NaN where undefined."""

    higher_is_better = None  # the CSIs: higher; the errors: lower

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._add_sum("counts", len(LEVELS), 4)
        self._add_sum("errors", 3)  # matched events, summed onset errors, summed peak errors

    def update(self, context: Tensor, forecast: Tensor, target: Tensor, seas: Tensor, thresh: Tensor) -> None:
        missing = torch.isnan(target)
        true = day_classes(classify(context, target, seas, thresh), missing)
        pred = day_classes(classify(context, forecast, seas, thresh))
        self.counts += contingency(pred, true, LEVELS)
        hit, onset_error, peak_error = event_matches(context, forecast, target, seas, thresh)
        self.errors += torch.stack([hit.sum(), onset_error.sum(), peak_error.sum()]).to(self.errors.dtype)

    def compute(self) -> dict[str, Tensor]:
        hits, misses, false_alarms = self.counts[:, :3].unbind(-1)
        csi = hits / (hits + misses + false_alarms)  # NaN where neither field has the event
        matched, onset, peak = self.errors.unbind()
        return dict(zip(SCORES, (csi[0], csi[1], onset / matched, peak / matched)))
