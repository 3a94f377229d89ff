"""Performance-diagram points against hand-worked counts, the CSI contour identity, and the plot."""

import math

import pytest
import torch

from sfp.metrics import contingency, csi_from_rates, performance_points
from sfp.report.performance_diagram import plot_performance_diagram


def test_points_by_hand():
    counts = torch.tensor([[6.0, 2.0, 4.0, 88.0], [1.0, 3.0, 0.0, 96.0]])  # H, M, F, C per threshold
    points = performance_points(counts)
    assert points["pod"].tolist() == pytest.approx([6 / 8, 1 / 4])
    assert points["success_ratio"].tolist() == pytest.approx([6 / 10, 1.0])
    assert points["csi"].tolist() == pytest.approx([6 / 12, 1 / 4])
    assert points["bias"].tolist() == pytest.approx([10 / 8, 1 / 4])


def test_undefined_points_are_nan():
    points = performance_points(torch.tensor([[0.0, 0.0, 0.0, 10.0]]))  # no event forecast or observed
    assert all(math.isnan(float(value)) for value in points.values())


def test_csi_contour_formula_matches_the_counts_csi():
    counts = torch.tensor([[6.0, 2.0, 4.0, 88.0], [1.0, 3.0, 0.0, 96.0], [50.0, 7.0, 13.0, 0.0]])
    points = performance_points(counts)
    assert csi_from_rates(points["success_ratio"], points["pod"]).tolist() == pytest.approx(points["csi"].tolist())
    # and the bias lines: bias = POD / SR
    assert (points["pod"] / points["success_ratio"]).tolist() == pytest.approx(points["bias"].tolist())


def test_per_lead_counts_from_transposed_fields():
    pred = torch.tensor([[[1.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [1.0, 0.0]]])  # (B=2, T=2, N=2)
    target = torch.tensor([[[1.0, 1.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])
    counts = contingency(pred.transpose(0, 1), target.transpose(0, 1), [0.5], reduction="none")
    # lead 1: H=1, M=2, F=0, C=1; lead 2: H=2, M=0, F=1, C=1
    assert counts[:, 0].tolist() == [[1, 2, 0, 1], [2, 0, 1, 1]]
    assert performance_points(counts)["pod"][:, 0].tolist() == pytest.approx([1 / 3, 1.0])


def test_plot_writes_a_png(tmp_path):
    counts = torch.tensor([[[6.0, 2.0, 4.0, 88.0], [0.0, 0.0, 0.0, 100.0]],
                           [[4.0, 4.0, 6.0, 86.0], [1.0, 3.0, 0.0, 96.0]]])  # (T=2, K=2, 4), one NaN point
    points = {"persistence": performance_points(counts), "sfp": performance_points(counts.flip(0))}
    path = plot_performance_diagram(tmp_path / "performance.png", points, [1.0, 10.0], title="tiny", unit="mm/h")
    assert path.stat().st_size > 0
