"""Beam search and best-of-K over a tiny (untrained) world model: shapes, brute-force optima, the nearest-code
limit, batching, chunking, seeding and the beam bookkeeping."""

import itertools

import pytest
import torch

from sfp.errors import UserError
from sfp.planning.options import Imagination, PlannerOptions
from sfp.planning.planner import BeamSearchPlanner, BestOfKPlanner, MosaicPlanner, PlanResult, build_planner
from sfp.planning.reward_types import AdditiveReward, Reward
from sfp.planning.rewards import csi, neg_mse, neg_tke_error, ssim
from sfp.planning.world_model import WorldModel

IN_FRAMES, OUT_FRAMES = 2, 3


def tiny_world_model(codebook_size: int = 16) -> WorldModel:
    torch.manual_seed(0)
    return WorldModel({"in_frames": IN_FRAMES, "out_frames": OUT_FRAMES, "channels": 1, "width": 8,
                       "decoder_blocks": 1, "code_dim": 4, "codebook_size": codebook_size}).eval()


def opts(samples: int = 16, candidates: int = 8, temperature: float = 1.0, **planner) -> PlannerOptions:
    """Planner options with these imagination settings (8 candidates: the tiny codebooks have 16 codes)."""
    return PlannerOptions(imagination=Imagination(samples, candidates, temperature), **planner)


def batch(size: int = 2, pixels: int = 8, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Context, action and truth of ``size`` samples."""
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(size, frames, 1, pixels, pixels, generator=generator)
                 for frames in (IN_FRAMES, OUT_FRAMES, OUT_FRAMES))


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def record_decodes(world_model: WorldModel, monkeypatch) -> list[tuple[tuple[int, ...], object]]:
    """Log the code-map shape and lead times of every decode call."""
    calls = []
    decode = world_model.decode

    def logged(indices, context, lead_times=None):
        calls.append((tuple(indices.shape), lead_times))
        return decode(indices, context, lead_times)

    monkeypatch.setattr(world_model, "decode", logged)
    return calls


@pytest.mark.parametrize("reward", [csi([0.0, 1.0]), neg_mse()])
@pytest.mark.parametrize("planner", [BeamSearchPlanner, BestOfKPlanner])
def test_shapes_and_rewards_of_the_result(planner, reward):
    # the reward reported is the reward of the future returned (frames and scores stay paired through the search)
    world_model = tiny_world_model()
    context, action, target = batch(3)
    result = planner(world_model, reward, opts()).plan(context, action, target, seeded())
    assert isinstance(result, PlanResult)
    assert result.best.shape == target.shape
    assert result.reward.shape == result.action_reward.shape == (3,)
    assert torch.allclose(result.reward, reward(result.best, target))
    assert torch.equal(result.action_reward, reward(action, target))


def test_best_of_k_picks_the_brute_force_argmax():
    world_model = tiny_world_model()
    context, action, target = batch(3)
    reward = neg_mse()
    for max_batch_frames in (7, 10_000):  # 2 candidates of one sample per call, or everything at once
        planner = BestOfKPlanner(world_model, reward, opts(5, 4, 0.5, max_batch_frames=max_batch_frames))
        result = planner.plan(context, action, target, seeded(3))

        # the same draw, decoded all at once and scored one candidate at a time
        codes = world_model.sample_codes(world_model.encode(action, context), Imagination(5, 4, 0.5), seeded(3))
        futures = world_model.decode(codes, context)
        for b in range(3):
            scores = torch.stack([reward(futures[b : b + 1, j], target[b : b + 1])[0] for j in range(5)])
            assert torch.allclose(result.best[b], futures[b, scores.argmax()], atol=1e-6)
            assert result.reward[b].item() == pytest.approx(scores.max().item(), abs=1e-6)


def test_beam_search_at_temperature_zero_is_the_nearest_code_decode():
    world_model = tiny_world_model()
    context, action, target = batch(2)
    planner = BeamSearchPlanner(world_model, neg_mse(), opts(beam_width=1, expansions=1, temperature=0.0))
    nearest = world_model.decode(world_model.nearest(world_model.encode(action, context)), context)
    assert torch.allclose(planner.plan(context, action, target).best, nearest, atol=1e-6)


def test_beam_search_finds_the_optimum_of_an_enumerable_code_space():
    # 4x4 frames -> one latent position; k = 2 leaves 2 codes per frame, 2**3 futures, all drawn almost surely at
    # a high temperature. -MSE adds up over frames, so the best beam of every depth extends to the optimum.
    world_model = tiny_world_model()
    context, action, target = batch(2, pixels=4)
    options = opts(beam_width=2, expansions=16, candidates=2, temperature=1e6)
    planner = BeamSearchPlanner(world_model, neg_mse(), options)
    result = planner.plan(context, action, target, seeded())

    choices, _ = world_model.candidates(world_model.encode(action, context), 2)  # (B, T, 1, 1, 2)
    paths = torch.tensor(list(itertools.product(range(2), repeat=OUT_FRAMES)))  # (8, T)
    codes = choices[..., 0, 0, :].unsqueeze(1).expand(-1, len(paths), -1, -1)  # (B, 8, T, 2)
    codes = codes.gather(3, paths.expand(2, -1, -1).unsqueeze(-1))[..., None]  # (B, 8, T, 1, 1)
    futures = world_model.decode(codes, context)
    scores = neg_mse()(futures, target)
    assert torch.allclose(result.reward, scores.max(1).values, atol=1e-6)
    assert torch.allclose(result.best, futures[torch.arange(2), scores.argmax(1)], atol=1e-6)


def test_beam_search_beats_best_of_one():
    world_model = tiny_world_model()
    context, action, target = batch(16)
    beam = BeamSearchPlanner(world_model, neg_mse(), opts(beam_width=4, expansions=4)).plan(context, action, target,
                                                                                    seeded(1))
    single = BestOfKPlanner(world_model, neg_mse(), opts(samples=1)).plan(context, action, target, seeded(2))
    assert beam.reward.mean() > single.reward.mean()
    assert (beam.reward >= single.reward).float().mean() >= 0.8


@pytest.mark.parametrize("reward", [csi([0.0, 0.5, 1.0], pool=2), neg_mse(), ssim(2.0), neg_tke_error()])
def test_running_totals_score_like_rescoring_every_frame(reward):
    # the same reward without its totals (a plain Reward) makes the beam search rescore frames 0..t each step
    world_model = tiny_world_model()
    context, action, target = batch(3, pixels=12)
    rescoring = Reward(reward.score, reward.name)
    assert not isinstance(rescoring, AdditiveReward)
    fast, slow = (BeamSearchPlanner(world_model, r, opts(beam_width=3, expansions=3)).plan(context, action, target,
                                                                                        seeded(4))
                  for r in (reward, rescoring))
    assert torch.allclose(fast.best, slow.best, atol=1e-6)
    assert torch.allclose(fast.reward, slow.reward, atol=1e-5)


@pytest.mark.parametrize("planner", [BeamSearchPlanner, BestOfKPlanner])
def test_a_batch_plans_like_its_samples_at_temperature_zero(planner):
    world_model = tiny_world_model()
    context, action, target = batch(3)
    together = planner(world_model, neg_mse(), opts(temperature=0.0)).plan(context, action, target)
    for b in range(3):
        alone = planner(world_model, neg_mse(), opts(temperature=0.0)).plan(
            context[b : b + 1], action[b : b + 1], target[b : b + 1])
        assert torch.allclose(together.best[b : b + 1], alone.best, atol=1e-6)
        assert torch.allclose(together.reward[b : b + 1], alone.reward, atol=1e-6)


@pytest.mark.parametrize("planner", [BeamSearchPlanner, BestOfKPlanner])
def test_chunking_and_seeding(planner):
    world_model = tiny_world_model()
    context, action, target = batch(3)
    whole = planner(world_model, neg_mse(), opts()).plan(context, action, target, seeded(5))
    chunked = planner(world_model, neg_mse(), opts(max_batch_frames=1)).plan(context, action, target, seeded(5))
    assert torch.allclose(whole.best, chunked.best, atol=1e-6)
    assert torch.allclose(whole.reward, chunked.reward, atol=1e-6)
    other = planner(world_model, neg_mse(), opts()).plan(context, action, target, seeded(6))
    assert not torch.equal(whole.best, other.best)


def test_beam_bookkeeping_decodes_one_frame_per_candidate(monkeypatch):
    # frame 0 grows 1 beam into 2 candidates, then min(3, 2) = 2 beams into 4, then 3 beams into 6
    world_model = tiny_world_model()
    calls = record_decodes(world_model, monkeypatch)
    context, action, target = batch(2)
    BeamSearchPlanner(world_model, neg_mse(), opts(beam_width=3, expansions=2)).plan(context, action, target, seeded())
    assert calls == [((2, 2, 1, 2, 2), [0]), ((2, 4, 1, 2, 2), [1]), ((2, 6, 1, 2, 2), [2])]


@pytest.mark.parametrize("planner, frames_per_candidate", [(BeamSearchPlanner, 1), (BestOfKPlanner, OUT_FRAMES)])
def test_decoding_respects_the_frame_budget(planner, frames_per_candidate, monkeypatch):
    world_model = tiny_world_model()
    calls = record_decodes(world_model, monkeypatch)
    context, action, target = batch(3)
    planner(world_model, neg_mse(), opts(max_batch_frames=7)).plan(context, action, target, seeded())
    decoded = [shape[0] * shape[1] * shape[2] for shape, _ in calls]
    assert max(decoded) <= 7 and all(shape[2] == frames_per_candidate for shape, _ in calls)


def test_planning_keeps_no_graph():
    world_model = tiny_world_model()
    context, action, target = batch(2)
    result = BeamSearchPlanner(world_model, neg_mse(), opts()).plan(context, action.requires_grad_(), target, seeded())
    assert not result.best.requires_grad and not result.reward.requires_grad


@pytest.mark.parametrize("options, message", [
    ({"beam_width": 0}, "beam_width"), ({"expansions": 0}, "expansions"), ({"candidates": 0}, "candidates"),
    ({"temperature": -1.0}, "temperature"), ({"temperature": float("nan")}, "temperature"),
    ({"max_batch_frames": 0}, "max_batch_frames"),
])
def test_bad_options_are_user_errors(options, message):
    with pytest.raises(UserError, match=message):
        opts(**options)


def test_an_unknown_planner_kind_is_refused_where_the_planner_is_built():
    with pytest.raises(UserError, match="planner.kind must be one of beam, best_of_k, mosaic"):
        build_planner(tiny_world_model(), "neg_mse", {"kind": "greedy"})


def test_bad_rewards_and_candidates_beyond_the_codebook_are_user_errors():
    context, action, target = batch(2)
    with pytest.raises(UserError, match="unknown reward"):
        BeamSearchPlanner(tiny_world_model(), "no_such_reward", opts())
    with pytest.raises(UserError, match="k must be between"):
        BeamSearchPlanner(tiny_world_model(), "neg_mse", opts(candidates=17)).plan(context, action, target)


def test_bad_inputs_are_user_errors():
    world_model = tiny_world_model()
    context, action, target = batch(2)
    with pytest.raises(UserError):
        BestOfKPlanner(world_model, "neg_mse", opts(samples=0))
    with pytest.raises(UserError, match="share a shape"):
        BestOfKPlanner(world_model, "neg_mse", opts()).plan(context, action, target[:, :2])
    with pytest.raises(UserError):
        BestOfKPlanner(world_model, "neg_mse", opts()).plan(context[:, :1], action, target)


def test_planning_around_the_forecast_at_temperature_zero_plans_the_forecast():
    """Every draw is the nearest code, so every future equals the mean of the futures: each centred future is the
    action itself (with or without a wet threshold)."""
    world_model = tiny_world_model()
    context, action, target = batch(2)
    for planner, wet in ((BestOfKPlanner, None), (MosaicPlanner, 0.0)):
        result = planner(world_model, neg_mse(), opts(4, 8, 0.0, centring="mean", wet=wet)).plan(context, action,
                                                                                               target)
        torch.testing.assert_close(result.best, action, atol=1e-5, rtol=0)
        torch.testing.assert_close(result.reward, result.action_reward)


def test_best_of_k_around_the_forecast_picks_among_the_centred_draws():
    """Same draws by hand: the forecast plus each decode's departure from their mean, kept where the forecast is
    at least 0 (about half the pixels), and the best of those by the reward."""
    world_model = tiny_world_model()
    context, action, target = batch(2)
    reward = neg_mse()
    planner = BestOfKPlanner(world_model, reward, opts(6, 8, 2.0, centring="mean", wet=0.0))
    result = planner.plan(context, action, target, seeded(3))
    draws = world_model.sample_codes(world_model.encode(action, context), planner.imagination, seeded(3))
    decoded = world_model.decode(draws, context)
    centred = action[:, None] + (decoded - decoded.mean(1, keepdim=True)) * (action >= 0)[:, None]
    scores = reward(centred, target)
    expected = centred[torch.arange(2), scores.argmax(1)]
    torch.testing.assert_close(result.best, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(result.reward, scores.max(1).values)
    assert torch.equal(result.best[action < 0], action[action < 0])  # dry pixels stay as forecast


@pytest.mark.parametrize(("options", "words"), [
    ({"centring": "median"}, "planner.centring"),
    ({"centring": "mean", "kind": "beam"}, "mosaic or best_of_k"),
    ({"wet": 0.1}, "planner.centring mean"),
])
def test_bad_centring_options_name_the_problem(options, words):
    with pytest.raises(UserError, match=words):
        PlannerOptions(**options)


@pytest.mark.parametrize("planner", [BestOfKPlanner, MosaicPlanner])
def test_kept_draws_are_every_scored_future_and_the_plan_is_their_best(planner):
    world_model = tiny_world_model()
    context, action, target = batch()
    search = planner(world_model, neg_mse(), opts(samples=6, max_batch_frames=5))  # several blocks
    search.keep_draws = True
    result = search.plan(context, action, target, seeded())
    draws, rewards = result.draws, result.draw_rewards
    assert draws.shape[:2] == (2, 6 + (planner is MosaicPlanner)) and draws.shape[2:] == action.shape[1:]
    torch.testing.assert_close(rewards, neg_mse()(draws, target).float())
    if planner is BestOfKPlanner:  # the mosaic may beat every draw
        torch.testing.assert_close(result.best, draws[torch.arange(2), rewards.argmax(1)])
    assert (result.reward >= rewards.max(1).values - 1e-6).all()
    search.keep_draws = False
    assert search.plan(context, action, target, seeded()).draws is None
