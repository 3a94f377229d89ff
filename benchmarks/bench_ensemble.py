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
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.timing import best_seconds
from sfp.forecasting.checkpoints import load_forecaster
from sfp.forecasting.optim import adamw
from sfp.metrics import CRPS, mse
from sfp.models.steps_ensemble import steps_ensemble
from sfp.pipeline_config import load_config
from sfp.planning.centring import CENTRINGS
from sfp.planning.ensemble import (
    KEEP_SPREAD,
    Calibration,
    SpreadLaw,
    centre_members,
    forecast_ensemble,
    imagine_members,
)
from sfp.planning.options import Imagination
from sfp.planning.world_model_module import load_world_model
from sfp.report.ensemble import EnsembleVerification, plot_verification
from sfp.run_spec import RunSpec

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = 16
GRID = {"temperature": (3.0, 10.0, 30.0), "candidates": (64, 128, 192, 256)}


@dataclass(frozen=True)
class Case:
    """A dataset's pipeline config, the threshold the search scores (the task's middle one) and the rain threshold
    (STEPS' and the members' ``wet`` one), in the data's units."""

    config: str
    middle: float
    rain: float
    units: str


CASES = {"storms": Case("storms_sfp", 133.0, 1.0, "VIL 0-255"), "radar": Case("radar_sfp", 2.0, 0.1, "mm/h")}
BAND = (0.8, 1.2)  # the spread-skill ratios of an ensemble neither over- nor under-dispersive
TIE = 0.05
STRENGTHS = (1.0, 0.75, 0.5, 0.25)
RULE = (f"on validation, every setting: temperature x candidates x centring; each centred one with departures "
        f"everywhere or only where the forecast is wet (>= the rain threshold), as imagined or scaled by the spread "
        f"law fit to its per-lead ratios (r_t = a t^b in logs; departures scaled by (t^-b / a)^s, s in {STRENGTHS}); "
        f"among those whose ensemble-mean MSE is no worse than the forecast's, the lowest CRPS of those whose "
        f"spread-skill ratio (mean over lead times) lies in {BAND[0]}-{BAND[1]}; if none does, the ratio nearest "
        f"that band, ratios within {TIE} of it tying, broken by the lower CRPS")


def _dataset() -> str:
    name = os.environ.get("SFP_ENSEMBLE_DATASET", "storms")
    if name not in CASES:
        raise SystemExit(f"SFP_ENSEMBLE_DATASET must be one of {', '.join(CASES)}, got {name!r}")
    return name


def _runs(case: Case) -> Path:
    return Path(os.environ.get("SFP_ENSEMBLE_RUNS", ROOT / "runs" / case.config))


def _models(runs: Path) -> tuple:
    agent = load_forecaster(runs / "sfp" / "checkpoints" / "best.ckpt")
    return agent, load_world_model(runs / "world_model" / "checkpoints" / "best.ckpt")


class Validation:
    """The validation batches with the agent's forecasts and their reconstructions, scored at the middle threshold."""

    def __init__(self, agent, world_model, loader, bounds: tuple, middle: float, window: int) -> None:
        self.world_model, self.bounds, self.middle, self.window = world_model, bounds, middle, window
        self.batches = list(loader)
        self.forecasts = [agent.forecast(*b[:3]).detach() for b in self.batches]
        self.reconstructions = [world_model.reconstruct(f, b[1]) for f, b in zip(self.forecasts, self.batches)]
        self.mse_forecast = float(sum(mse(f, b[3]) * len(f) for f, b in zip(self.forecasts, self.batches)))

    def imagine(self, temperature: float, candidates: int) -> list[torch.Tensor]:
        """The futures imagined around each batch's forecast (seeded: every setting's draws are reproducible)."""
        imagination = Imagination(MEMBERS, candidates, temperature)
        generator = torch.Generator().manual_seed(0)
        return [imagine_members(self.world_model, b[1], f, imagination, generator, "none")
                for b, f in zip(self.batches, self.forecasts)]

    def score(self, imagined: list[torch.Tensor], setting: Calibration, strength: float = 0.0) -> dict:
        """Spread-skill (per lead and mean), CRPS and ensemble-mean MSE of the members ``setting`` makes from
        ``imagined``."""
        leads = self.batches[0][3].shape[1]
        verification = EnsembleVerification(MEMBERS, leads, (self.middle,), (self.window,))
        squared = 0.0  # the ensemble means' squared errors, summed over windows
        for batch, forecast, reconstruction, draws in zip(self.batches, self.forecasts, self.reconstructions,
                                                          imagined):
            members = centre_members(draws, forecast, setting.centring, reconstruction, self.bounds, setting.spread,
                                     setting.wet)
            verification.update(members, batch[3])
            squared += float(mse(members.mean(1), batch[3])) * len(forecast)
        result = verification.compute()
        row = {**setting._asdict(), "spread": setting.spread._asdict(), "strength": strength,
               "spread_skill_mean": result["spread_skill_mean"], "spread_skill": result["spread_skill"],
               "crps": result["crps"], "mse_ensemble_mean": squared, "mse_forecast": self.mse_forecast}
        print({k: v for k, v in row.items() if k != "spread_skill"}, flush=True)
        return row


def _search(validation: Validation, wet: float) -> list[dict]:
    """Every setting of ``RULE``: each grid point's futures made into members by every centring, with and
    without the ``wet`` threshold, and each centred one with the spread law fit to it at every strength."""
    rows = []
    for temperature, candidates in itertools.product(*GRID.values()):
        imagined = validation.imagine(temperature, candidates)
        for centring in CENTRINGS.names():
            for threshold in (None,) if centring == "none" else (None, wet):
                setting = Calibration(temperature, candidates, centring, KEEP_SPREAD, threshold)
                rows.append(validation.score(imagined, setting))
                if centring != "none":
                    law = SpreadLaw.fit(rows[-1]["spread_skill"])
                    rows += [validation.score(imagined, setting._replace(
                        spread=SpreadLaw(law.first**strength, law.growth * strength)), strength)
                        for strength in STRENGTHS]
    return rows


def choose(rows: list[dict]) -> dict:
    """The setting that ``RULE`` picks among the search's rows."""
    fair = [r for r in rows if r["mse_ensemble_mean"] <= r["mse_forecast"]] or rows
    nearest = min(_off_band(r) for r in fair)
    allowed = nearest + TIE if nearest > 0 else 0.0
    return min((r for r in fair if _off_band(r) <= allowed), key=lambda r: r["crps"])


def _off_band(row: dict) -> float:
    """How far the row's spread-skill ratio lies outside ``BAND`` (0 inside)."""
    return max(BAND[0] - row["spread_skill_mean"], row["spread_skill_mean"] - BAND[1], 0.0)


def calibration_of(row: dict) -> Calibration:
    """The :class:`Calibration` of a search row."""
    return Calibration(row["temperature"], row["candidates"], row["centring"], SpreadLaw(**row["spread"]), row["wet"])


def _step_seconds(agent, batch) -> float:
    """Seconds of one training step of the agent (forward, backward, sfp's optimizer step) on ``batch``."""
    agent.train()
    optimizer = adamw(agent.parameters(), 1e-4)

    def step() -> None:
        loss = mse(agent.forecast(*batch[:3]), batch[3])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    seconds = best_seconds(step)
    agent.eval()
    return seconds


def run() -> list[dict]:
    name = _dataset()
    case = CASES[name]
    runs = _runs(case)
    config = load_config(["--config", case.config])
    data = RunSpec.of(config).data.build()
    data.setup()
    agent, world_model = _models(runs)
    task = data.task
    torch.manual_seed(0)
    validation = Validation(agent, world_model, data.val_dataloader(), task.bounds, case.middle, task.fss_windows[0])
    search = _search(validation, case.rain)
    chosen = choose(search)
    setting = calibration_of(chosen)
    imagination = Imagination(MEMBERS, setting.candidates, setting.temperature)
    target_len = config["data"]["init_args"]["target"]
    verify = {name: EnsembleVerification(MEMBERS, target_len, task.thresholds, task.fss_windows)
              for name in ("world_model", "steps")}
    agent_crps = CRPS()  # a point forecast's CRPS is its MAE
    deterministic = EnsembleVerification(1, target_len, task.thresholds, task.fss_windows)
    generator = torch.Generator().manual_seed(1)
    for batch in data.test_dataloader():
        forecast, members = forecast_ensemble(agent, world_model, batch, imagination, generator, setting.centring,
                                              task.bounds, setting.spread, setting.wet)
        truth = batch[3]
        steps = steps_ensemble(batch[1], target_len, MEMBERS, threshold=case.rain)
        verify["world_model"].update(members, truth)
        verify["steps"].update(steps, truth)
        agent_crps.update(forecast.unsqueeze(1), truth)
        deterministic.metrics["probabilistic"].update(forecast.unsqueeze(1), truth)
    first = next(iter(data.test_dataloader()))
    ensemble_seconds = best_seconds(lambda: forecast_ensemble(agent, world_model, first, imagination, None,
                                                               setting.centring, task.bounds, setting.spread,
                                                               setting.wet))
    step_seconds = _step_seconds(agent, first)
    results = {name: v.compute() for name, v in verify.items()}
    agent_mae = float(agent_crps.compute())
    agent_brier = deterministic.metrics["probabilistic"].compute()["brier_skill"].tolist()
    report = {"dataset": name, "split": "test", "members": MEMBERS, "units": case.units,
              "calibration": {"rule": RULE, "chosen": chosen, "search": search},
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
