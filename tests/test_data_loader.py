"""ResumableLoader: seeded per-epoch order, DDP sharding, and exact replay after a resume from a checkpoint."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import TensorDataset

from sfp.data import loader as loader_module
from sfp.data.loader import EpochSampler, ResumableLoader


class _Recorder(L.LightningModule):
    """Trains a scalar on the indices it is fed and records them."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def training_step(self, batch, _):
        self.seen.append(batch[0].tolist())
        return (self.weight - batch[0].float().mean()) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return ResumableLoader(TensorDataset(torch.arange(20)), batch_size=3, seed=5)


def _fit(root, max_steps, resume=False):
    model = _Recorder()
    trainer = L.Trainer(max_steps=max_steps, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        use_distributed_sampler=False,
                        callbacks=[ModelCheckpoint(dirpath=root, save_last=True, every_n_train_steps=1, save_top_k=0)])
    trainer.fit(model, ckpt_path=str(root / "last.ckpt") if resume else None)
    return model.seen


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return _fit(tmp_path_factory.mktemp("full"), 16)


@pytest.mark.parametrize("cut", [4, 7, 9])  # mid-epoch, exactly at an epoch end, in the second epoch
def test_resume_replays_the_uninterrupted_order(tmp_path, cut, uninterrupted):
    full = uninterrupted
    first = _fit(tmp_path / "cut", cut)
    rest = _fit(tmp_path / "cut", 16, resume=True)
    assert first + rest == full


def test_each_epoch_is_a_new_permutation_of_all_indices():
    sampler = EpochSampler(20, seed=1)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        epochs.append(list(sampler))
    assert all(sorted(e) == list(range(20)) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2]
    sampler.set_epoch(1)
    assert list(sampler) == epochs[1]  # the order depends only on (seed, epoch)


def test_ranks_split_one_permutation(monkeypatch):
    shards = []
    for rank in range(2):
        monkeypatch.setattr(loader_module, "_rank_and_world", lambda rank=rank: (rank, 2))
        shards.append(EpochSampler(7, seed=3).shard())
    assert len(shards[0]) == len(shards[1]) == 4  # 7 padded to 8 by repeating one index
    assert set(shards[0]) | set(shards[1]) == set(range(7))
    monkeypatch.setattr(loader_module, "_rank_and_world", lambda: (0, 1))
    full = EpochSampler(7, seed=3).shard()
    assert shards[0] == full[0::2] and shards[1] == (full + full[:1])[1::2]
