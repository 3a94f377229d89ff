"""diagnose(): reconstruction scores, codebook usage, candidate spread and oracle gain on tiny cases."""

import pytest
import torch

from sfp.errors import UserError
from sfp.metrics import csi_m
from sfp.planning import Imagination, diagnose
from sfp.task import TaskSpec
from world_model_helpers import random_frames, tiny_world_model

TASK = TaskSpec("toy", value_scale=1.0, thresholds=(60.0, 150.0))


def negative_mse(pred, target):
    return -(pred - target).pow(2).flatten(1).mean(1)


def batches():
    context, target = random_frames(4, 3), random_frames(4, 2, seed=1)
    times = torch.zeros(4, 5, 1)
    return [(times[half, :3], context[half], times[half, 3:], target[half]) for half in (slice(0, 2), slice(2, 4))]


def test_temperature_zero_with_the_truth_as_action():
    model = tiny_world_model().eval()
    result = diagnose(model, batches(), lambda batch: batch[3], TASK, negative_mse, Imagination(3, 8, 0.0))
    context = torch.cat([b[1] for b in batches()])
    target = torch.cat([b[3] for b in batches()])
    reconstruction = model.reconstruct(target, context)
    recon_mse = (reconstruction - target).pow(2).mean().item()
    assert result["recon_mse"] == pytest.approx(recon_mse, rel=1e-5)
    assert result["recon_csi_m"] == pytest.approx(csi_m(reconstruction, target, TASK.thresholds).item(), rel=1e-6)
    # All imagined futures are the nearest-code decode: no spread, and none beats the truth itself.
    assert result["candidate_spread"] == 0.0
    assert result["oracle_win_rate"] == 0.0
    assert result["oracle_gain"] == pytest.approx(-recon_mse, rel=1e-5)
    codes = model.nearest(model.encode(target, context))
    used = len(set(codes.flatten().tolist()))
    assert result["codebook_usage"] == pytest.approx(used / 16)
    assert result["dead_codes"] == 16 - used


def test_spread_and_oracle_gain_against_an_explicit_recomputation():
    model = tiny_world_model().eval()

    def blank(batch):  # a useless action: an empty field
        return torch.zeros_like(batch[3])

    result = diagnose(model, batches(), blank, TASK, negative_mse, Imagination(4, 16, 10.0), seed=1)
    generator = torch.Generator().manual_seed(1)
    spreads, gains = [], []
    for _, context, _, target in batches():
        imagined = model.imagine(context, blank((0, 0, 0, target)), Imagination(4, 16, 10.0), generator)
        for sample in range(target.shape[0]):
            pairs = [(imagined[sample, i] - imagined[sample, j]).pow(2).mean()
                     for i in range(4) for j in range(4) if i != j]
            spreads.append(torch.stack(pairs).mean())
            best = max(negative_mse(imagined[sample, i:i + 1], target[sample:sample + 1]) for i in range(4))
            gains.append(best - negative_mse(torch.zeros_like(target[sample:sample + 1]), target[sample:sample + 1]))
    gains = torch.cat(gains)
    assert result["candidate_spread"] == pytest.approx(torch.stack(spreads).mean().item(), rel=1e-4)
    assert result["candidate_spread"] > 0
    assert result["oracle_gain"] == pytest.approx(gains.mean().item(), rel=1e-4)
    assert result["oracle_win_rate"] == pytest.approx((gains > 0).float().mean().item())


def test_no_batches_is_a_user_error():
    with pytest.raises(UserError, match="at least one batch"):
        diagnose(tiny_world_model(), [], lambda batch: batch[3], TASK, negative_mse)
