"""The ensemble benchmark's calibration rule, on hand-made validation rows."""

from benchmarks.bench_ensemble import calibration_of, choose
from sfp.planning.ensemble import Calibration, SpreadLaw


def row(ratio: float, crps: float, mse: float = 1.0, **setting) -> dict:
    base = {"temperature": 3.0, "candidates": 64, "centring": "mean", "spread": {"first": 1.0, "growth": 0.0},
            "wet": None}
    return {**base, **setting, "spread_skill_mean": ratio, "crps": crps, "mse_ensemble_mean": mse,
            "mse_forecast": 1.0}


def test_inside_the_band_the_lowest_crps_wins_and_unfair_means_are_left_out():
    rows = [row(1.0, 0.60), row(0.81, 0.50), row(1.19, 0.55), row(0.9, 0.40, mse=1.01), row(0.5, 0.30)]
    assert choose(rows) is rows[1]


def test_outside_the_band_the_nearest_ratio_wins_ties_by_crps():
    rows = [row(0.70, 0.60), row(0.66, 0.50), row(0.60, 0.40), row(1.5, 0.10)]
    assert choose(rows) is rows[1]  # 0.66 is within 0.05 of the nearest (0.70); 0.60 is not


def test_when_no_ensemble_mean_is_fair_every_row_competes():
    rows = [row(0.9, 0.6, mse=1.2), row(0.4, 0.3, mse=1.1)]
    assert choose(rows) is rows[0]


def test_a_row_names_its_calibration():
    chosen = row(1.0, 0.5, temperature=30.0, centring="reconstruction", spread={"first": 0.5, "growth": 0.6},
                 wet=0.1)
    assert calibration_of(chosen) == Calibration(30.0, 64, "reconstruction", SpreadLaw(0.5, 0.6), 0.1)
