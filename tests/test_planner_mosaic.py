"""The mosaic planner and the rewards' local scores: hand-computed local CSI, a patch-separable world model where
the mosaic is the brute-force per-patch optimum, and never worse than best-of-K on the same draws."""

import pytest
import torch

from sfp.planning.options import Imagination, PlannerOptions
from sfp.planning.planner import BestOfKPlanner, MosaicPlanner
from sfp.planning.rewards import csi, neg_mse, weighted
from sfp.planning.world_model import WorldModel

TINY_WORLD = {"in_frames": 2, "out_frames": 3, "channels": 1, "width": 8, "decoder_blocks": 1, "code_dim": 4,
              "codebook_size": 16}


def opts(samples: int = 16, candidates: int = 8, temperature: float = 1.0, **planner) -> PlannerOptions:
    """Planner options with these imagination settings (8 candidates: the tiny codebooks have 16 codes)."""
    return PlannerOptions(imagination=Imagination(samples, candidates, temperature), **planner)


class PatchWorld:
    """A world model whose code ``c`` decodes to a patch filled with the value ``c`` (patches independent) and
    whose draws are uniform over the codebook: the plannable futures are exactly the per-patch choices."""

    factor, codebook_size = 2, 8

    def encode(self, action, context):
        batch, frames, _, height, width = action.shape
        return action.new_zeros(batch, frames, height // 2, width // 2, 1)

    def nearest(self, latents):
        return torch.zeros(latents.shape[:-1], dtype=torch.long)  # the action: code 0 everywhere

    def sample_codes(self, latents, imagination, generator, n=None):
        n = imagination.samples if n is None else n
        return torch.randint(0, self.codebook_size, (latents.shape[0], n, *latents.shape[1:4]), generator=generator)

    def decode(self, indices, context, lead_times=None):
        frames = indices.float().repeat_interleave(2, -2).repeat_interleave(2, -1)
        return frames.unsqueeze(-3)  # (b, n, T, 1, H, W)


def test_csi_local_score_counts_wrong_events_over_each_thresholds_union():
    pred = torch.tensor([0.0, 2.0, 3.0]).view(1, 1, 1, 1, 3)
    target = torch.tensor([1.0, 0.0, 3.0]).view(1, 1, 1, 1, 3)
    # threshold 1: wrong at pixels 0 and 1, union of events 3; threshold 2: wrong at pixel 1, union 2
    expected = -torch.tensor([1 / 3, 1 / 3 + 1 / 2, 0.0]).view(1, 1, 1, 3)
    torch.testing.assert_close(csi([1.0, 2.0]).local(pred, target), expected)


def test_default_and_weighted_local_scores():
    pred, target = torch.tensor([1.0, 4.0]).view(1, 1, 1, 1, 2), torch.tensor([3.0, float("nan")]).view(1, 1, 1, 1, 2)
    torch.testing.assert_close(neg_mse().local(pred, target), torch.tensor([-4.0, 0.0]).view(1, 1, 1, 2))
    torch.testing.assert_close(weighted(neg_mse=0.5).local(pred, target), torch.tensor([-2.0, 0.0]).view(1, 1, 1, 2))


def test_mosaic_is_the_per_patch_optimum_on_a_patch_separable_world():
    world = PatchWorld()
    generator = torch.Generator().manual_seed(3)
    target = torch.rand(2, 3, 1, 4, 6, generator=generator) * 7
    context = torch.zeros(2, 1, 1, 4, 6)
    draws = world.sample_codes(world.encode(target, context), Imagination(5, 8, 1.0), torch.Generator().manual_seed(0))
    values = torch.cat([torch.zeros_like(draws[:, :1]), draws], 1).float()  # (B, 1 + K, T, h, w): patch values
    patch_truth = target[:, None, :, 0].unfold(-2, 2, 2).unfold(-2, 2, 2)  # (B, 1, T, h, w, 2, 2)
    errors = (values[..., None, None] - patch_truth).pow(2).sum((-1, -2))
    optimum = -errors.min(dim=1).values.sum((1, 2, 3)) / target[0].numel()  # brute force, patch by patch
    result = MosaicPlanner(world, neg_mse(), opts(samples=5, candidates=8)).plan(context, target, target,
                                                                   torch.Generator().manual_seed(0))
    torch.testing.assert_close(result.reward, optimum.to(result.reward.dtype))
    torch.testing.assert_close(result.reward, neg_mse()(result.best, target))


@pytest.mark.parametrize("reward", [csi([0.0, 0.5, 1.0]), neg_mse()])
def test_never_worse_than_best_of_k_on_the_same_draws(reward):
    torch.manual_seed(0)
    world = WorldModel(TINY_WORLD).eval()
    generator = torch.Generator().manual_seed(1)
    context, action, target = (torch.randn(3, frames, 1, 8, 8, generator=generator) for frames in (2, 3, 3))
    best_of = BestOfKPlanner(world, reward, opts(samples=6)).plan(context, action, target,
                                                              torch.Generator().manual_seed(0))
    mosaic = MosaicPlanner(world, reward, opts(samples=6)).plan(context, action, target,
                                                            torch.Generator().manual_seed(0))
    assert (mosaic.reward >= best_of.reward).all()
    torch.testing.assert_close(mosaic.reward, reward(mosaic.best, target).to(mosaic.reward.dtype))
    torch.testing.assert_close(mosaic.action_reward, best_of.action_reward)


def test_mosaic_hands_back_the_actions_reconstruction_at_every_chunk_size():
    torch.manual_seed(0)
    world = WorldModel(TINY_WORLD).eval()
    generator = torch.Generator().manual_seed(1)
    context, action, target = (torch.randn(3, frames, 1, 8, 8, generator=generator) for frames in (2, 3, 3))
    expected = world.reconstruct(action, context)
    for max_batch_frames in (512, 3):  # one block of every sample, and one candidate of one sample per block
        planner = MosaicPlanner(world, neg_mse(), opts(samples=4, max_batch_frames=max_batch_frames))
        result = planner.plan(context, action, target, torch.Generator().manual_seed(0))
        torch.testing.assert_close(result.reconstruction, expected)
    best_of = BestOfKPlanner(world, neg_mse(), opts(samples=4)).plan(context, action, target)
    assert best_of.reconstruction is None
