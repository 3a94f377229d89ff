"""Continuous scores (MSE, MAE, PSNR, SSIM, CRPS) against hand-computed values and torchmetrics."""

import math

import pytest
import torch
from torchmetrics.image import StructuralSimilarityIndexMeasure

from sfp.errors import UserError
from sfp.metrics import crps, mae, mse, psnr, ssim

NAN = float("nan")


def test_mse_mae_ignore_nan_targets():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[1.0, 0.0], [NAN, 1.0]])
    # sample 0: errors 0, 2; sample 1: NaN ignored, error 3
    assert mse(pred, target, reduction="none").tolist() == [2.0, 9.0]
    assert mae(pred, target, reduction="none").tolist() == [1.0, 3.0]
    assert mse(pred, target).item() == pytest.approx(13 / 3)
    assert mae(pred, target).item() == pytest.approx(5 / 3)


def test_sample_without_valid_target_is_nan():
    pred = torch.zeros(2, 3)
    target = torch.tensor([[NAN, NAN, NAN], [1.0, 1.0, 1.0]])
    per_sample = mse(pred, target, reduction="none")
    assert math.isnan(per_sample[0]) and per_sample[1] == 1.0
    assert mse(pred, target).item() == 1.0


def test_integer_inputs_are_promoted():
    pred = torch.tensor([[10, 20]], dtype=torch.uint8)
    target = torch.tensor([[20, 10]], dtype=torch.uint8)  # uint8 subtraction would wrap around
    assert mse(pred, target).item() == 100.0


def test_user_errors():
    with pytest.raises(UserError, match="shape"):
        mse(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(UserError, match="reduction"):
        mae(torch.zeros(2, 3), torch.zeros(2, 3), reduction="sum")
    with pytest.raises(UserError, match="data_range"):
        psnr(torch.zeros(2, 3), torch.zeros(2, 3), data_range=0)
    with pytest.raises(UserError, match="SSIM"):
        ssim(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), data_range=1.0)


def test_psnr_per_sample_and_mean():
    target = torch.zeros(2, 3, 4)
    pred = torch.stack([torch.full((3, 4), 0.2), torch.full((3, 4), 0.02)])
    # data range 2: 10 log10(4 / 0.04) = 20 dB and 10 log10(4 / 0.0004) = 40 dB
    assert psnr(pred, target, data_range=2.0, reduction="none").tolist() == pytest.approx([20.0, 40.0])
    assert psnr(pred, target, data_range=2.0).item() == pytest.approx(30.0)


def test_ssim_of_constant_images_is_the_luminance_term():
    pred = torch.full((1, 1, 12, 12), 0.2, dtype=torch.float64)
    target = torch.full((1, 1, 12, 12), 0.6, dtype=torch.float64)
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)  # variances and covariance vanish
    assert ssim(pred, target, data_range=1.0).item() == pytest.approx(expected, rel=1e-5)


def test_ssim_matches_torchmetrics():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(3, 2, 2, 16, 20, generator=gen) * 255
    pred = (target + 40 * torch.randn(target.shape, generator=gen)).clamp(0, 255)
    reference = StructuralSimilarityIndexMeasure(data_range=255.0)
    expected = reference(pred.reshape(6, 2, 16, 20), target.reshape(6, 2, 16, 20))
    assert ssim(pred, target, data_range=255.0).item() == pytest.approx(expected.item(), abs=1e-5)
    # per sample: the mean over that sample's frames and channels
    per_sample = ssim(pred, target, data_range=255.0, reduction="none")
    for b in range(3):
        expected = StructuralSimilarityIndexMeasure(data_range=255.0)(pred[b], target[b])
        assert per_sample[b].item() == pytest.approx(expected.item(), abs=1e-5)


def test_ssim_identity_and_symmetry():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.rand(2, 1, 2, 12, 12, generator=gen)
    assert ssim(a[None], a[None], data_range=1.0).item() == pytest.approx(1.0, abs=1e-6)
    assert ssim(a[None], b[None], 1.0).item() == pytest.approx(ssim(b[None], a[None], 1.0).item(), abs=1e-7)
    assert ssim(a[None], b[None], 1.0).item() < 0.5


def test_crps_hand_computed():
    # members {0, 2} vs 1: E|X-y| = 1, E|X-X'| = (0+2+2+0)/4 = 1, CRPS = 1 - 1/2
    assert crps(torch.tensor([[0.0, 2.0]]), torch.tensor([1.0])).item() == pytest.approx(0.5)
    # members {0, 1, 3} vs 2: E|X-y| = 4/3, E|X-X'| = 2 (1+3+2)/9 = 4/3, CRPS = 4/3 - 2/3
    assert crps(torch.tensor([[3.0, 0.0, 1.0]]), torch.tensor([2.0])).item() == pytest.approx(2 / 3)


def test_crps_with_one_member_is_mae_and_matches_pairwise_form():
    gen = torch.Generator().manual_seed(2)
    target = torch.randn(3, 4, 5, generator=gen)
    single = torch.randn(3, 1, 4, 5, generator=gen)
    assert crps(single, target).item() == pytest.approx(mae(single[:, 0], target).item(), rel=1e-6)

    ensemble = torch.randn(3, 6, 4, 5, generator=gen)
    skill = (ensemble - target[:, None]).abs().mean(1)
    spread = (ensemble[:, :, None] - ensemble[:, None, :]).abs().mean((1, 2))
    expected = (skill - spread / 2).mean((1, 2))
    assert torch.allclose(crps(ensemble, target, reduction="none"), expected, atol=1e-6)


def test_crps_ignores_nan_targets_and_checks_shapes():
    ensemble = torch.tensor([[[0.0, 5.0], [2.0, 5.0]]])  # (B=1, M=2, 2)
    target = torch.tensor([[1.0, NAN]])
    assert crps(ensemble, target).item() == pytest.approx(0.5)
    with pytest.raises(UserError, match="ensemble"):
        crps(torch.zeros(2, 3, 4), torch.zeros(2, 5))
