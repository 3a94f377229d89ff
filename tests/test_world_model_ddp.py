"""Under Lightning DDP (2 CPU processes over gloo, forked) every rank ends training with the same codebook.

Each rank saves its final codebook and a checksum of its last batch; the plain ``ddp`` launcher (which runs the
command again for the second rank) is exercised by ``sfp fit`` in tests/test_cli_train.py.
"""

from pathlib import Path

import lightning as L
import pytest
import torch

from forked import skip_once_the_gpu_was_used
from sfp.planning import WorldModelModule
from world_model_helpers import TINY, FramesDataModule


class Recorder(L.Callback):
    """Keeps the codebook after the first step and the checksum of the latest batch of this rank."""

    def __init__(self) -> None:
        self.first_codebook: torch.Tensor | None = None
        self.last_batch = 0.0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.first_codebook is None:
            self.first_codebook = module.world_model.quantizer.codebook.clone()
        self.last_batch = float(batch[3].sum())


class Saver(L.Callback):
    """Writes this rank's final codebook, first-step codebook and last-batch checksum to ``out``."""

    def __init__(self, out: Path, recorder: Recorder) -> None:
        self.out, self.recorder = out, recorder

    def on_train_end(self, trainer, module):
        torch.save({"codebook": module.world_model.quantizer.codebook, "first": self.recorder.first_codebook,
                    "last_batch": self.recorder.last_batch}, self.out / f"rank{trainer.global_rank}.pt")


@pytest.mark.slow
def test_codebooks_are_identical_across_ranks(tmp_path):
    skip_once_the_gpu_was_used()
    L.seed_everything(0, verbose=False)
    module = WorldModelModule({"in_frames": 3, "out_frames": 2, "channels": 1, **TINY}, leads_per_step=None)
    recorder = Recorder()
    trainer = L.Trainer(strategy="ddp_fork", accelerator="cpu", devices=2, max_steps=4, limit_val_batches=0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[recorder, Saver(tmp_path, recorder)])
    trainer.fit(module, datamodule=FramesDataModule(sequences=32, batch_size=4))
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert rank0["last_batch"] != rank1["last_batch"]  # the ranks trained on different data ...
    assert not torch.equal(rank0["codebook"], rank0["first"])  # ... which kept moving the codebook ...
    assert torch.equal(rank0["codebook"], rank1["codebook"])  # ... identically on both.
