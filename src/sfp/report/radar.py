"""Score forecasters of radar rain rate the way the nowcasting field does, on the test events.

Persistence, Lucas–Kanade extrapolation, S-PROG and the 16-member STEPS mean (``sfp.models.nowcasts``), plus any
learned forecaster checkpoint, see the same test windows, each forecast computed once. Reported: the task metrics
(:func:`~sfp.metrics.task_metrics.build_task_metrics`, shaped like ``sfp.report.evaluation``: MSE and MAE in
(mm/h)^2 and mm/h, CSI per threshold and CSI-M from contingency counts summed over the test set), CSI per
threshold and lead time, and FSS at 1 and 5 mm/h in
8 and 32 km windows. Writes ``metrics.json`` (with units), ``metrics.md``, ``csi_lead.png`` and the rainiest test
window's ``forecast.png``/``forecast.gif``.

sfp radar --data runs/radar/windows.npz --out runs/radar/eval [--checkpoint [NAME=]best.ckpt ...]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sfp.data.radar.first_guess import forecaster_window, layout
from sfp.metrics.events import contingency, performance_points
from sfp.metrics.modules import FSS
from sfp.metrics.spectrum import rapsd
from sfp.metrics.task_metrics import build_task_metrics, threshold_key
from sfp.report.evaluation import as_floats, checkpoint_forecast, shape_metrics
from sfp.report.figures import pyplot, save_figure
from sfp.report.leads import LeadCurves
from sfp.report.scoring import Forecast, accumulate
from sfp.task import TaskSpec

FSS_THRESHOLDS = (1.0, 5.0)  # mm/h
FSS_KM = (8, 32)


def reference_forecasters(members: int = 16, seed: int = 0, observed: int | None = None) -> dict[str, Forecast]:
    """Persistence (missing counted as no rain) and the pysteps nowcasts, as functions of a batch; they read its
    first ``observed`` context frames (all by default; a window with a first guess holds it after them)."""
    from sfp.models.baselines import persistence
    from sfp.models.nowcasts import extrapolation_nowcast, sprog_nowcast, steps_mean_nowcast

    def out(batch: tuple[Tensor, ...]) -> int:
        return batch[3].shape[1]

    def seen(batch: tuple[Tensor, ...]) -> Tensor:
        return batch[1][:, :observed]

    return {
        "persistence": lambda b: persistence(seen(b), out(b)).nan_to_num(0.0),
        "extrapolation": lambda b: extrapolation_nowcast(seen(b), out(b)),
        "sprog": lambda b: sprog_nowcast(seen(b), out(b)),
        "steps_mean": lambda b: steps_mean_nowcast(seen(b), out(b), members=members, seed=seed),
    }


class _LeadScores:
    """CSI per threshold and lead time, FSS at the field's thresholds and windows, the contingency counts per lead
    time and threshold (hits, misses, false alarms: ``lead_counts``, and a performance diagram's points) and the
    radially averaged power spectrum per lead time of the forecasts and of the observations (missing pixels as no
    rain), summed over the set."""

    def __init__(self, task: TaskSpec, target_len: int, km_per_pixel: float) -> None:
        self.csi = LeadCurves(task, target_len)
        self.windows = tuple(int(km / km_per_pixel) for km in FSS_KM)
        self.fss = FSS(FSS_THRESHOLDS, self.windows)
        self.thresholds, self.km_per_pixel = tuple(task.thresholds), km_per_pixel
        self.counts: Tensor | None = None
        self.power: dict[str, Tensor] = {}
        self.frequencies: Tensor | None = None
        self.fields = 0

    def update(self, pred: Tensor, target: Tensor) -> None:
        self.csi.update(pred, target)
        self.fss.update(pred, target)
        counts = contingency(pred.transpose(0, 1), target.transpose(0, 1), self.thresholds, reduction="none")
        self.counts = counts if self.counts is None else self.counts + counts  # (T, K, 4)
        for name, field in (("forecast", pred), ("observations", target)):
            frequencies, power = rapsd(field.nan_to_num(0.0)[:, :, 0], self.km_per_pixel)  # (B, T, K)
            self.power[name] = self.power.get(name, 0) + power.sum(0)
            self.frequencies = frequencies
        self.fields += pred.shape[0]

    def compute(self) -> dict[str, Any]:
        per_lead = self.csi.compute()["csi_per_lead"]
        fss = self.fss.compute().reshape(len(FSS_THRESHOLDS), len(self.windows))
        points = performance_points(self.counts)
        return {
            "csi_per_lead": per_lead,
            "csi_m_per_lead": [float(torch.tensor(values).nanmean()) for values in zip(*per_lead.values())],
            "fss": {f"{threshold_key(t)}mm_{km}km": float(fss[i, j])
                    for i, t in enumerate(FSS_THRESHOLDS) for j, km in enumerate(FSS_KM)},
            "performance": {key: points[key].tolist() for key in ("success_ratio", "pod")},
            "lead_counts": self.counts[..., :3].tolist(),  # (T, K, 3): per-lead counts pool over sets
            "rapsd": {"frequencies": self.frequencies.tolist(),
                      **{name: (power / self.fields).tolist() for name, power in self.power.items()}},
        }


class _WindowCounts:
    """Hits, misses and false alarms per window and threshold ``(W, K, 3)``: rows that sum to the pooled counts of
    any set of windows (what a bootstrap over forecast start times resamples)."""

    def __init__(self, thresholds: tuple[float, ...]) -> None:
        self.thresholds, self.rows = thresholds, []

    def update(self, pred: Tensor, target: Tensor) -> None:
        self.rows.append(contingency(pred, target, self.thresholds, reduction="none")[..., :3])

    def compute(self) -> list:
        return torch.cat(self.rows).tolist() if self.rows else []


def evaluate_radar(forecasts: dict[str, Forecast], batches: Iterable[tuple[Tensor, ...]], task: TaskSpec,
                   target_len: int, km_per_pixel: float = 2.0, step_minutes: int = 10) -> dict[str, Any]:
    """metrics.json content: task metrics, CSI per lead time and FSS per model, with units, and per model each
    window's contingency counts (``window_counts``); each forecast is made once (STEPS is slow) and fed to every
    score."""
    counted: list[int] = []

    def windows() -> Iterable[tuple[Tensor, ...]]:
        for batch in batches:
            counted.append(len(batch[3]))
            yield batch

    computed = accumulate(forecasts, windows(), lambda name: [build_task_metrics(task, target_len),
                                                              _LeadScores(task, target_len, km_per_pixel),
                                                              _WindowCounts(tuple(task.thresholds))])
    return {
        "dataset": task.name, "windows": sum(counted),
        "lead_minutes": [step_minutes * (t + 1) for t in range(target_len)],
        "units": {"mse": "(mm/h)^2", "mae": "mm/h", "csi": "dimensionless", "fss": "dimensionless",
                  "thresholds": "mm/h"},
        "models": {name: {**shape_metrics(as_floats(metrics), task), **leads, "window_counts": counts}
                   for name, (metrics, leads, counts) in computed.items()},
    }


def write_table(path: Path, results: dict[str, Any]) -> Path:
    """A Markdown table: one row per model, CSI-M, CSI per threshold, FSS, MSE and MAE."""
    models = results["models"]
    first = next(iter(models.values()))
    csi_keys, fss_keys = list(first["csi"]), list(first["fss"])
    header = ["model", "CSI-M", *(f"CSI {k}" for k in csi_keys), *(f"FSS {k}" for k in fss_keys),
              "MSE (mm/h)^2", "MAE mm/h"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, m in models.items():
        cells = [m["csi_m"], *(m["csi"][k] for k in csi_keys), *(m["fss"][k] for k in fss_keys), m["mse"], m["mae"]]
        lines.append("| " + " | ".join([name, *("-" if c is None else f"{c:.3f}" for c in cells)]) + " |")
    path.write_text("\n".join(lines) + "\n")
    return path


def plot_csi_per_lead(path: Path, results: dict[str, Any]) -> Path:
    """CSI against lead time, one panel per threshold, one line per model."""
    plt = pyplot()

    models = results["models"]
    thresholds = list(next(iter(models.values()))["csi_per_lead"])
    fig, axes = plt.subplots(1, len(thresholds), figsize=(3.2 * len(thresholds), 3.2), sharey=True)
    for ax, threshold in zip(axes, thresholds):
        for name, m in models.items():
            ax.plot(results["lead_minutes"], m["csi_per_lead"][threshold], marker="o", label=name)
        ax.set_title(f"CSI >= {threshold} mm/h")
        ax.set_xlabel("lead time (min)")
    axes[0].set_ylabel("CSI")
    axes[-1].legend(fontsize=7)
    return save_figure(fig, path)


def run(data: str, out: str, checkpoints: dict[str, str] | None = None, limit: int | None = None,
        batch_size: int = 8, composites: str | None = None, members: int = 16,
        events: dict[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """Evaluate the references (and the named ``checkpoints``) on the test events of a prepared file; write the
    report. ``composites``: the pysteps example data the file was built from, to add each reference, and each
    checkpoint (its tiles overlapping by half and blended), run on the whole composite and cut to the scored tiles
    (``<name>_full``, :mod:`sfp.report.full_domain`). ``events``: ``val_events`` and ``test_events`` in place of
    the data module's (a held-out fold)."""
    from sfp.data.radar import RadarDataModule
    from sfp.data.radar.dataset import load
    from sfp.models.common import require_positive

    require_positive(members=members)  # before any forecast is made
    arrays = load(data)
    context, target = forecaster_window(arrays)  # a hybrid's context holds the first guess
    datamodule = RadarDataModule(data, windows={"context": context, "target": target},
                                 loading={"batch_size": batch_size}, augment=False, **(events or {}))
    datamodule.setup()
    forecasts = reference_forecasters(members, observed=layout(arrays)[0])
    if composites is not None:
        from sfp.models.nowcasts import extrapolation_nowcast, sprog_nowcast, steps_mean_nowcast
        from sfp.report.full_domain import forecaster_nowcast, full_domain_references

        context_x, _, target_x, _ = datamodule.datasets["test"][0]
        forecasts.update(full_domain_references(composites, datamodule, {
            "extrapolation": extrapolation_nowcast, "sprog": sprog_nowcast,
            "steps_mean": lambda context, out: steps_mean_nowcast(context, out, members=members, seed=0),
            **{name: forecaster_nowcast(path, datamodule.arrays, datamodule.task.bounds, context_x, target_x)
               for name, path in (checkpoints or {}).items()}}))
    for name, path in (checkpoints or {}).items():
        forecasts[name] = checkpoint_forecast(path, datamodule.task.bounds)
    batches = list(datamodule.test_dataloader())[:limit]
    results = evaluate_radar(forecasts, batches, datamodule.task, datamodule.target,
                             float(datamodule.arrays["spacing_km"]), int(datamodule.arrays["step_minutes"]))
    results["test_events"] = list(datamodule.test_events)
    results["window_starts"] = window_starts(datamodule)[: results["windows"]]
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(results, indent=1))
    write_table(folder / "metrics.md", results)
    plot_csi_per_lead(folder / "csi_lead.png", results)
    plot_views(folder, results, datamodule.task)
    _pictures(folder, forecasts, batches, datamodule.task, results["lead_minutes"][0])
    return results


def window_starts(datamodule: Any) -> list[list[Any]]:
    """Each test window's forecast start, ``[event, frame]``, in the test loader's order: windows of one start (the
    tiles of one composite) share their weather, so a bootstrap resamples starts, not windows."""
    arrays, dataset = datamodule.arrays, datamodule.datasets["test"]
    names = [str(name) for name in arrays["events"]]
    sequences = dataset.index[:, 0].tolist()
    return [[names[int(arrays["event"][i])], int(arrays["position"][i][0])] for i in sequences]


def plot_views(folder: Path, results: dict[str, Any], task: TaskSpec) -> None:
    """The views nowcasters read: ``performance_diagram.png`` (POD against success ratio per threshold, a marker per
    lead time) and ``rapsd.png`` (each model's power spectrum against the observations', per lead time)."""
    from sfp.report.performance_diagram import plot_performance_diagram
    from sfp.report.power_spectra import plot_rapsd

    models = results["models"]
    plot_performance_diagram(folder / "performance_diagram.png", {name: m["performance"] for name, m in
                                                                   models.items()}, task.thresholds, unit="mm/h")
    first = next(iter(models.values()))["rapsd"]
    spectra = {"observations": (first["frequencies"], first["observations"]),
               **{name: (m["rapsd"]["frequencies"], m["rapsd"]["forecast"]) for name, m in models.items()}}
    plot_rapsd(folder / "rapsd.png", spectra, lead_labels=[f"{m} min" for m in results["lead_minutes"]])


@torch.no_grad()
def _pictures(folder: Path, forecasts: dict[str, Forecast], batches: list, task: TaskSpec, step_minutes: int) -> None:
    """forecast.png and forecast.gif of the rainiest test window."""
    from sfp.report.pictures import colour_scale, forecast_gif, forecast_png, minutes, rainiest_window

    one = rainiest_window(batches)
    preds = {name: forecast(one)[0, :, 0].numpy() for name, forecast in forecasts.items()}
    truth = one[3][0, :, 0].numpy()
    scale = colour_scale(task)
    forecast_png(folder / "forecast.png", truth, preds, scale, minutes(step_minutes))
    forecast_gif(folder / "forecast.gif", truth, preds, scale, minutes(step_minutes))
