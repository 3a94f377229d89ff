"""The SFP planner: search the world model's imagination near the agent's forecast for the best-scoring future.

The action (the agent's forecast ``(B, T, C, H, W)``) is encoded once; at every latent position of every lead time
its ``k`` nearest codes are the candidates, drawn with probability ``softmax(-distance / temperature)``
(:meth:`WorldModel.sample_codes`). Three searches over those draws (and one without them), all scored against
the truth by a :class:`~sfp.planning.reward_types.Reward`:

- :class:`BestOfKPlanner` (depth one): draw K full code maps, decode them all, keep the best per sample;
- :class:`MosaicPlanner`: best-of-K, plus one more future composed patch by patch: at every latent position the
  code (the action's nearest, or one of the draws) whose decoded patch scores best there (the reward's per-pixel
  ``local`` score), decoded and kept where its full reward is higher. Rewards add up over pixels (event counts,
  squared errors), so choosing per patch reaches futures that K whole-map draws almost never hit; staying at
  the action's codes where no draw gains keeps the pseudo-label's changes to the places that earn reward;
- :class:`BeamSearchPlanner`: grow the forecast frame by frame. A beam is a forecast of lead times < t; each beam
  is extended by ``expansions`` code maps drawn for frame t, only frame t is decoded (the world model decodes
  each lead time independently), every extension is scored by the cumulative reward of its frames 0..t, and the
  ``beam_width`` best are kept per sample. Frame 0 starts from a single (empty) beam. An
  :class:`~sfp.planning.reward_types.AdditiveReward` is scored from running totals (each beam carries the totals of
  its frames, an extension adds those of its new frame); any other reward rescores frames 0..t.

- :class:`PerturbationPlanner`: the same best-of-K without the world model, over perturbations of the action
  itself (scaled, shifted, plus a smooth random field): the peer that shows what the world model adds.

With ``centring: mean`` best-of-K and the mosaic search around the forecast instead: every decoded future becomes
the forecast plus its departure from the mean of the searched futures
(:func:`~sfp.planning.ensemble.departures_around`), so the plans keep the forecast's detail and differ from it only
by what the imagination varies.

All are batched over samples and candidates (no Python loop over either), decode at most ``max_batch_frames``
frames per call (bounding memory), run without gradients, and are reproducible with a seeded ``generator``.
All frames are in original units.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.options import coerce, require_choice
from sfp.planning.ensemble import departures_around
from sfp.planning.options import PlannerOptions
from sfp.planning.reward_types import AdditiveReward, Reward
from sfp.planning.rewards import get_reward
from sfp.planning.world_model import WorldModel
from sfp.registry import Registry


class PlanResult(NamedTuple):
    """The planner's output: the best imagined future ``(B, T, C, H, W)``, its reward ``(B,)``, the reward of
    the raw action ``(B,)`` (the comparison that decides whether the plan is worth a pseudo-label), where the
    search decoded it anyway, the world model's reconstruction of the action (its nearest-code decode), and, when
    asked for (``Planner.keep_draws``), every future the search scored ``(B, K, T, C, H, W)`` and their rewards
    ``(B, K)`` (for advantage-weighted labels)."""

    best: Tensor
    reward: Tensor
    action_reward: Tensor
    reconstruction: Tensor | None = None
    draws: Tensor | None = None
    draw_rewards: Tensor | None = None


def _blocks(batch: int, candidates: int, frames_each: int, max_frames: int) -> Iterator[tuple[slice, slice]]:
    """Slices ``(samples, candidates)`` tiling a ``batch x candidates`` grid, each block decoding at most
    ``max_frames`` frames of ``frames_each`` per candidate (but always at least one candidate of one sample)."""
    per_call = max(1, max_frames // frames_each)
    candidate_step = min(candidates, per_call)
    sample_step = max(1, per_call // candidate_step)
    for start in range(0, batch, sample_step):
        for first in range(0, candidates, candidate_step):
            yield slice(start, start + sample_step), slice(first, first + candidate_step)


def _check_shapes(action: Tensor, target: Tensor) -> None:
    if action.ndim != 5 or target.shape != action.shape:
        raise UserError(f"action and target must share a shape (B, T, C, H, W), "
                        f"got {tuple(action.shape)} and {tuple(target.shape)}")


def _pick(values: Tensor, index: Tensor) -> Tensor:
    """``values[b, index[b, j]]`` for every sample b: ``(B, N, ...)`` with ``(B, M)`` indices -> ``(B, M, ...)``."""
    return values[torch.arange(values.shape[0], device=values.device)[:, None], index]


class Planner:
    """What the searches share: the world model, the reward, the candidate draw and the memory bound.

    reward: a :class:`Reward` or anything :func:`get_reward` accepts; options: the search's settings
    (:class:`~sfp.planning.options.PlannerOptions`, a mapping of them, or None for the defaults).
    """

    def __init__(self, world_model: WorldModel, reward: Reward | str | Mapping[str, Any],
                 options: PlannerOptions | Mapping[str, Any] | None = None) -> None:
        self.options = coerce(PlannerOptions, options)
        self.world_model = world_model
        self.reward = get_reward(reward)
        self.imagination = self.options.imagination
        self.max_batch_frames = self.options.max_batch_frames
        self.keep_draws = False  # set to return every scored future with the plan (not the beam search's)
        self._kept: tuple[Tensor, Tensor] | None = None

    @torch.no_grad()
    def plan(self, context: Tensor, action: Tensor, target: Tensor,
             generator: torch.Generator | None = None) -> PlanResult:
        """Search near ``action (B, T, C, H, W)`` given ``context (B, T_in, C, H, W)`` for the future that scores
        best against ``target`` (same shape as the action)."""
        _check_shapes(action, target)
        latents = self.world_model.encode(action, context)
        self._kept = None
        best, reward, reconstruction = self._search(latents, context, action, target, generator)
        draws, draw_rewards = self._kept or (None, None)
        return PlanResult(best, reward, self.reward(action, target), reconstruction, draws, draw_rewards)

    def _search(self, latents: Tensor, context: Tensor, action: Tensor, target: Tensor,
                generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """The best future ``(B, T, C, H, W)`` near the action's ``latents``, its reward ``(B,)`` and the
        action's reconstruction if the search decoded it (else None)."""
        raise NotImplementedError

    def _draw(self, latents: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        """``n`` code maps per sample near ``latents (B, T, h, w, D)``: ``(B, n, T, h, w)``."""
        return self.world_model.sample_codes(latents, self.imagination, generator, n)


class BestOfKPlanner(Planner):
    """Depth-one search: ``imagination.samples`` full code maps drawn at once, decoded, the best kept per sample.

    The maps are one :meth:`WorldModel.sample_codes` draw, so a seeded generator reproduces them; ties go to the
    first candidate.
    """

    def _search(self, latents: Tensor, context: Tensor, action: Tensor, target: Tensor,
                generator: torch.Generator | None) -> tuple[Tensor, Tensor, None]:
        draws = self._draw(latents, self.imagination.samples, generator)
        centre = self._centre(draws, context, action)
        best, best_reward, _, _ = self._scan(draws, context, target, origin=(action, centre))
        return best, best_reward, None

    def _centre(self, codes: Tensor, context: Tensor, action: Tensor) -> Tensor | None:
        """With ``centring: mean``, the mean decode of code maps ``(B, K, T, h, w)``: ``(B, T, C, H, W)``."""
        if self.options.centring == "none":
            return None
        total = torch.zeros_like(action)
        for samples, candidates in _blocks(codes.shape[0], codes.shape[1], codes.shape[2], self.max_batch_frames):
            total[samples] += self.world_model.decode(codes[samples, candidates], context[samples]).sum(1)
        return total / codes.shape[1]

    def _scan(self, codes: Tensor, context: Tensor, target: Tensor, patch_scores: bool = False,
              origin: tuple[Tensor, Tensor | None] | None = None) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
        """Decode code maps ``(B, K, T, h, w)`` block by block (moved around the action, ``origin = (action,
        centre)`` where the centre is not None): the best future per sample, its reward, if asked every draw's
        local score summed over each latent position's patch ``(B, K, T, h, w)``, and the decode of each
        sample's first code map ``(B, T, C, H, W)``."""
        batch, lead_times = codes.shape[0], codes.shape[2]
        best, first = context.new_empty(target.shape), context.new_empty(target.shape)
        keep = self.keep_draws and self._kept is None  # the first scan's draws (the mosaic's own is one more)
        if keep:
            self._kept = (context.new_empty(batch, codes.shape[1], *target.shape[1:]),
                          context.new_empty(batch, codes.shape[1], dtype=torch.float32))
        best_reward = torch.empty(batch, dtype=torch.promote_types(best.dtype, torch.float32), device=best.device)
        patches = context.new_empty(codes.shape) if patch_scores else None
        action, centre = origin or (None, None)
        for samples, candidates in _blocks(batch, codes.shape[1], lead_times, self.max_batch_frames):
            futures = self.world_model.decode(codes[samples, candidates], context[samples])
            if candidates.start == 0:
                first[samples] = futures[:, 0]
            if centre is not None:
                futures = departures_around(action[samples], futures, centre[samples], wet=self.options.wet)
            scores = self.reward(futures, target[samples])
            if keep:
                self._kept[0][samples, candidates], self._kept[1][samples, candidates] = futures, scores.float()
            top, index = scores.max(dim=1)
            better = top > best_reward[samples] if candidates.start else torch.ones_like(top, dtype=torch.bool)
            chosen = _pick(futures, index[:, None])[:, 0]
            best[samples] = torch.where(better[:, None, None, None, None], chosen, best[samples])
            best_reward[samples] = torch.where(better, top, best_reward[samples])
            if patches is not None:
                patches[samples, candidates] = self._patch_scores(futures, target[samples], codes.shape[-2:])
        return best, best_reward, patches, first

    def _patch_scores(self, futures: Tensor, target: Tensor, grid: torch.Size) -> Tensor:
        """The reward's local score of futures ``(b, K, T, C, H, W)`` summed per latent patch: ``(b, K, T, h, w)``."""
        b, k = futures.shape[:2]
        flat, flat_target = futures.flatten(0, 1), target[:, None].expand_as(futures).flatten(0, 1)
        local = self.reward.local(flat, flat_target)  # (b·K, T, H, W)
        factor = self.world_model.factor
        pad_h, pad_w = grid[0] * factor - local.shape[-2], grid[1] * factor - local.shape[-1]
        local = torch.nn.functional.pad(local, (0, pad_w, 0, pad_h))
        return torch.nn.functional.avg_pool2d(local, factor).unflatten(0, (b, k))


class MosaicPlanner(BestOfKPlanner):
    """Best-of-K and a mosaic of the action's nearest codes and the K draws: per latent position (and lead time)
    the code whose decoded patch has the highest local score, the nearest code on ties, so the mosaic departs from
    the action only where a patch gains; it replaces the best draw where its full reward is higher.

    The decoder mixes neighbouring positions, so patch scores are a guide, not a guarantee: the full reward of
    the decoded mosaic decides. Costs two decodes more than :class:`BestOfKPlanner` (the nearest-code map and the
    mosaic).
    """

    def _search(self, latents: Tensor, context: Tensor, action: Tensor, target: Tensor,
                generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
        nearest = self.world_model.nearest(latents)[:, None]  # (B, 1, T, h, w): the action itself, first
        codes = torch.cat([nearest, self._draw(latents, self.imagination.samples, generator)], dim=1)
        moved = (action, self._centre(codes, context, action))
        best, best_reward, patches, reconstruction = self._scan(codes, context, target, True, moved)
        mosaic_codes = codes.gather(1, patches.argmax(dim=1, keepdim=True))  # (B, 1, T, h, w)
        mosaic, mosaic_reward, _, _ = self._scan(mosaic_codes, context, target, origin=moved)
        better = (mosaic_reward > best_reward)[:, None, None, None, None]
        return torch.where(better, mosaic, best), torch.maximum(mosaic_reward, best_reward), reconstruction


class BeamSearchPlanner(Planner):
    """Beam search over forecast frames: ``options.beam_width`` beams, each extended by ``options.expansions``
    draws per frame.

    Frame t is drawn for all beams x expansions of all samples at once (one :meth:`WorldModel.sample_codes`
    call per frame), decoded alone (``lead_times=[t]``), and each extension is scored by the reward of its frames
    0..t against the truth's; ``torch.topk`` keeps the best ``beam_width`` per sample.
    """

    def _search(self, latents: Tensor, context: Tensor, action: Tensor, target: Tensor,
                generator: torch.Generator | None) -> tuple[Tensor, Tensor, None]:
        batch, lead_times = latents.shape[:2]
        additive = isinstance(self.reward, AdditiveReward)
        beams = context.new_empty(batch, 1, 0, *target.shape[2:])  # (B, beams, frames so far, C, H, W)
        totals = context.new_zeros(batch, 1, 1, dtype=torch.float64)  # (B, beams, m) reward totals; 0 broadcasts
        for t in range(lead_times):
            extensions = beams.shape[1] * self.options.expansions
            codes = self._draw(latents[:, t : t + 1], extensions, generator)  # (B, extensions, 1, h, w)
            parent = torch.arange(extensions, device=codes.device) // self.options.expansions
            frames = context.new_empty(batch, extensions, 1, *target.shape[2:])
            scores = torch.empty(batch, extensions, dtype=torch.promote_types(frames.dtype, torch.float32),
                                 device=frames.device)
            for samples, candidates in _blocks(batch, extensions, 1, self.max_batch_frames):
                decoded = self.world_model.decode(codes[samples, candidates], context[samples], lead_times=[t])
                frames[samples, candidates] = decoded
                if not additive:  # rescore frames 0..t; block by block to bound memory
                    partial = torch.cat([beams[samples][:, parent[candidates]], decoded], dim=2)
                    scores[samples, candidates] = self.reward(partial, target[samples, : t + 1])
            if additive:  # frame t's totals (one frame per candidate, like ``frames``) plus the parent's
                totals = totals[:, parent] + self.reward.frame_totals(frames, target[:, t : t + 1])
                scores = self.reward.from_totals(totals).to(scores.dtype)
            top, keep = scores.topk(min(self.options.beam_width, extensions), dim=1)
            beams = torch.cat([_pick(beams, parent[keep]), _pick(frames, keep)], dim=2)
            if additive:
                totals = _pick(totals, keep)
        return beams[:, 0], top[:, 0], None


PERTURBATION_SCALE = 0.2  # log-normal spread of the intensity scaling
PERTURBATION_SHIFT = 2  # pixels, each way
PERTURBATION_NOISE = 0.5  # the smooth field's std, as a fraction of the action's
PERTURBATION_SMOOTHING = 8  # the noise grid is this many times coarser than the field


def perturbations(action: Tensor, samples: int, generator: torch.Generator | None = None) -> Tensor:
    """``samples`` perturbations of ``action (B, T, C, H, W)``: ``(B, samples, T, C, H, W)`` (see
    :class:`PerturbationPlanner`)."""
    batch, _, channels, height, width = action.shape

    def draw(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator, device=action.device, dtype=action.dtype)

    scale = (PERTURBATION_SCALE * draw(batch, samples)).exp()[..., None, None, None, None]
    shifts = torch.randint(-PERTURBATION_SHIFT, PERTURBATION_SHIFT + 1, (samples, 2), generator=generator,
                           device=action.device)
    coarse = draw(batch * samples, channels, max(2, height // PERTURBATION_SMOOTHING),
                  max(2, width // PERTURBATION_SMOOTHING))
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    smooth = smooth / smooth.flatten(1).std(dim=1).clamp_min(1e-12)[:, None, None, None]
    spread = action.flatten(1).std(dim=1)[:, None, None, None, None, None]
    futures = scale * action[:, None]
    futures = torch.stack([futures[:, k].roll((int(dy), int(dx)), dims=(-2, -1))
                           for k, (dy, dx) in enumerate(shifts.tolist())], dim=1)
    return futures + PERTURBATION_NOISE * spread * smooth.reshape(batch, samples, 1, channels, height, width)


class PerturbationPlanner(Planner):
    """The same search without the world model (the peer that isolates it): ``imagination.samples`` perturbations
    of the action itself, scored by the same reward against the truth, the best kept per sample.

    A perturbation scales the action by ``exp(N(0, PERTURBATION_SCALE))``, shifts it by a whole number of pixels up
    to ``PERTURBATION_SHIFT`` each way, and adds a smooth random field (white noise on a grid
    ``PERTURBATION_SMOOTHING`` times coarser, bilinearly upsampled, the same for every lead time) of standard
    deviation ``PERTURBATION_NOISE`` times the action's. The world model is not used (it may be None); the
    action itself plays the reconstruction, so ``raise`` labels add the plan's rise above the action.
    """

    @torch.no_grad()
    def plan(self, context: Tensor, action: Tensor, target: Tensor,
             generator: torch.Generator | None = None) -> PlanResult:
        _check_shapes(action, target)
        futures = perturbations(action, self.imagination.samples, generator)
        rewards = self.reward(futures, target)  # (B, K)
        reward, index = rewards.max(dim=1)
        kept = (futures, rewards) if self.keep_draws else (None, None)
        return PlanResult(_pick(futures, index[:, None])[:, 0], reward, self.reward(action, target), action, *kept)


PLANNERS: Registry[type[Planner]] = Registry("planner")
PLANNERS.add("mosaic", MosaicPlanner)
PLANNERS.add("best_of_k", BestOfKPlanner)
PLANNERS.add("beam", BeamSearchPlanner)
PLANNERS.add("perturbation", PerturbationPlanner)


def build_planner(world_model: WorldModel, reward: Reward | str | Mapping[str, Any],
                  options: PlannerOptions | Mapping[str, Any] | None = None) -> Planner:
    """The planner of kind ``options.kind`` on ``world_model``, scoring with ``reward``."""
    options = coerce(PlannerOptions, options)
    return planner_class(options)(world_model, reward, options)


def planner_class(options: PlannerOptions) -> type[Planner]:
    """The planner class ``options.kind`` names; an unknown kind is one line naming the option."""
    require_choice("planner.kind", options.kind, PLANNERS.names())
    return PLANNERS.get(options.kind)
