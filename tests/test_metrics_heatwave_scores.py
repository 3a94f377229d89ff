"""Heatwave scores of forecasts (context prepended) and the heatwave rewards, on series worked out by hand.

One pixel, climatology 0 °C and threshold 1 °C every day (so an anomaly's multiple of 1 °C is its category).
Context days 0-4, forecast days 5-16:

- truth: event A on days 2-6 (peak 2.5, category II on days 5-6) and event B on days 10-15 (3 °C, category III);
- forecast: A on days 2-6 but weaker (1.5, category I), B one day late, days 11-16, at 2.2 °C (category II).

Forecast days: heatwave days truth {5, 6, 10-15}, forecast {5, 6, 11-16}: 7 hits, 1 miss, 1 false alarm, CSI 7/9.
Strong cores: truth {5, 6, 10-15}, forecast {11-16}: 5 hits, 3 misses, 1 false alarm, CSI 5/9.
Both events matched: onset errors 0 and 1 day, peak errors 1.0 and 0.8 °C.
"""

import math

import pytest
import torch

from sfp.errors import UserError
from sfp.metrics.heatwave_scores import HeatwaveScores, Window, bind_window, classify
from sfp.planning.rewards import available_rewards, get_reward

CONTEXT = [0, 0, 1.5, 1.5, 1.5]
TRUTH = [2.5, 2.5, 0, 0, 0, 3, 3, 3, 3, 3, 3, 0]
FORECAST = [1.5, 1.5, 0, 0, 0, 0, 2.2, 2.2, 2.2, 2.2, 2.2, 2.2]


def _field(values: list[float]) -> torch.Tensor:
    """One sample, one pixel: ``(1, T, 1, 1, 1)``."""
    return torch.tensor(values, dtype=torch.float32).reshape(1, -1, 1, 1, 1)


def _window() -> Window:
    days = len(CONTEXT) + len(TRUTH)
    return Window(_field(CONTEXT), _field([0.0] * days), _field([1.0] * days), _field(TRUTH))


def test_classification_sees_the_context():
    window = _window()
    found = classify(window.context, _field(FORECAST), window.seas, window.thresh)
    assert found.event.flatten().int().tolist() == [1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]  # A's last days count
    alone = classify(_field([]), _field(FORECAST), window.seas[:, 5:], window.thresh[:, 5:])
    assert alone.event.flatten().int().tolist() == [0] * 6 + [1] * 6  # without it, 2 days are too short


def test_scores_by_hand():
    scores = HeatwaveScores()
    window = _window()
    scores.update(window.context, _field(FORECAST), _field(TRUTH), window.seas, window.thresh)
    result = {key: value.item() for key, value in scores.compute().items()}
    assert result["mhw_csi"] == pytest.approx(7 / 9)
    assert result["strong_core_csi"] == pytest.approx(5 / 9)
    assert result["onset_error"] == pytest.approx(0.5)
    assert result["peak_error"] == pytest.approx(0.9, abs=1e-6)


def test_land_is_left_out_and_batches_add_up():
    window = _window()
    land = torch.full_like(_field(TRUTH), math.nan)
    scores = HeatwaveScores()
    scores.update(window.context, _field(FORECAST), _field(TRUTH), window.seas, window.thresh)
    scores.update(window.context + 5, _field(FORECAST) + 5, land, window.seas, window.thresh)
    result = {key: value.item() for key, value in scores.compute().items()}
    assert result["mhw_csi"] == pytest.approx(7 / 9) and result["onset_error"] == pytest.approx(0.5)


def test_no_heatwave_anywhere_is_undefined_not_perfect():
    window = _window()
    calm = _field([0.0] * len(TRUTH))
    scores = HeatwaveScores()
    scores.update(window.context * 0, calm, calm, window.seas, window.thresh)
    assert all(math.isnan(value.item()) for value in scores.compute().values())


def test_heatwave_rewards_score_candidates_after_their_context():
    assert {"mhw_csi", "strong_core_csi"} <= set(available_rewards())
    window = _window()
    truth = _field(TRUTH)
    candidates = torch.stack([_field(FORECAST), truth], dim=1)  # (B=1, K=2, T, C, H, W)
    strong = get_reward("strong_core_csi").given(window)
    assert strong(candidates, truth)[0].tolist() == pytest.approx([5 / 9, 1.0])
    assert get_reward("mhw_csi").given(window)(candidates, truth)[0].tolist() == pytest.approx([7 / 9, 1.0])


def test_heatwave_rewards_find_each_truths_window_in_blocks_and_partial_forecasts():
    """Two windows: the hand-worked one and a calm one (0 °C, context included). A planner scores blocks of
    samples (here the calm one alone) and partial forecasts: frames 0..1 of the forecast hold days 5 and 6, strong
    cores in the truth but category I in the forecast: CSI 0 / (0 + 2 + 0)."""
    hand = _window()
    calm = torch.zeros(1, len(TRUTH), 1, 1, 1)
    window = Window(torch.cat([hand.context, torch.zeros_like(hand.context)]), hand.seas.repeat(2, 1, 1, 1, 1),
                    hand.thresh.repeat(2, 1, 1, 1, 1), torch.cat([hand.truth, calm]))
    strong = get_reward("strong_core_csi").given(window)
    assert strong(torch.stack([calm, calm + 3], dim=1), calm).tolist() == [[1.0, 0.0]]  # 3 °C all along: cores
    assert strong(_field(FORECAST)[:, None, :2], hand.truth[:, :2]).tolist() == [[0.0]]
    with pytest.raises(UserError, match="none of the windows"):
        strong(calm[:, None] + 1, calm + 1)


def test_heatwave_local_score_marks_the_wrong_days():
    local = get_reward("strong_core_csi").given(_window()).local(_field(FORECAST), _field(TRUTH))
    wrong_days = (local.flatten() < 0).nonzero().flatten().tolist()
    assert wrong_days == [0, 1, 5, 11]  # forecast days 5, 6, 10 (misses) and 16 (false alarm)


def test_an_unbound_heatwave_reward_is_a_user_error():
    with pytest.raises(UserError, match="given"):
        get_reward("strong_core_csi")(_field(FORECAST), _field(TRUTH))


def test_soft_core_loss_is_small_on_the_cores_and_has_a_gradient():
    from sfp.metrics.surrogates import surrogate_for_task
    from sfp.task import OCEAN

    window = _window()
    truth, valid = _field(TRUTH), torch.ones_like(_field(TRUTH), dtype=torch.bool)
    surrogate = bind_window(surrogate_for_task(OCEAN), window)
    cores = (classify(window.context, truth, window.seas, window.thresh).category >= 2).float()
    sharp = (cores * 10.0).requires_grad_()  # 10 °C on the truth's cores, 0 elsewhere
    assert surrogate(sharp, truth, valid).item() < 0.01
    assert surrogate(torch.zeros_like(truth), truth, valid).item() > 0.99
    surrogate(_field(FORECAST).requires_grad_(), truth, valid).backward()
    with pytest.raises(UserError, match="heatwave_windows"):
        bind_window(surrogate_for_task(OCEAN), None)
