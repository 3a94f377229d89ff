"""Probabilistic nowcasts: the world-model ensemble (calibrated on validation) against the deterministic agent and
pysteps' STEPS with the same K, on the test split of storms or radar (``SFP_ENSEMBLE_DATASET``, default storms);
writes ``results/ensemble/<dataset>.json`` and plots.

Needs a pipeline's trained runs (storms: ``make demo``'s ``runs/storms_sfp``; radar: ``runs/radar_sfp``; or
``SFP_ENSEMBLE_RUNS``, a folder with ``sfp/`` and ``world_model/``); the calibration
rule is ``RULE``.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from sfp.forecasting.checkpoints import load_forecaster
from sfp.forecasting.optim import adamw
from sfp.metrics import CRPS, mse
from sfp.models.steps_ensemble import steps_ensemble
from sfp.pipeline import instantiate, load_config
from sfp.planning.ensemble import KEEP_SPREAD, SpreadLaw, centre_members, forecast_ensemble, imagine_members
from sfp.planning.options import Imagination
from sfp.planning.world_model_module import WorldModelModule
from sfp.report.ensemble import EnsembleVerification, plot_verification

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = 16
GRID = {"temperature": (3.0, 10.0, 30.0), "candidates": (64, 128, 192, 256)}
CENTRINGS = ("none", "reconstruction", "mean")  # each made from the same imagined futures


@dataclass(frozen=True)
class Case:
    """A dataset's pipeline config, the threshold the search scores (the task's middle one) and STEPS' rain
    threshold, in the data's units."""

    config: str
    middle: float
    rain: float
    units: str


CASES = {"storms": Case("storms_sfp", 133.0, 1.0, "VIL 0-255"), "radar": Case("radar_sfp", 2.0, 0.1, "mm/h")}
TIE = 0.05
STRENGTHS = (1.0, 0.75, 0.5, 0.25)
RULE = (f"on validation, among the settings (temperature, candidates, centring) whose ensemble-mean MSE is no worse "
        f"than the forecast's, the spread-skill ratio (mean over lead times) closest to 1; ratios within {TIE} of "
        f"the best tie, broken by the lower CRPS (at the task's middle threshold for the search's own scores); then "
        f"the spread law fit to the chosen setting's per-lead ratios (r_t = a t^b in logs; departures scaled by "
        f"(t^-b / a)^s), at the largest strength s of {STRENGTHS} that keeps the ensemble mean's validation MSE no "
        f"worse than the forecast's")


def _dataset() -> str:
    name = os.environ.get("SFP_ENSEMBLE_DATASET", "storms")
    if name not in CASES:
        raise SystemExit(f"SFP_ENSEMBLE_DATASET must be one of {', '.join(CASES)}, got {name!r}")
    return name


def _runs(case: Case) -> Path:
    return Path(os.environ.get("SFP_ENSEMBLE_RUNS", ROOT / "runs" / case.config))


def _models(runs: Path) -> tuple:
    agent = load_forecaster(runs / "sfp" / "checkpoints" / "best.ckpt")
    module = WorldModelModule.load_from_checkpoint(runs / "world_model" / "checkpoints" / "best.ckpt",
                                                   map_location="cpu", weights_only=True)
    return agent, module.world_model.eval().requires_grad_(False)


class Validation:
    """The validation batches with the agent's forecasts and their reconstructions, scored at the middle threshold."""

    def __init__(self, agent, world_model, loader, bounds: tuple, middle: float, window: int) -> None:
        self.world_model, self.bounds, self.middle, self.window = world_model, bounds, middle, window
        self.batches = list(loader)
        self.forecasts = [agent.forecast(*b[:3]).detach() for b in self.batches]
        self.reconstructions = [world_model.reconstruct(f, b[1]) for f, b in zip(self.forecasts, self.batches)]
        self.mse_forecast = float(sum(mse(f, b[3]) * len(f) for f, b in zip(self.forecasts, self.batches)))

    def score(self, temperature: float, candidates: int, spread: SpreadLaw = KEEP_SPREAD,
              centrings: tuple[str, ...] = CENTRINGS) -> list[dict]:
        """Spread-skill (per lead and mean), CRPS and ensemble-mean MSE of one setting, a row per centring, every
        centring made from the same imagined futures."""
        imagination = Imagination(MEMBERS, candidates, temperature)
        leads = self.batches[0][3].shape[1]
        verification = {c: EnsembleVerification(MEMBERS, leads, (self.middle,), (self.window,)) for c in centrings}
        generator = torch.Generator().manual_seed(0)
        sums = dict.fromkeys(centrings, 0.0)  # the ensemble means' squared errors, summed over windows
        for batch, forecast, reconstruction in zip(self.batches, self.forecasts, self.reconstructions):
            imagined = imagine_members(self.world_model, batch[1], forecast, imagination, generator, "none")
            for centring in centrings:
                members = centre_members(imagined, forecast, centring, reconstruction, self.bounds, spread)
                verification[centring].update(members, batch[3])
                sums[centring] += float(mse(members.mean(1), batch[3])) * len(forecast)
        rows = []
        for centring in centrings:
            result = verification[centring].compute()
            rows.append({"temperature": temperature, "candidates": candidates, "centring": centring,
                         "spread_skill_mean": result["spread_skill_mean"], "spread_skill": result["spread_skill"],
                         "crps": result["crps"], "mse_ensemble_mean": sums[centring],
                         "mse_forecast": self.mse_forecast})
            print(rows[-1], flush=True)
        return rows


def _search(validation: Validation) -> list[dict]:
    """Every grid setting and centring, without a spread law."""
    return [row for temperature, candidates in itertools.product(*GRID.values())
            for row in validation.score(temperature, candidates)]


def _spread_law(validation: Validation, chosen: dict) -> tuple[SpreadLaw, dict]:
    """The strongest of the spread laws ``STRENGTHS`` (fractions of the fitted law's correction, in logs) whose
    ensemble mean's validation MSE is no worse than the forecast's, and its validation row; the identity law if
    none is, or the chosen setting has no centre."""
    if chosen["centring"] == "none":
        return KEEP_SPREAD, chosen
    law = SpreadLaw.fit(chosen["spread_skill"])
    for strength in STRENGTHS:
        partial = SpreadLaw(law.first**strength, law.growth * strength)
        row = validation.score(chosen["temperature"], chosen["candidates"], partial, (chosen["centring"],))[0]
        if row["mse_ensemble_mean"] <= row["mse_forecast"]:
            return partial, {**row, "strength": strength}
    return KEEP_SPREAD, chosen


def choose(rows: list[dict]) -> dict:
    """The setting that ``RULE`` picks among the search's rows."""
    fair = [r for r in rows if r["mse_ensemble_mean"] <= r["mse_forecast"]] or rows
    best = min(abs(r["spread_skill_mean"] - 1) for r in fair)
    return min((r for r in fair if abs(r["spread_skill_mean"] - 1) <= best + TIE), key=lambda r: r["crps"])


def _step_seconds(agent, batch) -> float:
    """Seconds of one training step of the agent (forward, backward, sfp's optimizer step) on ``batch``; best of 3."""
    agent.train()
    optimizer = adamw(agent.parameters(), 1e-4)
    times = []
    for _ in range(4):
        start = time.perf_counter()
        loss = mse(agent.forecast(*batch[:3]), batch[3])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    agent.eval()
    return min(times[1:])


def run() -> list[dict]:
    name = _dataset()
    case = CASES[name]
    runs = _runs(case)
    config = load_config(["--config", case.config])
    data = instantiate(config["data"])
    data.setup()
    agent, world_model = _models(runs)
    task = data.task
    torch.manual_seed(0)
    validation = Validation(agent, world_model, data.val_dataloader(), task.bounds, case.middle, task.fss_windows[0])
    search = _search(validation)
    chosen = choose(search)
    law, with_law = _spread_law(validation, chosen)
    imagination = Imagination(MEMBERS, chosen["candidates"], chosen["temperature"])
    target_len = config["data"]["init_args"]["target"]
    verify = {name: EnsembleVerification(MEMBERS, target_len, task.thresholds, task.fss_windows)
              for name in ("world_model", "steps")}
    point = {"agent": CRPS(), "steps_mean": CRPS()}
    deterministic = EnsembleVerification(1, target_len, task.thresholds, task.fss_windows)
    generator = torch.Generator().manual_seed(1)
    ensemble_seconds = 0.0
    for batch in data.test_dataloader():
        start = time.perf_counter()
        forecast, members = forecast_ensemble(agent, world_model, batch, imagination, generator, chosen["centring"],
                                              task.bounds, law)
        ensemble_seconds = ensemble_seconds or time.perf_counter() - start  # the first batch's, for the ratio
        truth = batch[3]
        steps = steps_ensemble(batch[1], target_len, MEMBERS, threshold=case.rain)
        verify["world_model"].update(members, truth)
        verify["steps"].update(steps, truth)
        point["agent"].update(forecast.unsqueeze(1), truth)
        deterministic.metrics["probabilistic"].update(forecast.unsqueeze(1), truth)
    step_seconds = _step_seconds(agent, next(iter(data.test_dataloader())))
    results = {name: v.compute() for name, v in verify.items()}
    agent_mae = float(point["agent"].compute())
    agent_brier = deterministic.metrics["probabilistic"].compute()["brier_skill"].tolist()
    report = {"dataset": name, "split": "test", "members": MEMBERS, "units": case.units,
              "calibration": {"rule": RULE, "chosen": chosen,
                              "spread_law": {"first": law.first, "growth": law.growth, "validation": with_law},
                              "search": search},
              "agent": {"mae": agent_mae, "brier_skill": agent_brier},
              **results,
              "timing": {"ensemble_batch_s": ensemble_seconds, "train_step_s": step_seconds,
                         "ratio": ensemble_seconds / step_seconds}}
    out = ROOT / "results" / "ensemble"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=1))
    plot_verification(out / f"{name}.png", results)
    wm, st = results["world_model"], results["steps"]
    return [
        {"name": f"{name} test CRPS, world-model ensemble (K=16)", "value": wm["crps"], "unit": case.units},
        {"name": f"{name} test CRPS, STEPS (K=16)", "value": st["crps"], "unit": case.units},
        {"name": f"{name} test MAE (= CRPS), deterministic agent", "value": agent_mae, "unit": case.units},
        {"name": f"{name} test spread-skill, world-model ensemble", "value": wm["spread_skill_mean"], "unit": ""},
        {"name": f"{name} test spread-skill, STEPS", "value": st["spread_skill_mean"], "unit": ""},
        {"name": "K=16 ensemble per batch / one agent training step", "value": ensemble_seconds / step_seconds,
         "unit": "x", "note": f"{ensemble_seconds:.2f} s / {step_seconds:.2f} s"},
    ]
