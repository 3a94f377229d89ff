"""torchmetrics Metrics: exact accumulation over batches, sum-merging of states, no host reads in update."""

from unittest import mock

import pytest
import torch

from sfp.errors import UserError
from sfp.metrics import (
    CRPS,
    FSS,
    MAE,
    MSE,
    PSNR,
    SSIM,
    ContingencyScores,
    MSEPerLead,
    TKESpectrumError,
    crps,
    fss,
    mae,
    mse,
    psnr,
    ssim,
    tke_spectrum_error,
)

NAN = float("nan")


def _batches(seed: int = 0, shape=(2, 3, 1, 12, 12), scale: float = 1.0):
    gen = torch.Generator().manual_seed(seed)
    target = torch.rand((2, *shape), generator=gen) * scale
    pred = target + 0.2 * scale * torch.randn(target.shape, generator=gen)
    return list(zip(pred.unbind(0), target.unbind(0)))


def _accumulate(metric, batches):
    for pred, target in batches:
        metric.update(pred, target)
    return metric.compute()


def _all(batches):
    return torch.cat([p for p, _ in batches]), torch.cat([t for _, t in batches])


def test_csi_sums_counts_over_the_set_not_per_batch_scores():
    metric = ContingencyScores([16])
    # batch 1: one hit (CSI 1); batch 2: three misses (CSI 0); per-batch mean 0.5, over the set 1/4
    metric.update(torch.tensor([[20.0, 0.0]]), torch.tensor([[20.0, 0.0]]))
    metric.update(torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([[20.0, 20.0, 20.0]]))
    assert metric.counts.tolist() == [[1, 3, 0, 1]]
    assert metric.compute()["csi"].item() == pytest.approx(0.25)


def test_mse_mae_over_batches_with_nan_and_value_scale():
    batches = _batches(scale=255.0)
    batches[1][1][0, 0, 0, :3, :3] = NAN
    pred, target = _all(batches)
    assert _accumulate(MSE(value_scale=255.0), batches).item() == pytest.approx(mse(pred / 255, target / 255).item())
    assert _accumulate(MAE(value_scale=255.0), batches).item() == pytest.approx(mae(pred / 255, target / 255).item())


def test_mse_per_lead_time():
    pred = torch.zeros(2, 3, 2)
    target = torch.tensor([[[1.0, 1.0], [2.0, 2.0], [0.0, NAN]], [[1.0, 1.0], [0.0, 0.0], [3.0, 3.0]]])
    metric = MSEPerLead(3)
    metric.update(pred[:1], target[:1])
    metric.update(pred[1:], target[1:])
    # lead 1: all ones -> 1; lead 2: (4+4+0+0)/4 = 2; lead 3: (0 + 9 + 9)/3 = 6
    assert metric.compute().tolist() == pytest.approx([1.0, 2.0, 6.0])
    with pytest.raises(UserError, match="forecasts"):
        metric.update(torch.zeros(1, 4, 2), torch.zeros(1, 4, 2))


@pytest.mark.parametrize(
    ("metric", "function"),
    [
        (lambda: SSIM(data_range=1.0), lambda p, t: ssim(p, t, 1.0)),
        (lambda: PSNR(data_range=1.0), lambda p, t: psnr(p, t, 1.0)),
        (lambda: TKESpectrumError(), tke_spectrum_error),
        (lambda: FSS([0.5], [3]), lambda p, t: fss(p, t, 0.5, 3)),
    ],
)
def test_accumulated_value_equals_the_function_on_the_whole_set(metric, function):
    batches = _batches(seed=3)
    pred, target = _all(batches)
    assert _accumulate(metric(), batches).squeeze().item() == pytest.approx(function(pred, target).item(), rel=1e-6)


def test_fss_metric_grid_and_undefined_entries():
    metric = FSS([0.5, 10.0], [1, 3])
    value = _accumulate(metric, _batches(seed=4))
    assert value.shape == (2, 2)
    assert not value[0].isnan().any() and value[1].isnan().all()  # nothing reaches 10: undefined


def test_crps_metric():
    gen = torch.Generator().manual_seed(5)
    ensembles = torch.randn(2, 3, 4, 5, generator=gen)  # two batches of (B=3, M=4, 5)
    targets = torch.randn(2, 3, 5, generator=gen)
    metric = CRPS()
    for e, t in zip(ensembles, targets):
        metric.update(e, t)
    assert metric.compute().item() == pytest.approx(crps(ensembles.flatten(0, 1), targets.flatten(0, 1)).item())


def test_merged_states_equal_one_pass_and_reset_clears():
    batches = _batches(seed=6, scale=255.0)
    one_pass = _accumulate(ContingencyScores([50.0, 150.0], pool=4), batches)
    first, second = ContingencyScores([50.0, 150.0], pool=4), ContingencyScores([50.0, 150.0], pool=4)
    first.update(*batches[0])
    second.update(*batches[1])
    first.merge_state(second)  # what the distributed "sum" reduction does across processes
    assert torch.equal(first.compute()["csi"], one_pass["csi"])
    first.reset()
    assert first.counts.sum().item() == 0 and first.counts.dtype == torch.float64


def test_update_reads_nothing_back_to_the_host():
    """No .item()/.tolist()/bool() of a tensor in update: on an accelerator each would be a synchronization."""
    metrics = [MSE(255.0), MAE(), MSEPerLead(3), ContingencyScores([0.5], pool=2), FSS([0.5], [3]), SSIM(1.0),
               PSNR(1.0), TKESpectrumError()]
    batches = _batches(seed=7)

    def forbidden(*args, **kwargs):
        raise AssertionError("host read during update")

    with mock.patch.multiple(torch.Tensor, item=forbidden, tolist=forbidden, __bool__=forbidden,
                             __float__=forbidden, __int__=forbidden):
        for metric in metrics:
            metric.update(*batches[0])
    assert metrics[0].count.item() == batches[0][1].numel()


def test_metric_user_errors():
    with pytest.raises(UserError, match="value_scale"):
        MSE(value_scale=0)
    with pytest.raises(UserError, match="target_len"):
        MSEPerLead(0)
    with pytest.raises(UserError, match="window"):
        FSS([1.0], [0])
    with pytest.raises(UserError, match="data_range"):
        SSIM(data_range=-1.0)


def test_states_stay_float64_when_the_owner_is_cast():
    owner = torch.nn.Module()
    owner.events = ContingencyScores([0.5])
    owner.to(torch.bfloat16)  # what Lightning's "bf16-true" precision does to the LightningModule
    pred = torch.ones(1, 1001)
    owner.events.update(pred, pred)
    owner.events.update(pred, pred)
    assert owner.events.counts.dtype == torch.float64
    assert owner.events.counts[0, 0].item() == 2002  # not representable in bfloat16 (8 significant bits)
