"""Object-based verification: cells above a threshold, matched one-to-one between truth and forecast.

A cell (an *object*) is a connected region of a 2-D frame, 8-connected (diagonal neighbours join) unless stated,
with at least ``min_size`` pixels. Its position is its plain centroid, the unweighted mean of its pixels'
coordinates (row, column), so a forecast of the right cell with the wrong intensity is not also mislocated; its
peak is the largest value inside it. On a periodic domain (``periodic=True``) regions join across opposite edges
and centroids and distances wrap around.

Truth and forecast cells are matched by an optimal assignment (``scipy.optimize.linear_sum_assignment``) on their
centroid distances: the most pairs within ``radius`` (pixels), and among those the least total distance; pairs
further apart stay unmatched. Matched pairs are hits, unmatched truth cells misses, unmatched forecast cells false
alarms: object CSI = H / (H + M + F). The location error is the mean centroid distance of the matched pairs, the
peak error the mean ``|peak_forecast − peak_truth|`` over them.

Forecasts ``(N, T, C, H, W)`` are scored frame by frame (each ``H × W`` slice); the counts and the summed errors
of every frame add up per sample and threshold (:func:`object_counts`), and the scores come from those sums
(:func:`object_scores`). Scores with nothing to define them are NaN: object CSI where neither field has a cell at
that threshold in any frame, the errors where no pair matched. Everything runs on CPU in numpy, without gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from sfp.errors import UserError
from sfp.metrics._common import check_pair, check_thresholds, positive_float, positive_int

COUNT_NAMES = ("hits", "misses", "false_alarms", "distance_sum", "peak_error_sum")
"""The columns of :func:`object_counts`: counts of one threshold, and the summed errors of its matched pairs."""

_CONNECTIVITY = {4: ndimage.generate_binary_structure(2, 1), 8: ndimage.generate_binary_structure(2, 2)}


@dataclass(frozen=True)
class Objects:
    """The cells of one frame: centroids ``(n, 2)`` (row, column, in pixels) and peaks ``(n,)``."""

    centroids: np.ndarray
    peaks: np.ndarray

    def __len__(self) -> int:
        return len(self.peaks)


def label_regions(mask: np.ndarray, connectivity: int = 8, periodic: bool = False,
                  min_size: int = 1) -> tuple[np.ndarray, int]:
    """Connected regions of a 2-D boolean ``mask``: labels ``(H, W)`` (0 outside, 1..n inside) and n.

    Regions smaller than ``min_size`` pixels are dropped; with ``periodic`` regions touching across opposite
    edges are one region (the domain is a torus)."""
    if connectivity not in _CONNECTIVITY:
        raise UserError(f"connectivity must be 4 or 8, got {connectivity!r}")
    labels, count = ndimage.label(mask, structure=_CONNECTIVITY[connectivity])
    if periodic and count > 1:
        labels, count = _join_across_edges(labels, count, connectivity)
    if min_size > 1 and count:
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        kept = sizes >= min_size
        kept[0] = False
        relabel = np.where(kept, np.cumsum(kept), 0)
        labels, count = relabel[labels], int(kept.sum())
    return labels, count


def _join_across_edges(labels: np.ndarray, count: int, connectivity: int) -> tuple[np.ndarray, int]:
    """Merge the labels of regions that touch across opposite edges (diagonally too with 8-connectivity)."""
    shifts = (0,) if connectivity == 4 else (-1, 0, 1)
    pairs = [np.stack([first, np.roll(last, shift)], 1)
             for first, last in ((labels[0], labels[-1]), (labels[:, 0], labels[:, -1])) for shift in shifts]
    touching = np.concatenate(pairs)
    touching = np.unique(touching[(touching > 0).all(1)], axis=0)
    parent = np.arange(count + 1)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in touching:
        parent[root(a)] = root(b)
    roots = np.array([root(i) for i in range(count + 1)])
    _, relabel = np.unique(roots, return_inverse=True)  # root 0 stays first: the background keeps label 0
    return relabel[labels], int(relabel.max())


def region_centroids(labels: np.ndarray, count: int, periodic: bool = False) -> np.ndarray:
    """Plain centroids ``(count, 2)`` of labelled regions; on a periodic domain each region's pixel offsets are
    taken around its first pixel (raster order) within half the domain, so a region across an edge is one blob."""
    if count == 0:
        return np.zeros((0, 2))
    index = np.arange(1, count + 1)
    _, first = np.unique(labels.ravel(), return_index=True)
    first = first[-count:]  # label 0 (if present) sorts first
    centroids = []
    for axis, size in enumerate(labels.shape):
        coordinate = np.indices(labels.shape)[axis].astype(float)
        reference = coordinate.ravel()[first]
        offset = coordinate - np.concatenate([[0.0], reference])[labels]
        if periodic:
            offset = (offset + size / 2) % size - size / 2
        mean = reference + np.asarray(ndimage.mean(offset, labels, index))
        centroids.append(mean % size if periodic else mean)
    return np.stack(centroids, 1)


def find_objects(field: np.ndarray, threshold: float, min_size: int = 1, periodic: bool = False) -> Objects:
    """The 8-connected cells of a 2-D ``field`` at ``value >= threshold`` (NaN is never a cell)."""
    with np.errstate(invalid="ignore"):
        labels, count = label_regions(field >= threshold, periodic=periodic, min_size=min_size)
    return region_objects(field, labels, count, periodic)


def region_objects(values: np.ndarray, labels: np.ndarray, count: int, periodic: bool = False) -> Objects:
    """Labelled regions as :class:`Objects`, each region's peak the largest of ``values`` inside it."""
    peaks = np.asarray(ndimage.maximum(values, labels, np.arange(1, count + 1))) if count else np.zeros(0)
    return Objects(region_centroids(labels, count, periodic), peaks.reshape(-1).astype(float))


def centroid_distances(first: np.ndarray, second: np.ndarray, period: tuple[int, int] | None = None) -> np.ndarray:
    """Euclidean distances ``(n, m)`` between centroids ``(n, 2)`` and ``(m, 2)``; with ``period`` (H, W) the
    shortest way round the torus."""
    delta = np.abs(first[:, None, :] - second[None, :, :])
    if period is not None:
        delta = np.minimum(delta, np.asarray(period, dtype=float) - delta)
    return np.hypot(delta[..., 0], delta[..., 1])


def match_objects(truth: Objects, forecast: Objects, radius: float,
                  period: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one pairs within ``radius``: truth indices, forecast indices and their distances.

    The assignment has the most pairs within the radius and, among those, the least total distance: a pair
    beyond the radius costs more than all pairs within it together, so the solver never trades a match for a
    shorter one."""
    if len(truth) == 0 or len(forecast) == 0:
        empty = np.zeros(0, dtype=int)
        return empty, empty, np.zeros(0)
    distances = centroid_distances(truth.centroids, forecast.centroids, period)
    within = distances <= radius
    too_far = min(len(truth), len(forecast)) * radius + 1.0
    rows, columns = linear_sum_assignment(np.where(within, distances, too_far))
    kept = within[rows, columns]
    return rows[kept], columns[kept], distances[rows[kept], columns[kept]]


def pair_counts(truth: Objects, forecast: Objects, radius: float,
                period: tuple[int, int] | None = None) -> np.ndarray:
    """Hits, misses, false alarms, summed distance and summed peak error of two frames' cells: ``(5,)``."""
    rows, columns, distances = match_objects(truth, forecast, radius, period)
    hits = len(rows)
    peak_errors = np.abs(forecast.peaks[columns] - truth.peaks[rows])
    return np.array([hits, len(truth) - hits, len(forecast) - hits, distances.sum(), peak_errors.sum()])


def frames(values: Tensor) -> np.ndarray:
    """``(N, ..., H, W)`` -> float64 numpy ``(N, F, H, W)``, detached, on CPU."""
    with torch.no_grad():
        array = values.detach().to("cpu", torch.float64).numpy()
    return array.reshape(array.shape[0], -1, *array.shape[-2:])


def object_counts(pred: Tensor, target: Tensor, thresholds: Sequence[float], radius: float,
                  min_size: int = 1) -> Tensor:
    """Per-sample sums over all frames (and channels) of :data:`COUNT_NAMES`: ``(N, K, 5)`` float64, for
    forecasts and truth ``(N, ..., H, W)`` and K thresholds."""
    check_pair(pred, target, min_dims=3)
    levels = check_thresholds(thresholds)
    radius = positive_float("radius", radius)
    min_size = positive_int("min_size", min_size)
    forecast, truth = frames(pred), frames(target)
    counts = np.zeros((forecast.shape[0], len(levels), len(COUNT_NAMES)))
    for sample in range(forecast.shape[0]):
        for frame in range(forecast.shape[1]):
            for k, level in enumerate(levels):
                counts[sample, k] += pair_counts(find_objects(truth[sample, frame], level, min_size),
                                                 find_objects(forecast[sample, frame], level, min_size), radius)
    return torch.from_numpy(counts)


def matched_regions(pred: Tensor, target: Tensor, thresholds: Sequence[float], radius: float,
                    min_size: int = 1) -> Tensor:
    """Where ``pred``'s cells matched to a ``target`` cell lie, at any of ``thresholds``: a boolean ``(N, F, H, W)``
    (F frames and channels) for forecasts and truth ``(N, ..., H, W)``: what a pseudo-label may edit when only
    whole objects count (:func:`sfp.planning.pseudo_labels.object_label`)."""
    check_pair(pred, target, min_dims=3)
    levels = check_thresholds(thresholds)
    radius, min_size = positive_float("radius", radius), positive_int("min_size", min_size)
    forecast, truth = frames(pred), frames(target)
    inside = np.zeros(forecast.shape, dtype=bool)
    for sample in range(forecast.shape[0]):
        for frame in range(forecast.shape[1]):
            for level in levels:
                with np.errstate(invalid="ignore"):
                    labels, count = label_regions(forecast[sample, frame] >= level, min_size=min_size)
                cells = region_objects(forecast[sample, frame], labels, count)
                _, matched, _ = match_objects(find_objects(truth[sample, frame], level, min_size), cells, radius)
                inside[sample, frame] |= np.isin(labels, matched + 1)
    return torch.from_numpy(inside).to(pred.device)


def _ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1), torch.nan)


def object_scores(counts: Tensor) -> dict[str, Tensor]:
    """Object CSI, location error (pixels) and peak error (value units) from counts ``(..., 5)``, NaN where
    undefined: CSI with no cell in either field, the errors with no matched pair."""
    hits, misses, false_alarms, distance_sum, peak_error_sum = counts.to(torch.float64).unbind(-1)
    return {"object_csi": _ratio(hits, hits + misses + false_alarms),
            "location_error": _ratio(distance_sum, hits),
            "peak_error": _ratio(peak_error_sum, hits)}
