"""The pipeline's report: ``report.md`` and ``metrics.json`` in the run directory, with plots and GIFs."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sfp.metrics.task_metrics import LOWER_IS_BETTER
from sfp.report.figures import pyplot, save_figure
from sfp.report.gif import GIF_SAMPLES, animate

PICTURE_BATCHES = 4  # test batches searched for the rainiest window
MODELS = ("persistence", "agent", "baseline_steps", "baseline_time", "surrogate", "balanced_mse", "facl", "qmap", "sfp")
BASELINES = {"baseline_steps": "equal-step baseline", "baseline_time": "equal-time baseline", "surrogate": "surrogate",
             "balanced_mse": "balanced MSE", "facl": "FACL", "qmap": "quantile-mapped baseline"}


def _rows(models: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, float | None]]]:
    """(metric name, {model: value}) in report order, per-threshold CSI expanded."""
    names: list[str] = []
    for values in models.values():
        for key, value in values.items():
            keys = [f"csi_{t}" for t in value] if isinstance(value, dict) else [key]
            names += [k for k in keys if k not in names]

    def value(model: str, name: str) -> float | None:
        values = models.get(model, {})
        if name.startswith("csi_") and name[4:] in values.get("csi", {}):
            return values["csi"][name[4:]]
        return values.get(name)

    return [(name, {m: value(m, name) for m in models}) for name in names]


def relative_change(name: str, baseline: float | None, sfp: float | None) -> str:
    """SFP against the baseline in percent, marked better or worse by the metric's direction."""
    if baseline is None or sfp is None or baseline == 0:
        return "n/a"
    change = (sfp - baseline) / abs(baseline) * 100
    better = change < 0 if name.split("_t")[0] in LOWER_IS_BETTER else change > 0
    return f"{change:+.1f}% ({'better' if better else 'worse' if change else 'same'})"


def comparison_table(models: dict[str, dict[str, Any]]) -> str:
    """A markdown table: one row per metric, a column per model, and SFP's change against each baseline present."""
    present = [m for m in MODELS if m in models]
    against = [m for m in BASELINES if m in models]
    lines = ["| metric | " + " | ".join(present) + "".join(f" | SFP vs {BASELINES[m]}" for m in against) + " |",
             "|---" * (len(present) + len(against) + 1) + "|"]
    for name, values in _rows(models):
        cells = ["n/a" if values[m] is None else f"{values[m]:.4g}" for m in present]
        changes = [relative_change(name, values.get(m), values.get("sfp")) for m in against]
        lines.append(f"| {name} | " + " | ".join(cells + changes) + " |")
    return "\n".join(lines)


def _training_curves(log_dir: Path, out: Path) -> Path | None:
    """Plot acceptance rate and reward gain per step from the SFP stage's CSV log."""
    rows = [row for path in sorted(log_dir.rglob("metrics.csv")) for row in csv.DictReader(path.open())]
    series = {key: [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
              for key in ("train/acceptance_step", "train/reward_gain_step")}
    if not any(series.values()):
        return None
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for axis, (key, points) in zip(axes, series.items()):
        if points:
            steps, values = zip(*points)
            axis.plot(steps, values, lw=1, marker="o", ms=2)
        axis.set_title(key.removeprefix("train/").removesuffix("_step").replace("_", " "))
        axis.set_xlabel("step")
    return save_figure(fig, out, 110)


def _gifs(path: Path, datamodule: Any, forecasters: dict[str, Any], count: int) -> list[Path]:
    """Context | truth | baseline | SFP for the first `count` test sequences (fields only)."""
    batch = next(iter(datamodule.test_dataloader()))
    if batch[1].ndim != 5 or count < 1:
        return []
    batch = tuple(part[:count] for part in batch)
    with torch.no_grad():
        panels = {"truth": batch[3], **{name: forecasters[name](batch) for name in ("baseline_steps", "sfp")}}
    context = batch[1][:, :, 0].numpy()
    frames = {name: value[:, :, 0].numpy() for name, value in panels.items()}
    return [animate(path, context, frames, vmin=float(np.nanmin(context)),
                    vmax=float(np.nanmax([np.nanmax(context), np.nanmax(frames["truth"])])))]


@torch.no_grad()
def _pictures(root: Path, datamodule: Any, forecasters: dict[str, Any]) -> list[Path]:
    """Truth, baseline and SFP of the rainiest of the first test windows on the field's colour scale (tasks with
    event thresholds): ``forecast.png`` and ``forecast.gif``."""
    from sfp.report.pictures import colour_scale, forecast_gif, forecast_png, minutes, rainiest_window, steps

    batches = [batch for batch, _ in zip(datamodule.test_dataloader(), range(PICTURE_BATCHES))]
    if not batches or batches[0][1].ndim != 5:
        return []
    one = rainiest_window(batches)
    rows = {name: forecasters[name](one)[0, :, 0].numpy() for name in ("baseline_steps", "sfp")}
    truth = one[3][0, :, 0].numpy()
    scale = colour_scale(datamodule.task, truth)
    step = getattr(datamodule, "step_minutes", None)
    label = minutes(step) if step else steps
    return [forecast_png(root / "forecast.png", truth, rows, scale, label),
            forecast_gif(root / "forecast.gif", truth, rows, scale, label)]


@torch.no_grad()
def _heatwave_pictures(root: Path, datamodule: Any, forecasters: dict[str, Any]) -> list[Path]:
    """Truth, baseline and SFP of the first test windows' window with the most strong-core days, as SST anomalies
    with the heatwave categories contoured (each forecast classified after its context): ``heatwaves.png``."""
    from sfp.metrics.heatwave_scores import classify
    from sfp.report.pictures import colour_scale, heatwave_png

    windows = datamodule.heatwave_windows

    def core_days(batch: tuple[Any, ...]) -> Any:  # per window of the batch
        context, seas, thresh, _ = windows(batch)
        return (classify(context, batch[3], seas, thresh).category >= 2).flatten(1).sum(1)

    batch = max((batch for batch, _ in zip(datamodule.test_dataloader(), range(PICTURE_BATCHES))),
                key=lambda batch: int(core_days(batch).max()))
    context, seas, thresh, _ = windows(batch)
    found = {"truth": batch[3], **{name: forecasters[name](batch) for name in ("baseline_steps", "sfp")}}
    one = int(core_days(batch).argmax())
    days = slice(context.shape[1], None)
    anomalies = {name: (values - seas[:, days])[one, :, 0].numpy() for name, values in found.items()}
    categories = {name: classify(context, values, seas, thresh).category[one, :, 0].numpy()
                  for name, values in found.items()}
    leads = sorted({0, *range(2, len(anomalies["truth"]), 3), len(anomalies["truth"]) - 1})
    scale = colour_scale(datamodule.task, np.stack(list(anomalies.values())))
    return [heatwave_png(root / "heatwaves.png", anomalies, categories, leads, scale)]


def write_report(root: Path, datamodule: Any, stages: dict[str, dict[str, Any]], checkpoints: dict[str, str],
                 gif_samples: int = GIF_SAMPLES) -> dict[str, Any]:
    """Write ``metrics.json`` and ``report.md`` (table, changes, curves, GIFs) into the run directory ``root``.

    Reads the evaluate stage's ``metrics.json``; ``stages`` is the manifest's record of every stage (wall times,
    outputs); ``checkpoints`` the baseline's and SFP's, whose forecasts the GIF shows.
    """
    from sfp.report.evaluation import checkpoint_forecasters

    root = Path(root)
    results = json.loads((root / "evaluate" / "metrics.json").read_text())
    seconds = {stage: entry.get("seconds") for stage, entry in stages.items()}
    metrics = {"dataset": results["dataset"], "models": results["models"], "seconds": seconds}
    (root / "metrics.json").write_text(json.dumps(metrics, indent=2))
    forecasters = checkpoint_forecasters(checkpoints, datamodule.task.bounds)
    gifs = _gifs(root / "forecasts.gif", datamodule, forecasters, gif_samples)
    pictures = _pictures(root, datamodule, forecasters) if datamodule.task.thresholds else []
    if getattr(datamodule, "heatwave_windows", None) is not None:
        pictures = _heatwave_pictures(root, datamodule, forecasters)
    curves = _training_curves(root / "sfp" / "logs", root / "training.png")
    steps = stages.get("sfp", {}).get("outputs", {}).get("steps")
    lines = [f"# SFP report: {results['dataset']}", "",
             f"Test split. The baseline is the same agent trained on with MSE alone for the SFP stage's {steps} "
             "steps; SFP adds planned pseudo-labels. Units: see `metrics.json` of `sfp test` runs "
             "(MSE/MAE on value/value_scale; CSI, FSS, SSIM dimensionless; TKE error in log10 decades).", "",
             comparison_table(results["models"]), "",
             "Stage wall times (s): " + ", ".join(f"{k} {v}" for k, v in seconds.items() if v is not None), ""]
    if curves:
        lines += ["## Self-training", "", f"![acceptance and reward gain]({curves.name})", ""]
    if gifs:
        lines += ["## Forecasts", "", "Context | truth | baseline | SFP, test sequences:", "",
                  *[f"![forecasts]({gif.name})" for gif in gifs], ""]
    if pictures and datamodule.task.heatwaves:
        lines += ["The test window with the most strong-core days among the first: SST anomaly from the "
                  "climatology, heatwave categories I-IV outlined (thin grey to thick black), a column per lead:",
                  "", *[f"![heatwaves]({picture.name})" for picture in pictures], ""]
    elif pictures:
        lines += [f"The rainiest of the first test windows on the {datamodule.task.name} colour scale, a column "
                  "per lead time:", "", *[f"![forecast]({picture.name})" for picture in pictures], ""]
    (root / "report.md").write_text("\n".join(lines))
    return {"report": str(root / "report.md"), "metrics": str(root / "metrics.json")}
