"""Is the world model good enough to plan in? Diagnostics on held-out batches, accumulated batch by batch.

- reconstruction: MSE (on value / value_scale), CSI-M (counts summed over the whole set, the design's definition)
  and mean task reward of the nearest-code decode of the TRUE future: the best the codebook can do;
- agent: CSI-M and mean task reward of the action (the agent's forecast) itself, the bar to clear;
- codebook: usage fraction, perplexity and unused codes, over the true futures' nearest codes;
- candidate spread: mean pairwise MSE (value / value_scale) among the imagined futures of one action, i.e.
  how much the imagination explores (0 means every sample is the same);
- oracle gain: with the truth known, does the best of n imagined futures beat the action itself on the
  reward? ``oracle_win_rate`` is the fraction of samples where it does, ``oracle_gain`` the mean of
  ``max_j reward(imagined_j) - reward(action)``. Planning can only help where this is positive.

:class:`Diagnostics` accumulates on the data's device (``update`` per batch) and reduces once (``compute``, with an
optional sum over processes); :func:`diagnose` runs it over an iterable of batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.metrics import contingency, mse, scores
from sfp.metrics.heatwave_scores import Window, bind_window
from sfp.planning.options import Imagination
from sfp.planning.quantizer import usage_statistics
from sfp.planning.world_model import WorldModel
from sfp.task import TaskSpec

Batch = Sequence[Tensor]
SUMS = ("samples", "recon_mse", "recon_reward", "agent_reward", "candidate_spread", "oracle_win_rate", "oracle_gain")


class Diagnostics:
    """Running sums of the diagnostics of ``world_model`` for ``task`` with ``reward(pred, target) -> (B,)``.

    Futures are imagined with ``imagination`` (its candidates capped at the codebook size), from a generator
    seeded with ``seed`` on the first batch's device.
    """

    def __init__(self, world_model: WorldModel, task: TaskSpec, reward: Callable[[Tensor, Tensor], Tensor],
                 imagination: Imagination | None = None, seed: int = 0) -> None:
        imagination = imagination or Imagination()
        self.world_model, self.task, self.reward, self.seed = world_model, task, reward, seed
        self.imagination = replace(imagination, candidates=min(imagination.candidates, world_model.codebook_size))
        self._generator: torch.Generator | None = None
        self._sums: Tensor | None = None
        self._counts: Tensor | None = None
        self._tables: Tensor | None = None

    def reset(self) -> None:
        """Forget every batch seen (the generator keeps its state)."""
        self._sums = self._counts = self._tables = None

    @torch.no_grad()
    def update(self, context: Tensor, target: Tensor, action: Tensor, window: Window | None = None) -> None:
        """Add one batch: context ``(B, T_in, C, H, W)``, the true future and the action ``(B, T_out, C, H, W)``;
        ``window``: its context and climatology, for a heatwave reward (:func:`~sfp.planning.rewards.for_window`)."""
        model, device, n = self.world_model, context.device, self.imagination.samples
        reward = bind_window(self.reward, window)
        if self._sums is None:
            self._sums = torch.zeros(len(SUMS), dtype=torch.float64, device=device)
            self._counts = torch.zeros(model.codebook_size, dtype=torch.float64, device=device)
            self._tables = torch.zeros(2, len(self.task.thresholds), 4, dtype=torch.float64, device=device)
        if self._generator is None:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        nearest = model.nearest(model.encode(target, context))
        self._counts += torch.bincount(nearest.flatten(), minlength=model.codebook_size)
        reconstruction = model.decode(nearest, context)
        scale = self.task.value_scale
        if self.task.thresholds:
            for row, forecast in enumerate((reconstruction, action)):
                self._tables[row] += contingency(forecast, target, self.task.thresholds)
        imagined = model.imagine(context, action, self.imagination, self._generator)
        spread = 2 * (imagined / scale).var(dim=1).flatten(1).mean(1) if n > 1 else target.new_zeros(len(target))
        action_reward = reward(action, target)
        gain = reward(imagined.flatten(0, 1), target.repeat_interleave(n, 0)).reshape(-1, n).amax(1)
        gain = gain - action_reward
        values = (torch.tensor(float(len(target)), device=device),
                  mse(reconstruction / scale, target / scale, reduction="none"), reward(reconstruction, target),
                  action_reward, spread, (gain > 0).double(), gain)
        self._sums += torch.stack([value.double().sum() for value in values])

    def compute(self, reduce: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
        """The diagnostics as plain floats; ``reduce`` sums a tensor over processes (e.g. the strategy's reduce).

        ``recon_csi_m`` and ``agent_csi_m`` only when the task has thresholds (NaN when no threshold had an event).
        """
        if self._sums is None:
            raise UserError("diagnostics need at least one batch")
        state = torch.cat([self._sums, self._counts, self._tables.flatten()])
        if reduce is not None:
            state = reduce(state)
        sums, counts, tables = state.split([len(SUMS), len(self._counts), self._tables.numel()])
        samples = float(sums[0])
        result = {name: float(total) / samples for name, total in zip(SUMS[1:], sums[1:])}
        if self.task.thresholds:
            csi = scores(tables.reshape(self._tables.shape))["csi"]
            result["recon_csi_m"], result["agent_csi_m"] = (float(value) for value in torch.nanmean(csi, dim=-1))
        result.update({name: float(value) for name, value in usage_statistics(counts).items()})
        return result


@torch.no_grad()
def diagnose(
    world_model: WorldModel,
    batches: Iterable[Batch],
    agent_forecast: Callable[[Batch], Tensor],
    task: TaskSpec,
    reward: Callable[[Tensor, Tensor], Tensor],
    imagination: Imagination | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """:class:`Diagnostics` of ``world_model`` (in eval mode) over ``batches`` ``(context_x, context_y, target_x,
    target_y[, mask])``; agent_forecast(batch) gives the action ``(B, T_out, C, H, W)`` in original units."""
    device = world_model.mean.device
    diagnostics = Diagnostics(world_model, task, reward, imagination, seed)
    was_training = world_model.training
    world_model.eval()
    try:
        for batch in batches:
            diagnostics.update(batch[1].to(device), batch[3].to(device), agent_forecast(batch).to(device))
    finally:
        world_model.train(was_training)
    return diagnostics.compute()
