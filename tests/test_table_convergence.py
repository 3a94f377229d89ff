"""The convergence check of a table cell, against hand-computed values."""

import pytest

from sfp.table.convergence import convergence, last_quarter_gain, validation_curve
from sfp.table.render import markdown, summarize
from table_helpers import make_cell


def test_the_last_quarter_gain_compares_the_best_before_three_quarters_with_the_best_at_the_end():
    curve = [(100, 1.0), (200, 0.8), (300, 0.7), (400, 0.693)]  # 3/4 of 400 = 300: best before 0.7
    assert last_quarter_gain(curve) == pytest.approx(0.01)
    assert last_quarter_gain([(100, 0.5), (400, 0.6)]) == 0.0  # no better value in the last quarter
    assert last_quarter_gain([(400, 0.5)]) is None  # no validation in the first three quarters
    assert last_quarter_gain([]) is None


def test_converged_needs_both_checks_under_their_limits():
    flat = [(100, 1.0), (300, 0.50), (400, 0.499)]  # 0.2 % in the last quarter
    models = {"agent": {"mse": 0.100}, "baseline_time": {"mse": 0.098}}  # 2 %
    check = convergence(flat, models)
    assert check["agent_val_mse_gain"] == pytest.approx(0.002)
    assert check["equal_time_test_mse_gain"] == pytest.approx(0.02) and check["converged"] is True
    assert convergence(flat, {"agent": {"mse": 0.1}, "baseline_time": {"mse": 0.09}})["converged"] is False  # 10 %
    assert convergence([(100, 1.0), (300, 0.5), (400, 0.45)], models)["converged"] is False  # still learning
    unknown = convergence(None, models)
    assert unknown["agent_val_mse_gain"] is None and unknown["converged"] is None
    assert unknown["equal_time_test_mse_gain"] == pytest.approx(0.02)
    assert convergence(None, {"agent": {"mse": 0.1}, "baseline_time": {"mse": 0.09}})["converged"] is False


def test_the_curve_is_read_from_every_log_version_of_a_resumed_stage(tmp_path):
    for version, rows in ((0, "epoch,step,val/mse,train/loss\n0,10,0.5,\n0,10,,0.4\n"),
                          (1, "epoch,step,val/mse\n1,20,0.4\n1,30,0.35\n")):
        (tmp_path / f"version_{version}").mkdir()
        (tmp_path / f"version_{version}" / "metrics.csv").write_text(rows)
    assert validation_curve(tmp_path) == [(10, 0.5), (20, 0.4), (30, 0.35)]


def test_the_table_shows_each_agents_check():
    cell = make_cell("storms", "simvp", 0, 0.3, 0.2, 0.25)
    cell["models"].update(agent={"csi_m": 0.2, "mse": 0.10}, baseline_time={"csi_m": 0.25, "mse": 0.09})
    text = markdown([cell], summarize([cell]))
    assert "| storms/simvp/s0 | n/a | n/a | n/a | n/a | +10.0% | **no** |" in text  # no curve, but 10 % fails
    cell["convergence"] = convergence([(100, 1.0), (300, 0.5), (400, 0.499)], cell["models"])
    assert "| storms/simvp/s0 | n/a | n/a | n/a | +0.2% | +10.0% | **no** |" in markdown([cell], summarize([cell]))
