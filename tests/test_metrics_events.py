"""Contingency counts, CSI family and FSS against counted hits and hand-worked fractions."""

import math

import pytest
import torch

from sfp.errors import UserError
from sfp.metrics import block_max, contingency, csi, csi_m, fss, scores

NAN = float("nan")


def _isnan(x) -> bool:
    return math.isnan(float(x))


def test_contingency_counts_by_hand():
    pred = torch.tensor([[0.0, 20.0, 80.0, 10.0]])
    target = torch.tensor([[16.0, 20.0, 10.0, 0.0]])  # 16 equals the threshold: an event
    counts = contingency(pred, target, [16, 74])
    # thr 16: forecast {1, 2}, observed {0, 1} -> H=1 (1), M=1 (0), F=1 (2), C=1 (3)
    # thr 74: forecast {2}, observed {} -> H=0, M=0, F=1, C=3
    assert counts.tolist() == [[1, 1, 1, 1], [0, 0, 1, 3]]
    assert counts.dtype == torch.float64


def test_contingency_per_sample_and_nan_targets():
    pred = torch.tensor([[[20.0, 20.0]], [[0.0, 20.0]]])  # (B=2, T=1, N=2)
    target = torch.tensor([[[20.0, NAN]], [[20.0, 0.0]]])
    per_sample = contingency(pred, target, [16], reduction="none")
    assert per_sample.shape == (2, 1, 4)
    assert per_sample[:, 0].tolist() == [[1, 0, 0, 0], [0, 1, 1, 0]]  # the NaN target is not counted
    assert contingency(pred, target, [16]).tolist() == [[1, 1, 1, 0]]


def test_pooling_turns_a_near_miss_into_a_hit():
    pred = torch.zeros(1, 1, 4, 4)
    target = torch.zeros(1, 1, 4, 4)
    pred[0, 0, 0, 0] = 100.0
    target[0, 0, 1, 1] = 100.0  # same 2x2 block, different pixel
    assert contingency(pred, target, [50]).tolist() == [[0, 1, 1, 14]]
    assert contingency(pred, target, [50], pool=2).tolist() == [[1, 0, 0, 3]]
    assert csi(pred, target, [50]).item() == 0.0
    assert csi(pred, target, [50], pool=2).item() == 1.0


def test_pooling_keeps_partial_edge_blocks():
    field = torch.arange(25.0).reshape(1, 5, 5)
    pooled = block_max(field, 2)
    assert pooled.shape == (1, 3, 3)
    assert pooled[0].tolist() == [[6, 8, 9], [16, 18, 19], [21, 23, 24]]
    pred = torch.zeros(1, 1, 5, 5)
    target = torch.zeros(1, 1, 5, 5)
    pred[..., 4, 4] = target[..., 4, 4] = 1.0
    assert contingency(pred, target, [1], pool=2).tolist() == [[1, 0, 0, 8]]


def test_pooled_cell_is_missing_only_when_all_its_targets_are():
    pred = torch.full((1, 2, 4), 5.0)
    target = torch.tensor([[[NAN, NAN, NAN, 1.0], [NAN, NAN, NAN, NAN]]])
    # block (cols 0-1) is all missing; block (cols 2-3) has one valid value 1 < 3 -> a false alarm at 3
    assert contingency(pred, target, [3], pool=2).tolist() == [[0, 0, 1, 0]]


def test_scores_by_hand():
    s = scores(torch.tensor([2.0, 1.0, 1.0, 6.0]))  # H, M, F, C
    assert s["csi"].item() == pytest.approx(2 / 4)
    assert s["pod"].item() == pytest.approx(2 / 3)
    assert s["far"].item() == pytest.approx(1 / 3)
    assert s["bias"].item() == pytest.approx(1.0)
    assert s["hss"].item() == pytest.approx(2 * (2 * 6 - 1 * 1) / (3 * 7 + 3 * 7))
    random_hits = 3 * 3 / 10
    assert s["ets"].item() == pytest.approx((2 - random_hits) / (4 - random_hits))


def test_perfect_and_random_forecasts_score_as_known():
    perfect = scores(torch.tensor([5.0, 0.0, 0.0, 5.0]))
    assert [perfect[k].item() for k in ("csi", "pod", "far", "hss", "ets", "bias")] == [1, 1, 0, 1, 1, 1]
    # counts of a forecast independent of the truth: H = (H+M)(H+F)/N exactly -> HSS = ETS = 0
    chance = scores(torch.tensor([1.0, 1.0, 1.0, 1.0]))
    assert chance["hss"].item() == 0.0 and chance["ets"].item() == 0.0


def test_undefined_scores_are_nan_not_inf():
    s = scores(torch.tensor([[0.0, 0.0, 0.0, 5.0], [0.0, 0.0, 2.0, 3.0]]))
    assert all(_isnan(s[k][0]) for k in ("csi", "pod", "far", "hss", "ets", "bias"))
    assert _isnan(s["pod"][1]) and _isnan(s["bias"][1])  # H + M = 0 but F > 0
    assert s["csi"][1].item() == 0.0 and s["far"][1].item() == 1.0


def test_csi_m_averages_defined_thresholds_only():
    pred = torch.tensor([[20.0, 0.0, 0.0, 0.0]])
    target = torch.tensor([[20.0, 20.0, 0.0, 0.0]])
    values = csi(pred, target, [16, 74])
    assert values[0].item() == 0.5 and _isnan(values[1])
    assert csi_m(pred, target, [16, 74]).item() == 0.5
    assert _isnan(csi_m(pred, target, [74, 133]))


def test_csi_per_sample():
    pred = torch.tensor([[20.0, 20.0], [20.0, 0.0]])
    target = torch.tensor([[20.0, 0.0], [20.0, 0.0]])
    assert csi(pred, target, [16], reduction="none")[:, 0].tolist() == [0.5, 1.0]
    assert csi_m(pred, target, [16], reduction="none").tolist() == [0.5, 1.0]
    assert csi(pred, target, [16]).item() == pytest.approx(2 / 3)  # counts summed: H=2, F=1


def test_fss_by_hand_zero_padding():
    pred = torch.tensor([[[1.0, 0.0, 0.0]]])  # (B=1, H=1, W=3)
    target = torch.tensor([[[0.0, 1.0, 0.0]]])
    assert fss(pred, target, 0.5, window=1).item() == pytest.approx(0.0)
    # window 3 (cells outside count as non-events, divisor 9): P_f = [1, 1, 0]/9, P_o = [1, 1, 1]/9
    assert fss(pred, target, 0.5, window=3).item() == pytest.approx(1 - 1 / 5)
    # window 2 reaches right/down: P_f = [1, 0, 0]/4, P_o = [1, 1, 0]/4 -> FBS 1/16, ref 3/16
    assert fss(pred, target, 0.5, window=2).item() == pytest.approx(1 - 1 / 3)


def test_fss_with_window_one_follows_from_counts():
    gen = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 3, 1, 8, 8, generator=gen)
    target = torch.rand(2, 3, 1, 8, 8, generator=gen)
    hits, misses, false_alarms, _ = contingency(pred, target, [0.6])[0].tolist()
    expected = 1 - (misses + false_alarms) / (2 * hits + misses + false_alarms)
    assert fss(pred, target, 0.6, window=1).item() == pytest.approx(expected)


def test_fss_identity_no_events_and_per_sample():
    gen = torch.Generator().manual_seed(1)
    field = torch.rand(2, 1, 8, 8, generator=gen)
    assert fss(field, field, 0.5, window=3).item() == pytest.approx(1.0)
    per_sample = fss(torch.zeros(2, 1, 8, 8), torch.stack([torch.zeros(1, 8, 8), torch.ones(1, 8, 8)]), 0.5, 3,
                     reduction="none")
    assert _isnan(per_sample[0]) and per_sample[1].item() == 0.0
    # a larger window forgives a displacement
    pred = torch.zeros(1, 1, 16, 16)
    target = torch.zeros(1, 1, 16, 16)
    pred[..., 6:9, 6:9] = 1.0
    target[..., 7:10, 7:10] = 1.0
    assert fss(pred, target, 0.5, 1) < fss(pred, target, 0.5, 5) < fss(pred, target, 0.5, 9)


def test_event_user_errors():
    x = torch.zeros(1, 1, 4, 4)
    with pytest.raises(UserError, match="thresholds"):
        contingency(x, x, [])
    with pytest.raises(UserError, match="pool"):
        contingency(x, x, [1], pool=0)
    with pytest.raises(UserError, match="window"):
        fss(x, x, 1.0, window=2.5)
    with pytest.raises(UserError, match="reduction"):
        contingency(x, x, [1], reduction="mean")


def test_contingency_matches_a_pixel_loop_with_missing_values_and_pooling():
    gen = torch.Generator().manual_seed(2)
    pred = torch.rand(2, 3, 6, 6, generator=gen) * 100
    target = torch.rand(2, 3, 6, 6, generator=gen) * 100
    target[torch.rand(target.shape, generator=gen) < 0.2] = NAN
    thresholds = [60.0, 20.0]  # any order
    column = {(True, True): 0, (False, True): 1, (True, False): 2, (False, False): 3}  # H, M, F, C
    expected = torch.zeros(2, 2, 4, dtype=torch.float64)
    for b, t, i, j in torch.cartesian_prod(*(torch.arange(n) for n in pred.shape)).tolist():
        if not math.isnan(target[b, t, i, j]):
            for k, level in enumerate(thresholds):
                expected[b, k, column[bool(pred[b, t, i, j] >= level), bool(target[b, t, i, j] >= level)]] += 1
    assert torch.equal(contingency(pred, target, thresholds, reduction="none"), expected)

    # pool 3: a block is an event where its maximum (over the valid truth pixels) reaches the level
    def blocks(x):
        return x.reshape(2, 3, 2, 3, 2, 3).permute(0, 1, 2, 4, 3, 5).reshape(2, 3, 2, 2, 9)

    assert not blocks(target).isnan().all(-1).any()
    pooled_pred = blocks(pred).amax(-1)
    pooled_target = blocks(target).nan_to_num(nan=-1.0).amax(-1)
    assert torch.equal(
        contingency(pred, target, thresholds, pool=3), contingency(pooled_pred, pooled_target, thresholds)
    )
