"""Is the world model good enough to plan in? Diagnostics on held-out batches.

- reconstruction: MSE (on value / value_scale) and CSI-M (counts summed over the whole set, the design's
  definition) of the nearest-code decode of the TRUE future: the best the codebook can do;
- codebook: usage fraction, perplexity and unused codes, over the true futures' nearest codes;
- candidate spread: mean pairwise MSE (value / value_scale) among the n imagined futures of one action, i.e.
  how much the imagination explores (0 means every sample is the same);
- oracle gain: with the truth known, does the best of n imagined futures beat the action itself on the
  reward? ``oracle_win_rate`` is the fraction of samples where it does, ``oracle_gain`` the mean of
  ``max_j reward(imagined_j) - reward(action)``. Planning can only help where this is positive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.metrics import contingency, mse, scores
from sfp.planning.world_model import WorldModel
from sfp.planning.world_model_module import usage_statistics
from sfp.task import TaskSpec

Batch = Sequence[Tensor]


@torch.no_grad()
def diagnose(
    world_model: WorldModel,
    batches: Iterable[Batch],
    agent_forecast: Callable[[Batch], Tensor],
    task: TaskSpec,
    reward: Callable[[Tensor, Tensor], Tensor],
    n: int = 16,
    temperature: float = 1.0,
    k: int = 8,
    seed: int = 0,
) -> dict[str, float]:
    """Diagnostics of ``world_model`` over ``batches`` ``(context_x, context_y, target_x, target_y[, mask])``.

    agent_forecast(batch) gives the action ``(B, T_out, C, H, W)`` in original units; reward(pred, target) gives
    one value per sample, higher is better. ``n`` futures per action are imagined with ``temperature`` among
    ``k`` candidates, from a generator seeded with ``seed``. Returns plain floats; ``recon_csi_m`` only when the
    task has thresholds (NaN when no threshold had an event).
    """
    device = world_model.mean.device
    generator = torch.Generator(device=device).manual_seed(seed)
    was_training = world_model.training
    world_model.eval()
    counts = torch.zeros(world_model.codebook_size, dtype=torch.float64, device=device)
    table = torch.zeros(len(task.thresholds), 4, dtype=torch.float64, device=device)
    sums = {"recon_mse": 0.0, "candidate_spread": 0.0, "oracle_win_rate": 0.0, "oracle_gain": 0.0}
    samples = 0
    for batch in batches:
        context, target = batch[1].to(device), batch[3].to(device)
        action = agent_forecast(batch).to(device)
        nearest = world_model.nearest(world_model.encode(target, context))
        counts += torch.bincount(nearest.flatten(), minlength=world_model.codebook_size)
        reconstruction = world_model.decode(nearest, context)
        scale = task.value_scale
        sums["recon_mse"] += float(mse(reconstruction / scale, target / scale, reduction="none").sum())
        if task.thresholds:
            table += contingency(reconstruction, target, task.thresholds)
        imagined = world_model.imagine(context, action, n, temperature, generator, k)
        sums["candidate_spread"] += float(2 * (imagined / scale).var(dim=1).flatten(1).mean(1).sum()) if n > 1 else 0.0
        best = reward(imagined.flatten(0, 1), target.repeat_interleave(n, 0)).reshape(-1, n).amax(1)
        gain = best - reward(action, target)
        sums["oracle_win_rate"] += float((gain > 0).sum())
        sums["oracle_gain"] += float(gain.sum())
        samples += target.shape[0]
    world_model.train(was_training)
    if samples == 0:
        raise UserError("diagnose needs at least one batch")
    result = {name: total / samples for name, total in sums.items()}
    if task.thresholds:
        result["recon_csi_m"] = float(torch.nanmean(scores(table)["csi"]))
    result.update({name: float(value) for name, value in usage_statistics(counts).items()})
    return result
