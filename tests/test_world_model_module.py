"""WorldModelModule: normalization from the data module, the loss, NaN targets and logged codebook statistics."""

import lightning as L
import pytest
import torch

from sfp.errors import UserError
from sfp.planning import WorldModelModule, usage_statistics
from world_model_helpers import TINY, FramesDataModule, random_frames


def tiny_module(**overrides) -> WorldModelModule:
    torch.manual_seed(0)
    architecture = {"in_frames": 3, "out_frames": 2, "channels": 1, **TINY}
    return WorldModelModule(architecture, **{"warmup_steps": 2, **overrides})


def fit(module: WorldModelModule, datamodule: L.LightningDataModule, epochs: int = 2) -> L.Trainer:
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=datamodule)
    return trainer


def test_usage_statistics_by_hand():
    stats = usage_statistics(torch.tensor([2.0, 2.0, 0.0, 0.0]))
    assert stats["codebook_usage"].item() == pytest.approx(0.5)
    assert stats["perplexity"].item() == pytest.approx(2.0)  # two equally likely codes
    assert stats["dead_codes"].item() == 2


def test_training_takes_the_data_modules_statistics_and_logs_the_codebook(tmp_path):
    module = tiny_module()
    trainer = fit(module, FramesDataModule(mean=127.0, std=74.0))
    # The checkpoint carries the statistics and the codebook, and loads with weights_only=True.
    trainer.save_checkpoint(tmp_path / "wm.ckpt")
    loaded = WorldModelModule.load_from_checkpoint(tmp_path / "wm.ckpt", weights_only=True).eval()
    module.eval()
    context, future = random_frames(2, 3), random_frames(2, 2, seed=1)
    torch.testing.assert_close(loaded.world_model.reconstruct(future, context),
                               module.world_model.reconstruct(future, context))
    assert module.world_model.mean.item() == 127.0 and module.world_model.std.item() == 74.0
    logged = trainer.logged_metrics
    for stage in ("train", "val"):
        assert 0 < logged[f"{stage}/codebook_usage"].item() <= 1
        assert 1 <= logged[f"{stage}/perplexity"].item() <= 16
        dead = logged[f"{stage}/dead_codes"].item()
        assert dead == pytest.approx(16 * (1 - logged[f"{stage}/codebook_usage"].item()))
    assert torch.isfinite(logged["train/loss_epoch"]) and torch.isfinite(logged["val/recon_mse"])
    assert bool(module.world_model.quantizer.initialized)


@pytest.mark.filterwarnings("ignore:You are trying to")
def test_loss_is_normalized_mse_plus_weighted_commitment_and_skips_missing_values():
    module = tiny_module(commitment_weight=0.5, leads_per_step=None)
    module.world_model.set_normalization(100.0, 50.0)
    module.eval()
    context, target = random_frames(2, 3), random_frames(2, 2, seed=1)
    times = torch.zeros(2, 3, 1)
    out = module.world_model(target, context)
    error = (out.reconstruction - target) / 50.0
    expected = error.pow(2).mean() + 0.5 * out.commitment
    torch.testing.assert_close(module._loss((times, context, times, target), "val"), expected)
    mask = torch.ones_like(target, dtype=torch.bool)
    mask[:, 1] = False
    target[0, 0, 0, 0, 0] = float("nan")
    out = module.world_model(target, context)
    error = (out.reconstruction - target) / 50.0
    masked = error[:, :1].pow(2).flatten()[1:].mean()  # lead 1 masked out, the NaN pixel is element 0
    loss = module._loss((times, context, times, target, mask), "val")
    torch.testing.assert_close(loss, masked + 0.5 * out.commitment)


def test_bad_arguments_and_batches_raise_user_errors():
    with pytest.raises(UserError, match="leads_per_step"):
        tiny_module(leads_per_step=0)
    with pytest.raises(UserError, match="lr"):
        tiny_module(lr=0.0)
    module = tiny_module()
    with pytest.raises(UserError, match="a batch is"):
        module._loss((random_frames(2, 3),), "val")
    with pytest.raises(UserError, match="target_y must be"):
        module._loss((None, random_frames(2, 3), None, random_frames(2, 3)), "val")


def test_per_pixel_statistics_pool_to_one_per_channel():
    """Two pixels of means 0 and 2 and stds 1: the pooled mean is 1, the pooled variance 1 + 1 = 2."""
    from sfp.planning.world_model_module import channel_moments

    mean, std = channel_moments({"mean": torch.tensor([[[0.0, 2.0]]]), "std": torch.ones(1, 1, 2)})
    torch.testing.assert_close(mean, torch.tensor([1.0]))
    torch.testing.assert_close(std, torch.tensor([2.0]).sqrt())
    per_channel = {"mean": torch.tensor([3.0]), "std": torch.tensor([2.0])}
    assert channel_moments(per_channel) == (per_channel["mean"], per_channel["std"])
