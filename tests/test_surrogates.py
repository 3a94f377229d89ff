"""The differentiable stand-ins for the headline metrics (sfp.metrics.surrogates), checked against hand counts, and
the rule that picks the surrogate baseline's weight."""

import math

import pytest
import torch

from sfp.errors import UserError
from sfp.metrics.functional import ssim
from sfp.metrics.surrogates import soft_csi_loss, soft_csi_surrogate, surrogate_for_task
from sfp.surrogate_weights import (
    SURROGATE_EXTRA_WEIGHTS,
    choose_surrogate_weight,
    match_surrogate_weight,
    next_surrogate_weight,
)
from sfp.task import FLAME, NAVIER_STOKES, RADAR, SENSORS, STORMS

PRED = torch.tensor([1.0, 3.0, 6.0, 9.0])
TRUTH = torch.tensor([3.0, 1.0, 9.0, 5.0])
ALL = torch.ones(4, dtype=torch.bool)


def test_a_sharp_soft_csi_is_one_minus_the_hand_counted_csi_m():
    # >= 2: forecast at 1, 2, 3; observed at 0, 2, 3 -> 2 hits, 1 miss, 1 false alarm: CSI 1/2
    # >= 8: forecast at 3, observed at 2 -> 0 hits: CSI 0
    loss = soft_csi_loss(PRED, TRUTH, ALL, (2.0, 8.0), width=1e-4)
    assert loss.item() == pytest.approx(1 - (0.5 + 0.0) / 2, abs=1e-6)


def test_invalid_pixels_do_not_count():
    pred, truth = torch.cat([PRED, torch.tensor([50.0])]), torch.cat([TRUTH, torch.tensor([0.0])])
    valid = torch.cat([ALL, torch.tensor([False])])  # a false alarm at every threshold, were it valid
    assert soft_csi_loss(pred, truth, valid, (2.0, 8.0), width=1e-4).item() == pytest.approx(0.75, abs=1e-6)


def test_pooled_soft_csi_forgives_a_cell_displaced_within_its_block():
    pred, truth = torch.zeros(1, 1, 1, 4, 4), torch.zeros(1, 1, 1, 4, 4)
    truth[..., 0, 0] = 10.0
    pred[..., 1, 1] = 10.0  # one pixel off: a miss and a false alarm pixel by pixel
    pred[..., 3, 3] = 10.0  # a false alarm in another block
    valid = torch.ones_like(truth, dtype=torch.bool)
    assert soft_csi_loss(pred, truth, valid, (5.0,), width=1e-4).item() == pytest.approx(1.0, abs=1e-6)
    # 2x2 blocks: the top-left block hits, the bottom-right one is a false alarm: CSI 1/2
    assert soft_csi_loss(pred, truth, valid, (5.0,), width=1e-4, pool=2).item() == pytest.approx(0.5, abs=1e-6)
    valid[..., 2:, 2:] = False  # a block with no valid pixel counts for nothing
    assert soft_csi_loss(pred, truth, valid, (5.0,), width=1e-4, pool=2).item() == pytest.approx(0.0, abs=1e-6)
    moving = pred.clone().requires_grad_(True)
    soft_csi_loss(moving, truth, valid, (5.0,), pool=2).backward()
    assert moving.grad[..., 1, 1] < 0 and moving.grad[..., 0, 0] == 0  # the block's maximum carries the gradient


def test_the_soft_csi_surrogate_is_checked():
    loss = soft_csi_surrogate([133, 181], pool=4)
    assert loss.keywords == {"thresholds": (133.0, 181.0), "width": 0.1, "pool": 4}
    with pytest.raises(UserError):
        soft_csi_surrogate([0.0])
    with pytest.raises(UserError):
        soft_csi_surrogate([5.0], pool=0)


def test_raising_a_missed_event_lowers_the_loss():
    pred = PRED.clone().requires_grad_(True)
    soft_csi_loss(pred, TRUTH, ALL, (2.0,)).backward()
    assert pred.grad[0] < 0  # pixel 0 is a miss (1 < 2 <= 3): raising it helps
    assert pred.grad[1] > 0  # pixel 1 is a false alarm (3 >= 2 > 1): lowering it helps


def test_each_headline_has_its_stand_in():
    torch.manual_seed(0)
    truth = torch.rand(2, 3, 1, 16, 16)
    valid = torch.ones_like(truth, dtype=torch.bool)
    for task in (STORMS, RADAR):  # CSI-M over the task's thresholds
        scaled = truth * task.thresholds[-1] * 2
        assert surrogate_for_task(task)(scaled, scaled, valid).item() < 0.2
    flame = surrogate_for_task(FLAME)(truth * 0.5, truth, valid)
    assert flame.item() == pytest.approx(1 - ssim(truth * 0.5, truth, FLAME.data_range).item(), abs=1e-6)
    spectrum = surrogate_for_task(NAVIER_STOKES)(3 * truth, truth, valid)  # energies x 9 at every shell
    assert spectrum.item() == pytest.approx(math.log10(9) ** 2, rel=1e-4)
    with pytest.raises(Exception, match="no differentiable surrogate"):
        surrogate_for_task(SENSORS)


def test_the_weight_whose_mse_change_is_nearest_sfps_is_kept():
    changes = {0.1: 0.0, 0.3: 0.021, 1.0: 0.05}
    assert choose_surrogate_weight(changes, 0.025) == 0.3
    assert choose_surrogate_weight(changes, -0.2) == 0.1
    assert choose_surrogate_weight({1.0: 0.25, 0.5: 0.75}, 0.5) == 0.5  # a tie: the smaller weight


def test_the_next_weight_lies_between_the_weights_that_bracket_sfps_change_or_beyond_the_grid():
    changes = {0.1: 0.040, 0.3: 0.061, 1.0: 0.090, 3.0: 0.122}
    assert next_surrogate_weight(changes, 0.026) == pytest.approx(0.1 / 3)  # below every weight's change
    assert next_surrogate_weight(changes, 0.2) == pytest.approx(9.0)  # above every weight's change
    assert next_surrogate_weight(changes, 0.075) == pytest.approx(math.sqrt(0.3 * 1.0))
    assert next_surrogate_weight({0.1: 0.04, 0.3: 0.02}, 0.03) == pytest.approx(math.sqrt(0.03))  # not monotone


def _measured(change):
    """A ``measure`` over a known MSE change per weight, recording what it was asked to train."""
    asked = []

    def measure(weights):
        asked.extend(weights)
        return {w: change(w) for w in asked}

    return measure, asked


def test_weights_are_added_until_one_matches_sfps_mse_change_within_a_point():
    measure, asked = _measured(lambda w: 0.06 + 0.02 * math.log10(w))  # +4.0 % at 0.1, +6.0 % at 1
    weight = match_surrogate_weight(measure, [0.1, 1.0], 0.026)  # SFP +2.6 %: below the grid
    assert asked[:2] == [0.1, 1.0] and asked[2] == pytest.approx(0.1 / 3)  # +3.05 %: within a point, stop
    assert len(asked) == 3 and weight == asked[2]
    measure, asked = _measured(lambda w: 0.06 + 0.02 * math.log10(w))
    assert match_surrogate_weight(measure, [0.1, 1.0], 0.041) == 0.1 and asked == [0.1, 1.0]  # the grid matched


def test_the_search_stops_after_its_extra_weights_with_the_nearest():
    measure, asked = _measured(lambda w: 0.5)  # no weight moves the MSE change toward SFP's
    assert match_surrogate_weight(measure, [0.1, 1.0], 0.0) == min(asked)  # all tie: the smallest weight
    assert len(asked) == 2 + SURROGATE_EXTRA_WEIGHTS


@pytest.mark.parametrize("weight", [-1.0, float("nan")])
def test_a_negative_or_nan_surrogate_weight_is_refused_before_anything_loads(weight):
    from sfp.errors import UserError
    from sfp.planning import SFPModule

    with pytest.raises(UserError, match="surrogate_weight"):
        SFPModule(agent_checkpoint="nosuch.ckpt", surrogate_weight=weight)


def _blob(centre_y: float, centre_x: float, amplitude: float = 10.0, width: float = 3.0) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    return (amplitude * torch.exp(-((y - centre_y) ** 2 + (x - centre_x) ** 2) / (2 * width**2)))[None, None]


def test_soft_sal_is_exact_where_sal_needs_no_objects():
    """A doubled field: only A, (2 - 1) / 1.5; a field shifted by 6 px: only L1, 6 / the diagonal."""
    from sfp.metrics.surrogates import soft_sal_loss

    truth = _blob(12, 12)
    valid = torch.ones_like(truth, dtype=torch.bool)
    assert soft_sal_loss(truth, truth, valid).item() == pytest.approx(0.0, abs=1e-6)
    assert soft_sal_loss(2 * truth, truth, valid).item() == pytest.approx(2 / 3, abs=1e-6)
    assert soft_sal_loss(_blob(12, 18), truth, valid).item() == pytest.approx(6 / math.hypot(32, 32), abs=1e-4)


def test_soft_sal_follows_sal_on_one_cell_and_has_a_gradient():
    """Against the object-based SAL (sfp.metrics.sal, a second implementation): within 10 % for one wider cell."""
    from sfp.metrics.sal import sal, sal_penalty
    from sfp.metrics.surrogates import soft_sal_loss

    truth, wide = _blob(12, 12), _blob(12, 12, width=5.0)
    exact = sal_penalty(sal(wide[:, :, None], truth[:, :, None])).item()
    forecast = wide.clone().requires_grad_(True)
    loss = soft_sal_loss(forecast, truth, torch.ones_like(truth, dtype=torch.bool))
    assert loss.item() == pytest.approx(exact, rel=0.1)
    loss.backward()
    assert torch.isfinite(forecast.grad).all() and forecast.grad.abs().sum() > 0


def test_surrogates_are_named_in_one_registry():
    from sfp.metrics.surrogates import SURROGATES, get_surrogate

    assert SURROGATES.names() == ["soft_csi", "soft_sal", "soft_vortices"]
    truth = _blob(12, 12)
    valid = torch.ones_like(truth, dtype=torch.bool)
    loss = get_surrogate({"name": "soft_csi", "thresholds": [5.0], "pool": 2})
    assert loss(truth, truth, valid).item() == pytest.approx(soft_csi_loss(truth, truth, valid, (5.0,), pool=2).item())
    with pytest.raises(UserError, match="unknown surrogate 'soft_iou'"):
        get_surrogate({"name": "soft_iou"})
    with pytest.raises(UserError, match="quantile"):
        get_surrogate({"name": "soft_sal", "quantile": 1.5})
    with pytest.raises(UserError, match="soft_sal.*unexpected keyword"):
        get_surrogate({"name": "soft_sal", "radius": 3})


def test_soft_vortices_read_the_okubo_weiss_cores_of_sfp_metrics_vortices():
    """The torch Okubo-Weiss field equals the census' numpy one (a second implementation); cores in place cost
    less than the same cores moved a quarter of the domain, and the loss has a gradient."""
    import numpy as np

    from sfp.data.registry import get_dataset
    from sfp.metrics.surrogates import _okubo_weiss, soft_vortex_loss
    from sfp.metrics.vortices import okubo_weiss

    spec = get_dataset("navier_stokes")
    fields = spec.generate(**{**spec.defaults, "n": 2, "frames": 3, "size": 32, "seed": 0})
    np.testing.assert_allclose(_okubo_weiss(torch.tensor(fields[0, 0, 0], dtype=torch.float64)).numpy(),
                               okubo_weiss(fields[0, 0, 0].astype(np.float64)), atol=1e-8)
    truth = torch.tensor(fields, dtype=torch.float32)
    valid = torch.ones_like(truth, dtype=torch.bool)
    forecast = truth.clone().requires_grad_(True)
    in_place, moved = soft_vortex_loss(forecast, truth, valid), soft_vortex_loss(torch.roll(forecast, 8, -1), truth,
                                                                                  valid)
    assert in_place.item() < 0.2 < 0.6 < moved.item()
    moved.backward()
    assert torch.isfinite(forecast.grad).all() and forecast.grad.abs().sum() > 0
