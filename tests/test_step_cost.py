"""The equal-time baseline's budget: the share of SFP steps that plan, and the step-cost ratio measured in-process."""

import time

import lightning as L
import pytest
import torch

from sfp.step_cost import ROUNDS, STEPS, measure_step_cost, planned_share


@pytest.mark.parametrize(("steps", "per_epoch", "refresh", "share"), [
    (10, 4, 0, 1.0),  # plans every step
    (10, 4, 1, 1.0),  # the cache is renewed every epoch
    (10, 4, 3, 0.4),  # epochs 0, 1, 2: only epoch 0 (steps 0-3) plans
    (10, 4, 2, 0.6),  # epochs 0 and 2 plan: steps 0-3 and 8-9
    (3, 4, 3, 1.0),  # fewer steps than an epoch: all in the first, planned
    (0, 4, 3, 0.0),
])
def test_planned_share_counts_the_steps_of_renewed_epochs(steps, per_epoch, refresh, share):
    assert planned_share(steps, per_epoch, refresh) == pytest.approx(share)


class _Sleeper(L.LightningModule):
    """A module whose first training step of a fit takes ``first`` seconds and every other ``rest``."""

    def __init__(self, first: float, rest: float):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.first, self.rest, self.calls = first, rest, 0

    def training_step(self, batch, batch_idx):
        time.sleep(self.first if self.calls == 0 else self.rest)
        self.calls += 1
        return (self.weight - batch.sum()) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


class _Data(L.LightningDataModule):
    def __init__(self):
        super().__init__()
        self.task = "kept"  # a run's data module's attributes reach the modules through the one-batch wrapper

    def train_dataloader(self):
        return [torch.ones(2)] * 7


def test_step_cost_weighs_planning_and_cached_steps_by_their_share():
    built = {"sfp": 0, "baseline": 0}

    def build(name, first, rest):
        built[name] += 1
        return _Sleeper(first, rest)

    cost = measure_step_cost(lambda: build("sfp", 0.12, 0.03), lambda: build("baseline", 0.03, 0.03), _Data(),
                             share=0.25, accelerator="cpu")
    assert built == {"sfp": ROUNDS + 1, "baseline": ROUNDS + 1}  # fresh modules, one warm-up round dropped
    seconds = cost["step_seconds"]
    assert seconds["planning"] == pytest.approx(0.12, rel=0.3)
    assert seconds["cached"] == pytest.approx(0.03, rel=0.3) and seconds["baseline"] == pytest.approx(0.03, rel=0.3)
    expected = (0.25 * seconds["planning"] + 0.75 * seconds["cached"]) / seconds["baseline"]
    assert cost["ratio"] == pytest.approx(expected)
    assert cost["ratio"] == pytest.approx((0.25 * 0.12 + 0.75 * 0.03) / 0.03, rel=0.3)  # 1.75
    assert cost["planned_share"] == 0.25 and STEPS >= 2
