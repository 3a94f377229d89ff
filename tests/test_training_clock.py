"""FitClock: a resumed fit counts the seconds its interrupted attempt spent up to the checkpoint it resumes."""

import time

import torch

from forecaster_helpers import TimeLinear, TinyDataModule, series_batch, tiny_trainer
from sfp.task import SENSORS
from sfp.training import FitClock, run_callbacks


def _fit(root, data, max_steps: int, resume: str | None = None) -> tuple[FitClock, float]:
    callbacks = run_callbacks(root, data, checkpoint_every=2, progress=False)
    trainer = tiny_trainer(max_steps=max_steps, callbacks=callbacks, enable_checkpointing=True,
                           default_root_dir=str(root))
    start = time.perf_counter()
    trainer.fit(TimeLinear(), datamodule=data, ckpt_path=resume, weights_only=True)
    return next(c for c in callbacks if isinstance(c, FitClock)), time.perf_counter() - start


def _saved_seconds(path) -> float:
    return torch.load(path, weights_only=True)["callbacks"]["FitClock"]["seconds"]


def test_resumed_fit_carries_the_seconds_of_the_attempt_before(tmp_path):
    batches = series_batch(n=16), series_batch(n=4, seed=1), series_batch(n=4, seed=2)
    data = TinyDataModule(*batches, task=SENSORS, stats={"mean": torch.zeros(1), "std": torch.ones(1)})
    last = tmp_path / "checkpoints" / "last.ckpt"

    first, first_wall = _fit(tmp_path, data, max_steps=4)
    carried = _saved_seconds(last)
    assert 0 < carried <= first_wall and first.seconds_before == 0

    second, second_wall = _fit(tmp_path, data, max_steps=8, resume=str(last))
    assert second.seconds_before == carried
    assert carried < _saved_seconds(last) <= carried + second_wall
