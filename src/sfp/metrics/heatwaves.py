"""Marine heatwaves as the field defines them (Hobday et al. 2016, 2018): a climatology, events and categories.

- Calendar: days of the year 1-366 of a leap year, so that a date keeps its number in every year (1 March is 61
  whether or not the year has a 29 February); the synthetic 365-day years skip day 60.
- Climatology (:func:`climatology`), per pixel and day of the year, from the base period only (the training years):
  every value within ``±window_half_width`` days of that day of the year (running into the neighbouring years;
  a non-leap year's 29 February is the mean of the days around it) is pooled over the years; the mean is the
  seasonal climatology ``seas``, the ``percentile`` (linear interpolation) the threshold ``thresh``; both are then
  smoothed by a circular running mean of ``smooth_width`` days. These are heatwaveR's ``ts2clm`` rules and
  defaults (window 5, 90th percentile, smoothing over 31 days), checked against ``heatwave3`` in the tests.
- Events (:func:`detect`): runs of at least ``min_duration`` days with SST strictly above the threshold; two events
  separated by at most ``max_gap`` days are joined (the gap's days become event days).
- Categories: on an event day above the threshold, ``floor((sst − seas) / (thresh − seas))`` capped at 4 (I
  moderate, II strong, III severe, IV extreme); 0 on gap days and outside events.

Detection is torch (time on the last axis, any leading axes), so forecasts and imagined candidates are classified
in one vectorized call; the climatology is numpy, computed once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sfp.errors import UserError

LEAP_DAY = 60  # 29 February in the leap-year numbering
DAYS = 366
MAX_CATEGORY = 4


@dataclass(frozen=True)
class Climatology:
    """``seas`` and ``thresh`` per day of the year: ``(366, *S)`` float32, row ``d - 1`` for day ``d``."""

    seas: np.ndarray
    thresh: np.ndarray

    def on(self, day_of_year: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``seas`` and ``thresh`` on the given days (1-366): ``(*day_of_year.shape, *S)`` each."""
        rows = np.asarray(day_of_year) - 1
        return self.seas[rows], self.thresh[rows]


def calendar_days(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Year and leap-year day of the year (1-366) of ``datetime64`` dates."""
    days = np.asarray(dates).astype("datetime64[D]")
    years = days.astype("datetime64[Y]")
    ordinal = (days - years).astype(int) + 1
    year = years.astype(int) + 1970
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return year, np.where(~leap & (ordinal >= LEAP_DAY), ordinal + 1, ordinal)


def synthetic_days(days: int) -> np.ndarray:
    """Leap-year days of the year (1-366) of the days ``0 .. days-1`` of a 365-day year (no 29 February)."""
    ordinal = np.arange(days) % 365 + 1
    return np.where(ordinal >= LEAP_DAY, ordinal + 1, ordinal)


def _circular_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Centred running mean of ``width`` (odd) rows along axis 0, wrapping around the year."""
    half = width // 2
    padded = np.concatenate([values[-half:], values, values[:half]]) if half else values
    total = np.cumsum(np.concatenate([np.zeros_like(values[:1]), padded]), axis=0)
    return (total[width:] - total[:-width]) / width


def _year_matrix(flat: np.ndarray, year: np.ndarray, day_of_year: np.ndarray) -> np.ndarray:
    """Values ``(T, P)`` spread to ``(366, years, P)`` over every year from the first to the last, NaN where a day
    (or a whole year, one outside the base period) is missing. A non-leap year's 29 February is the mean of its
    28 February and 1 March, so that day's climatology pools every year like its neighbours'."""
    first = int(np.min(year))
    spread = np.full((DAYS, int(np.max(year)) - first + 1, flat.shape[1]), np.nan)
    spread[np.asarray(day_of_year) - 1, np.asarray(year) - first] = flat
    leap_day = LEAP_DAY - 1
    missing = np.isnan(spread[leap_day])
    spread[leap_day] = np.where(missing, 0.5 * (spread[leap_day - 1] + spread[leap_day + 1]), spread[leap_day])
    return spread


def _nan_percentile(values: np.ndarray, percentile: float) -> np.ndarray:
    """The ``percentile`` (linear interpolation, as ``np.nanpercentile``) along axis 1, NaN left out; NaN where
    nothing is left. Sorting once beats ``np.nanpercentile``, which goes slice by slice when NaN are present."""
    ordered = np.sort(values, axis=1)  # NaN last
    count = np.isfinite(ordered).sum(axis=1, keepdims=True)
    position = np.maximum(count - 1, 0) * (percentile / 100.0)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, np.maximum(count - 1, 0))
    low, high = (np.take_along_axis(ordered, index, axis=1) for index in (below, above))
    result = (low + (high - low) * (position - below))[:, 0]
    return np.where(count[:, 0] > 0, result, np.nan)


def _pooled(spread: np.ndarray, half: int) -> np.ndarray:
    """For each day of the year, the values of every year within ``±half`` days: ``(366, years * (2 half + 1), P)``.
    The window runs on into the previous and next year (NaN outside the base period)."""
    if half:
        blank = np.full((half, 1, spread.shape[2]), np.nan)
        before = np.concatenate([blank, spread[-half:, :-1]], axis=1)  # the previous year's last days
        after = np.concatenate([spread[:half, 1:], blank], axis=1)  # the next year's first days
        present = np.isfinite(spread).any(axis=(0, 2))
        spread = np.concatenate([before, spread, after])
        spread[:, ~present] = np.nan  # a year outside the base period lends its neighbours' days to nothing
    rows = np.arange(DAYS)[:, None] + np.arange(2 * half + 1)
    return spread[rows].reshape(DAYS, -1, spread.shape[2])


def climatology(sst: np.ndarray, year: np.ndarray, day_of_year: np.ndarray, window_half_width: int = 5,
                percentile: float = 90.0, smooth_width: int = 31, chunk: int = 256) -> Climatology:
    """The climatology of daily ``sst (T, *S)`` in the base period (pass only its days); NaN values are left out.

    ``year`` and ``day_of_year`` (1-366, :func:`calendar_days` or :func:`synthetic_days`) label each day; the
    base period may skip years (those left to validation and test). ``chunk`` pixels are pooled at a time
    (memory: 366 x 11 x years x chunk float64 values).
    """
    if sst.shape[0] != len(year) or len(year) != len(day_of_year):
        raise UserError(f"climatology: {sst.shape[0]} days of SST but {len(year)} years and "
                        f"{len(day_of_year)} days of the year")
    if smooth_width % 2 != 1 or smooth_width < 1 or window_half_width < 0:
        raise UserError(f"smooth_width must be odd and positive, window_half_width non-negative; got "
                        f"{smooth_width}, {window_half_width}")
    shape = sst.shape[1:]
    flat = np.asarray(sst, dtype=np.float64).reshape(len(year), -1)
    seas = np.empty((DAYS, flat.shape[1]))
    thresh = np.empty_like(seas)
    for first in range(0, flat.shape[1], chunk):
        pixels = slice(first, first + chunk)
        window = _pooled(_year_matrix(flat[:, pixels], year, day_of_year), window_half_width)
        with warnings.catch_warnings():  # land pixels have no value at all: their climatology is NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            seas[:, pixels] = np.nanmean(window, axis=1)
            thresh[:, pixels] = _nan_percentile(window, percentile)
    seas, thresh = _circular_mean(seas, smooth_width), _circular_mean(thresh, smooth_width)
    return Climatology(seas.reshape(DAYS, *shape).astype(np.float32), thresh.reshape(DAYS, *shape).astype(np.float32))


@dataclass(frozen=True)
class Detection:
    """Per day, same shape as the SST: ``event`` (bool), ``category`` (0-4, int8) and ``intensity`` (sst − seas)."""

    event: Tensor
    category: Tensor
    intensity: Tensor


def _run_lengths(mask: Tensor) -> Tensor:
    """At each True entry of ``mask (..., T)``, the length of the run of True it belongs to; 0 elsewhere."""
    flat = mask.reshape(-1, mask.shape[-1])
    starts = flat & ~torch.nn.functional.pad(flat, (1, 0))[:, :-1]
    run = torch.cumsum(starts.long(), dim=1)  # run number within the row, 1-based on runs
    index = run + torch.arange(flat.shape[0], device=mask.device)[:, None] * (flat.shape[1] + 1)
    counts = torch.zeros(flat.shape[0] * (flat.shape[1] + 1), dtype=torch.long, device=mask.device)
    counts.scatter_add_(0, index[flat], torch.ones_like(index[flat]))
    return torch.where(flat, counts[index], 0).reshape(mask.shape)


def _seen_before(mask: Tensor) -> Tensor:
    """Whether a True entry lies strictly earlier along the last axis."""
    return torch.nn.functional.pad(torch.cummax(mask.to(torch.uint8), dim=-1).values, (1, 0))[..., :-1].bool()


def event_days(exceed: Tensor, min_duration: int = 5, max_gap: int = 2) -> Tensor:
    """Event days of ``exceed (..., T)``: runs of at least ``min_duration`` days, joined across gaps of at most
    ``max_gap`` days between two of them."""
    events = _run_lengths(exceed) >= min_duration
    gap = ~events & _seen_before(events) & _seen_before(events.flip(-1)).flip(-1)
    return events | (gap & (_run_lengths(gap) <= max_gap))


def detect(sst: Tensor, seas: Tensor, thresh: Tensor, min_duration: int = 5, max_gap: int = 2) -> Detection:
    """Marine heatwave days and daily categories of ``sst (..., T)`` against its ``seas`` and ``thresh`` (same
    shape, time last). NaN SST is never above the threshold."""
    exceed = sst > thresh  # False where either is NaN
    event = event_days(exceed, min_duration, max_gap)
    intensity = sst - seas
    ratio = intensity / (thresh - seas)
    category = torch.where(event & exceed, ratio.floor().clamp(1, MAX_CATEGORY), 0).to(torch.int8)
    return Detection(event, category, intensity)


def event_onsets(event: Tensor) -> Tensor:
    """At each event day of ``event (..., T)``, the index of its event's first day; -1 elsewhere."""
    time = torch.arange(event.shape[-1], device=event.device).expand(event.shape)
    starts = event & ~torch.nn.functional.pad(event, (1, 0))[..., :-1]
    latest_start = torch.cummax(torch.where(starts, time, -1), dim=-1).values
    return torch.where(event, latest_start, -1)
