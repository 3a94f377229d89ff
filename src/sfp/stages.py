"""What each stage of the SFP run does (the graph and what each reads: :mod:`sfp.stage_graph`).

Each stage is a function of the run (:class:`Run`: its spec, data module, folders and finished stages'
checkpoints) returning its outputs. The equal-step baseline (``baseline_steps``) is the agent trained on with MSE
alone for exactly the SFP stage's steps (the same :class:`SFPModule` with ``pseudo_labels.weight=0``), so the
comparison is honest by construction. Optional: the equal-time baseline (for SFP's cost: its seconds, or
:mod:`sfp.step_cost`), the surrogate and the published peers (MSE plus a differentiable loss, its weight chosen on
the validation split to match SFP's change of MSE) and the quantile-mapped baseline.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import lightning as L

from sfp.options import plain
from sfp.run_spec import FineTuning, RunSpec
from sfp.surrogate_weights import match_surrogate_weight
from sfp.training import (
    FitClock,
    KeepSpec,
    prepare_strategy,
    read_checkpoint,
    resolve_checkpoint,
    run_callbacks,
    run_logger,
)


class Run(Protocol):
    """What a stage works with: the run's spec (:class:`~sfp.run_spec.RunSpec`), seed, log and data module, its
    folders and manifest, and the checkpoints of the stages done (:class:`sfp.pipeline.Pipeline`)."""

    spec: RunSpec
    seed: int
    root: Path
    log: Callable[[str], None]
    manifest: Any
    validated: dict[str, dict[str, float]]  # validation metrics by checkpoint path ("persistence" too), this run

    @property
    def datamodule(self) -> L.LightningDataModule: ...

    def stage_dir(self, stage: str) -> Path: ...

    def checkpoint(self, stage: str) -> str: ...

    def compared_checkpoints(self) -> dict[str, str]: ...


def fit(run: Run, stage: str, model: L.LightningModule, trainer_section: str, patience: int | None = None,
        by_mse: bool = False, **trainer_overrides: Any) -> dict[str, Any]:
    """Train ``model`` in the stage's folder (resuming from its ``last.ckpt``) with the spec's Trainer section."""
    root = run.stage_dir(stage)
    kwargs = {**getattr(run.spec, trainer_section), **trainer_overrides}
    prepare_strategy(kwargs.get("strategy"))
    callbacks = run_callbacks(root, run.datamodule, run.spec.checkpoint_every,
                              kwargs.get("enable_progress_bar") is not False, patience, by_mse)
    callbacks.append(KeepSpec(plain(run.spec)))
    trainer = L.Trainer(default_root_dir=str(root), logger=run_logger(root), use_distributed_sampler=False,
                        callbacks=callbacks, **kwargs)
    trainer.fit(model, datamodule=run.datamodule, ckpt_path=resolve_checkpoint(root, "last", required=False),
                weights_only=True)
    last = resolve_checkpoint(root, "last", required=False)  # spawned processes keep their step to themselves
    steps = read_checkpoint(last)["global_step"] if last else trainer.global_step
    clock = next(c for c in callbacks if isinstance(c, FitClock))
    return {"checkpoint": run.checkpoint(stage), "steps": steps, "processes": trainer.world_size,
            "seconds_before_resume": round(clock.seconds_before, 2)}


def sfp_module(run: Run, fine_tuning: FineTuning, world_model: str | None = None, surrogate_weight: float = 0.0,
               peer: str = "surrogate", surrogate_loss: dict[str, Any] | None = None) -> L.LightningModule:
    """:class:`SFPModule` on the run's agent, fine-tuning as ``fine_tuning`` says, planning in the world model at
    ``world_model`` (a checkpoint; None with planning off) and adding ``surrogate_weight`` times the loss ``peer``."""
    from sfp.planning.self_training import SFPModule

    return SFPModule(agent_checkpoint=run.checkpoint("agent"), world_model_checkpoint=world_model,
                     planner=fine_tuning.planner, pseudo_labels=fine_tuning.pseudo_labels, reward=fine_tuning.reward,
                     lr=fine_tuning.lr, weight_decay=fine_tuning.weight_decay, seed=run.seed,
                     surrogate_weight=surrogate_weight, peer=peer, gauges=fine_tuning.gauges,
                     surrogate_loss=surrogate_loss)


def fine_tune(run: Run, stage: str, build: Callable[[], L.LightningModule],
              trainer_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The module ``build()`` makes (an :class:`SFPModule`), made after seeding as every fine-tuning stage is, then
    trained with the spec's ``sfp_trainer`` section."""
    L.seed_everything(run.seed, verbose=False)
    return fit(run, stage, build(), "sfp_trainer", **(trainer_overrides or {}))


def mse_baseline(run: Run, stage: str, trainer_overrides: dict[str, Any] | None = None,
                 **peer: Any) -> dict[str, Any]:
    """The agent trained on without planning (pseudo-label weight 0), as every baseline is; ``peer``: the
    surrogate weight and loss of a peer (:func:`sfp_module`)."""
    return fine_tune(run, stage, lambda: sfp_module(run, run.spec.sfp.without_planning(), **peer), trainer_overrides)


def data(run: Run) -> dict[str, Any]:
    datamodule = run.datamodule
    sizes = {split: len(datamodule.datasets[split]) for split in ("train", "val", "test")}
    run.log(f"  windows: {sizes}")
    return {"windows": sizes, "task": datamodule.task.name}


def _copied(run: Run, stage: str, source: str) -> dict[str, Any]:
    """A stage whose checkpoint was trained elsewhere: ``source`` copied in as its best checkpoint."""
    target = run.stage_dir(stage) / "checkpoints" / "best.ckpt"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return {"checkpoint": str(target), "from": source}


def world_model(run: Run) -> dict[str, Any]:
    from sfp.planning.world_model_module import WorldModelModule

    if run.spec.world_model_from is not None:  # trained once per dataset, shared by its cells
        return _copied(run, "world_model", run.spec.world_model_from)
    L.seed_everything(run.seed, verbose=False)
    return fit(run, "world_model", WorldModelModule(**run.spec.world_model), "world_model_trainer")


def agent(run: Run) -> dict[str, Any]:
    if run.spec.agent_from is not None:  # trained once, shared by a table's rows of one dataset
        return _copied(run, "agent", run.spec.agent_from)
    L.seed_everything(run.seed, verbose=False)
    return fit(run, "agent", run.spec.agent.build(), "agent_trainer", run.spec.agent_patience,
               run.spec.agent_monitor == "mse")


def baseline_steps(run: Run) -> dict[str, Any]:
    return mse_baseline(run, "baseline_steps")


def sfp(run: Run) -> dict[str, Any]:
    return fine_tune(run, "sfp", lambda: sfp_module(run, run.spec.sfp, run.checkpoint("world_model")))


def baseline_time(run: Run) -> dict[str, Any]:
    """MSE fine-tuning for the SFP stage's cost (``equal_time_budget``): its seconds, or its steps times the cost
    of an SFP step in baseline steps, measured in this process (:mod:`sfp.step_cost`; kept in the stage's folder,
    so a resumed stage keeps its budget)."""
    if run.spec.equal_time_budget == "stage_seconds":
        seconds = float(run.manifest.stages["sfp"]["seconds"])
        return {**mse_baseline(run, "baseline_time", {"max_steps": -1, "max_time": {"seconds": seconds}}),
                "budget_seconds": seconds}
    steps = int(run.manifest.stages["sfp"]["outputs"]["steps"])
    kept = run.stage_dir("baseline_time") / "step_cost.json"
    if kept.exists():
        cost = json.loads(kept.read_text())
    else:
        cost = _step_cost(run, steps)
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps(cost, indent=2))
    budget = max(1, round(steps * cost["ratio"]))
    run.log(f"  an SFP step costs {cost['ratio']:.2f} baseline steps: {budget} steps for SFP's {steps}")
    return {**mse_baseline(run, "baseline_time", {"max_steps": budget}), "step_cost": cost, "budget_steps": budget}


def _step_cost(run: Run, steps: int) -> dict[str, Any]:
    """The cost of the SFP stage's step in baseline steps, on the run's agent, world model and data."""
    from sfp.step_cost import measure_step_cost, planned_share

    fine_tuning = run.spec.sfp
    refresh = fine_tuning.pseudo_labels.refresh_every
    share = planned_share(steps, len(run.datamodule.train_dataloader()), refresh)
    cached = fine_tuning.with_labels(refresh_every=max(1, refresh))
    return measure_step_cost(lambda: sfp_module(run, cached, run.checkpoint("world_model")),
                             lambda: sfp_module(run, fine_tuning.without_planning()), run.datamodule, share,
                             run.spec.sfp_trainer.get("accelerator") or "auto")


def surrogate(run: Run) -> dict[str, Any]:
    """MSE plus ``w`` times the headline metric's differentiable stand-in, at SFP's validation MSE change."""
    return matched_peer(run, "surrogate")


def balanced_mse(run: Run) -> dict[str, Any]:
    """MSE plus ``w`` times balanced MSE, at SFP's validation MSE change."""
    return matched_peer(run, "balanced_mse")


def facl(run: Run) -> dict[str, Any]:
    """MSE plus ``w`` times FACL, at SFP's validation MSE change."""
    return matched_peer(run, "facl")


def validate(run: Run, checkpoints: dict[str, str]) -> dict[str, dict[str, float]]:
    """The task metrics of each named checkpoint (and persistence) on the validation split; a checkpoint scored
    before in this run is not scored again (every peer stage compares the same baseline and SFP)."""
    from sfp.report.evaluation import checkpoint_forecasters, evaluate_forecasts

    datamodule = run.datamodule
    new = {name: path for name, path in checkpoints.items() if path not in run.validated}
    if new or "persistence" not in run.validated:
        found = evaluate_forecasts(checkpoint_forecasters(new, datamodule.task.bounds), datamodule.val_dataloader(),
                                   datamodule.task, datamodule.target, getattr(datamodule, "heatwave_windows", None))
        run.validated.update({"persistence": found["persistence"], **{path: found[name] for name, path in new.items()}})
    return {"persistence": run.validated["persistence"],
            **{name: run.validated[path] for name, path in checkpoints.items()}}


def matched_peer(run: Run, peer: str) -> dict[str, Any]:
    """MSE plus ``w`` times the differentiable loss ``peer`` (:func:`sfp.metrics.peer_losses.peer_loss`), for the
    SFP stage's steps, for each ``w`` of ``surrogate_weights`` and, while none matches, a few more; kept (as stage
    ``peer``): the one whose validation MSE, relative to the equal-step baseline's, is nearest SFP's
    (:func:`match_surrogate_weight`)."""
    trained: dict[float, str] = {}
    options = {"surrogate_loss": run.spec.surrogate_loss} if peer == "surrogate" else {}
    val = validate(run, {"baseline_steps": run.checkpoint("baseline_steps"), "sfp": run.checkpoint("sfp")})

    def change(name: str) -> float:  # validation MSE relative to the equal-step baseline's
        return val[name]["mse"] / val["baseline_steps"]["mse"] - 1.0

    def measure(weights: list[float]) -> dict[float, float]:
        """Train ``weights``; the validation MSE change of every weight trained so far."""
        for weight in weights:
            trained[weight] = mse_baseline(run, f"{peer}/w{weight:g}", surrogate_weight=weight, peer=peer,
                                           **options)["checkpoint"]
        val.update(validate(run, {f"w{weight:g}": trained[weight] for weight in weights}))
        return {w: change(f"w{w:g}") for w in trained}

    weight = match_surrogate_weight(measure, run.spec.surrogate_weights, change("sfp"))
    mse_change = {name: change(name) for name in val}
    target = run.stage_dir(peer) / "checkpoints" / "best.ckpt"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(trained[weight], target)
    run.log(f"  {peer} weight {weight:g}: validation MSE {mse_change[f'w{weight:g}']:+.1%} vs SFP's "
            f"{mse_change['sfp']:+.1%} (relative to the equal-step baseline)")
    return {"checkpoint": str(target), "weight": weight, "val_mse_change": mse_change,
            "val_headline": {name: val[name][run.datamodule.task.headline] for name in val}}


def qmap(run: Run) -> dict[str, Any]:
    """The equal-step baseline's forecasts quantile-mapped per lead time onto the truth's distribution, both
    fitted on the validation split (no training), blended with the unmapped forecasts at the blend whose validation
    MSE change is SFP's (:mod:`sfp.quantile_map`)."""
    import torch

    from sfp.quantile_map import MAP_FILE, blend_for_mse_change, fit_quantile_map, save_quantile_map
    from sfp.report.evaluation import checkpoint_forecast

    val = validate(run, {"baseline_steps": run.checkpoint("baseline_steps"), "sfp": run.checkpoint("sfp")})
    sfp_change = val["sfp"]["mse"] / val["baseline_steps"]["mse"] - 1.0
    baseline = checkpoint_forecast(run.checkpoint("baseline_steps"), run.datamodule.task.bounds)
    with torch.no_grad():
        pairs = [(baseline(batch), batch[3]) for batch in run.datamodule.val_dataloader()]
    forecasts, truths = (torch.cat(part) for part in zip(*pairs))
    mapping = fit_quantile_map(forecasts, truths)
    blend = blend_for_mse_change(mapping, forecasts, truths, sfp_change)
    target = run.stage_dir("qmap") / MAP_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    save_quantile_map(target, run.checkpoint("baseline_steps"), mapping, blend)
    run.log(f"  qmap blend {blend:.3f} (SFP's validation MSE change {sfp_change:+.1%})")
    return {"checkpoint": str(target), "blend": blend, "val_mse_change": {"sfp": sfp_change}}


def evaluate(run: Run) -> dict[str, Any]:
    from sfp.report.evaluation import evaluate_checkpoints

    checkpoints = {"agent": run.checkpoint("agent"), **run.compared_checkpoints()}
    evaluation = run.spec.evaluation
    results = evaluate_checkpoints(run.datamodule, checkpoints, evaluation.extras, evaluation.metric)
    out = run.stage_dir("evaluate") / "metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return {"metrics": str(out)}


def report(run: Run) -> dict[str, Any]:
    from sfp.report.markdown import write_report

    return write_report(run.root, run.datamodule, run.manifest.stages, run.compared_checkpoints(),
                        gif_samples=run.spec.report.gif_samples)


WORK: dict[str, Callable[[Run], dict[str, Any]]] = {
    "data": data, "world_model": world_model, "agent": agent, "baseline_steps": baseline_steps, "sfp": sfp,
    "baseline_time": baseline_time, "surrogate": surrogate, "balanced_mse": balanced_mse, "facl": facl,
    "qmap": qmap, "evaluate": evaluate, "report": report}
