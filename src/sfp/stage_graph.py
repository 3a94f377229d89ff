"""The SFP run's stages in one place: what each reads from the run spec, whose outputs it uses, and its code version.

A stage is reused when the settings it ran with equal today's field by field (:mod:`sfp.reuse`), the stages it
used are the ones it used then, and its code is the same: sfp's version and the stage's own ``code`` number,
bumped when the stage makes other outputs from the same settings (``tests/test_stage_code.py`` fails when the
source a stage's outputs come from changes and its number does not).
"""

from __future__ import annotations

from dataclasses import dataclass

FINE_TUNING = ("sfp.lr", "sfp.weight_decay", "sfp.gauges", "sfp_trainer")  # what the baselines share with SFP
# the peers beside the surrogate: MSE plus a published loss, at SFP's validation MSE change (sfp.metrics.peer_losses)
PEER_BASELINES = {"balanced_mse": "balanced MSE (Shi et al. 2017)", "facl": "FACL (Yan et al. 2024)"}


@dataclass(frozen=True)
class Stage:
    """One stage: ``reads`` the spec's keys it uses itself (dotted for one key of a section), ``needs`` the stages
    whose outputs it uses, ``switch`` the spec key that turns an optional comparison on, ``code`` its code version
    and ``sources`` the modules its outputs come from (what ``code`` answers for)."""

    name: str
    reads: tuple[str, ...]
    needs: tuple[str, ...] = ()
    switch: str | None = None
    code: int = 1
    sources: tuple[str, ...] = ()


_SELF_TRAINING = ("sfp.planning.self_training", "sfp.planning.pseudo_labels", "sfp.forecasting.losses")
_PLANNING = ("sfp.planning.planner", "sfp.planning.rewards", "sfp.planning.reward_types")
GRAPH = (
    Stage("data", ("data", "seed_everything"),
          sources=("sfp.data.datamodules", "sfp.data.file_datamodules", "sfp.data.options", "sfp.data.windows")),
    Stage("world_model", ("world_model", "world_model_trainer", "world_model_from"), ("data",),
          sources=("sfp.planning.world_model_module", "sfp.planning.world_model", "sfp.planning.quantizer")),
    Stage("agent", ("agent", "agent_trainer", "agent_patience", "agent_monitor", "agent_from"), ("data",),
          sources=("sfp.forecasting.forecaster", "sfp.forecasting.inputs", "sfp.forecasting.linear_head",
                   "sfp.forecasting.grid", "sfp.forecasting.losses")),
    Stage("baseline_steps", FINE_TUNING, ("agent",), sources=_SELF_TRAINING),
    Stage("sfp", ("sfp", "sfp_trainer"), ("agent", "world_model"),
          sources=(*_SELF_TRAINING, *_PLANNING)),
    Stage("baseline_time", ("equal_time_baseline", "equal_time_budget", *FINE_TUNING), ("agent", "sfp"),
          switch="equal_time_baseline", sources=(*_SELF_TRAINING, "sfp.step_cost")),
    Stage("surrogate", ("surrogate_baseline", "surrogate_loss", "surrogate_weights", *FINE_TUNING),
          ("baseline_steps", "sfp"),
          switch="surrogate_baseline", sources=(*_SELF_TRAINING, "sfp.surrogate_weights", "sfp.metrics.surrogates")),
    *(Stage(peer, (f"{peer}_baseline", "surrogate_weights", *FINE_TUNING), ("baseline_steps", "sfp"),
            switch=f"{peer}_baseline", sources=(*_SELF_TRAINING, "sfp.surrogate_weights", "sfp.metrics.peer_losses"))
      for peer in PEER_BASELINES),
    Stage("qmap", ("qmap_baseline",), ("baseline_steps", "sfp"), switch="qmap_baseline", sources=("sfp.quantile_map",)),
    # code 2: forecasts scored inside the task's physical bounds
    Stage("evaluate", ("evaluation",), ("baseline_steps", "sfp", "baseline_time", "surrogate", *PEER_BASELINES,
                                        "qmap"), code=2,
          sources=("sfp.report.evaluation", "sfp.report.scoring", "sfp.metrics.task_metrics", "sfp.task")),
    Stage("report", ("report",), ("evaluate",), sources=("sfp.report.markdown",)),
)
STAGES = tuple(stage.name for stage in GRAPH)
RENAMED = {"baseline": "baseline_steps"}  # stage names an earlier sfp used -> today's (sfp.manifest moves them)
BY_NAME = {stage.name: stage for stage in GRAPH}
# the fine-tuned agents evaluate and report compare
COMPARED = ("baseline_steps", "baseline_time", "surrogate", *PEER_BASELINES, "qmap", "sfp")


def with_needs(name: str) -> set[str]:
    """Stage ``name`` and every stage it needs, directly or through others."""
    found, todo = set(), [name]
    while todo:
        stage = todo.pop()
        if stage not in found:
            found.add(stage)
            todo += BY_NAME[stage].needs
    return found
