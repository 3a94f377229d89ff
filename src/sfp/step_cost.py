"""The cost of an SFP training step against a baseline step, measured in one process, interleaved.

The equal-time baseline gets ``SFP's steps x this ratio`` steps, so its budget does not inherit the noise of
wall-clock stage times on a shared machine. Both modules are trained on the same batch of the run's own data, in
alternating short fits (the first round discarded as warm-up); each step is timed from the batch's start to the end
of its optimizer step, and the ratio is taken between medians. An SFP step plans when its batch is not in the
pseudo-label cache: the first step of a fit here, and in the stage itself every step of the epochs where the cache
is renewed (``pseudo_labels.refresh_every``). The ratio weighs the two kinds of step by their share of the stage.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

ROUNDS = 5  # timed rounds of one baseline fit and one SFP fit each, after one warm-up round
STEPS = 4  # steps of each fit: an SFP fit's first step plans, the others find their labels cached


class _StepTimes(Callback):
    """Seconds of each training step, from the batch's start to the end of its optimizer step."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, *args: Any) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, *args: Any) -> None:
        self.seconds.append(time.perf_counter() - self._start)


class _OneBatch(L.LightningDataModule):
    """The run's data module, whose training loader gives one of its batches ``steps`` times (an epoch)."""

    def __init__(self, datamodule: L.LightningDataModule, steps: int) -> None:
        super().__init__()
        self.datamodule, self.batches = datamodule, [next(iter(datamodule.train_dataloader()))] * steps

    def __getattr__(self, name: str) -> Any:  # the task, its normalisation, windows: the wrapped module's
        wrapped = self.__dict__.get("datamodule")
        if wrapped is None:
            raise AttributeError(name)
        return getattr(wrapped, name)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.batches, batch_size=None)  # each item a batch as it is


def planned_share(steps: int, steps_per_epoch: int, refresh_every: int) -> float:
    """The share of ``steps`` training steps whose batch is planned: all of them when ``refresh_every`` is 0, else
    the steps of every ``refresh_every``-th epoch (the pseudo-label cache is renewed there; other epochs reuse it)."""
    if steps <= 0:
        return 0.0
    if refresh_every == 0:
        return 1.0
    planned = sum(1 for step in range(steps) if (step // steps_per_epoch) % refresh_every == 0)
    return planned / steps


def _step_seconds(module: L.LightningModule, datamodule: L.LightningDataModule, accelerator: str) -> list[float]:
    timer = _StepTimes()
    trainer = L.Trainer(max_steps=STEPS, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, callbacks=[timer], accelerator=accelerator,
                        devices=1)
    trainer.fit(module, datamodule=datamodule)
    return timer.seconds


def measure_step_cost(build_sfp: Callable[[], L.LightningModule], build_baseline: Callable[[], L.LightningModule],
                      datamodule: L.LightningDataModule, share: float, accelerator: str = "auto") -> dict[str, Any]:
    """The cost of one SFP step in baseline steps: ``build_sfp()`` (its pseudo-labels cached within an epoch) and
    ``build_baseline()`` make fresh modules from the same agent, each fitted ``STEPS`` steps on one batch in
    ``ROUNDS`` interleaved rounds on one device of ``accelerator``; ``share``: the stage's share of steps that plan
    (:func:`planned_share`)."""
    from sfp.pipeline_config import quiet_lightning

    one_batch = _OneBatch(datamodule, STEPS)
    baseline, planning, cached = [], [], []
    with quiet_lightning():
        for round_ in range(ROUNDS + 1):
            base = _step_seconds(build_baseline(), one_batch, accelerator)
            sfp = _step_seconds(build_sfp(), one_batch, accelerator)
            if round_ > 0:
                baseline += base
                planning.append(sfp[0])
                cached += sfp[1:]
    seconds = {name: statistics.median(values)
               for name, values in (("baseline", baseline), ("planning", planning), ("cached", cached))}
    ratio = (share * seconds["planning"] + (1 - share) * seconds["cached"]) / seconds["baseline"]
    return {"ratio": ratio, "planned_share": share, "step_seconds": seconds}
