"""Every radar event tested: leave one event out, train the agent on the others, score it beside pysteps' references.

For each event of a prepared radar file (``sfp data prepare radar``), in the file's order: the event is the test
split, the next event (cyclically) the validation split, the rest train the agent of a pipeline config (its ``agent``
stage, in ``<runs>/<event>``; finished folds are reused). The fold is scored by :func:`sfp.report.radar.run` (the
references on the whole composite cut to the tiles, the agent's tiles blended over the whole composite) into
``<out>/events/<event>/`` and summarised in ``<out>/events/<event>.json`` as soon as it exists, so an interrupted run
resumes at the first missing fold.

One aggregation everywhere, as the SEVIR protocol does: contingency counts pooled over windows (and, pooled, over
events), CSI from the pooled counts. Intervals: paired bootstrap over forecast start times (the tiles of one start
share their weather), from each window's counts (:func:`sfp.metrics.bootstrap.paired_bootstrap`). ``heldout.json``:
``{"events": {event: {model: {"csi_m", "csi", "mse"}}}, "summary": {...}}``, relative changes as fractions; the
summary's ``per_lead`` (CSI-M and CSI at 5 mm/h per lead time, counts pooled over events, drawn in ``csi_lead.png``)
where every fold kept its per-lead counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sfp.errors import UserError
from sfp.metrics.bootstrap import csi_m_of_counts, paired_bootstrap
from sfp.task import RADAR

REFERENCES = ("extrapolation_full", "sprog_full")  # the deterministic pysteps nowcasts on the whole composite
AGENT = "agent_full"
CSI5 = RADAR.thresholds.index(5.0)  # where 5 mm/h lies among the radar task's thresholds


def folds(events: Sequence[str], chosen: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """``(test event, validation event)`` per fold: each event (or each of ``chosen``) tested, the next validates."""
    events = list(events)
    if len(events) < 3:
        raise UserError(f"leaving one event out needs 3 events or more (train, validation, test); got {len(events)}")
    unknown = [event for event in chosen or () if event not in events]
    if unknown:
        raise UserError(f"unknown radar event {unknown[0]!r}; the file holds: {', '.join(events)}")
    return [(event, events[(i + 1) % len(events)]) for i, event in enumerate(events)
            if not chosen or event in chosen]


def slug(event: str) -> str:
    """A file name for ``event`` (``fmi/20170509`` -> ``fmi-20170509``)."""
    return event.replace("/", "-")


def train_agent(config: str, data: str, runs: Path, test: str, val: str) -> str:
    """The agent of ``config`` trained without ``test`` (``val`` validating), in ``runs/<test>``: its checkpoint."""
    from sfp.pipeline import Pipeline
    from sfp.pipeline_config import load_layers

    spec = load_layers(config, {"run_dir": str(runs / slug(test)), "until": "agent",
                                "data": {"init_args": {"path": data, "val_events": [val], "test_events": [test]}}})
    pipeline = Pipeline(spec)
    pipeline.run("agent", needed_only=True)  # no world model: the fold scores the agent alone
    return pipeline.checkpoint("agent")


def event_record(results: dict[str, Any], val: str) -> dict[str, Any]:
    """What a fold keeps of its report: per model CSI-M, CSI per threshold, MSE, its windows' counts and its
    counts per lead time, and the windows' start times and the lead times."""
    return {"test_events": results["test_events"], "val_events": [val], "window_starts": results["window_starts"],
            "lead_minutes": results["lead_minutes"],
            "models": {name: {key: model[key] for key in ("csi_m", "csi", "mse", "window_counts", "lead_counts")}
                       for name, model in results["models"].items()}}


def run_folds(data: str, out: str, composites: str, runs: str, config: str = "radar_sfp",
              events: Sequence[str] | None = None, members: int = 16,
              score: Callable[..., dict[str, Any]] | None = None) -> dict[str, Any]:
    """Each fold not yet in ``<out>/events``: train, score, record; then the summary (``heldout.json``, ``.md``)."""
    from sfp.data.radar.dataset import load
    from sfp.report.radar import run as radar_report

    score = score or radar_report
    names = [str(name) for name in load(data)["events"]]
    folder = Path(out) / "events"
    folder.mkdir(parents=True, exist_ok=True)
    for test, val in folds(names, events):
        record = folder / f"{slug(test)}.json"
        if record.is_file():
            print(f"[{test}] done before, reused")
            continue
        checkpoint = train_agent(config, data, Path(runs), test, val)
        results = score(data, str(folder / slug(test)), {"agent": checkpoint}, composites=composites,
                        members=members, events={"val_events": [val], "test_events": [test]})
        record.write_text(json.dumps(event_record(results, val)))
        print(f"[{test}] scored: {record}")
    return summarize(Path(out))


def _per_start(record: dict[str, Any], model: str) -> np.ndarray:
    """A model's window counts summed per forecast start ``(S, K, 3)``, starts in sorted order."""
    starts = [tuple(start) for start in record["window_starts"]]
    counts = np.asarray(record["models"][model]["window_counts"], dtype=np.float64)
    return np.stack([counts[[i for i, s in enumerate(starts) if s == start]].sum(0) for start in sorted(set(starts))])


def summarize(out: Path) -> dict[str, Any]:
    """Per event and pooled over events: CSI-M (pooled counts), CSI at 5 mm/h, the best reference and the agent's
    change against it with its bootstrap interval over start times; written to ``heldout.json`` and ``.md``."""
    records = {record["test_events"][0]: record
               for record in (json.loads(path.read_text()) for path in sorted((out / "events").glob("*.json")))}
    if not records:
        raise UserError(f"{out / 'events'}: no scored fold yet")
    models = sorted(set.intersection(*(set(record["models"]) for record in records.values())))
    pooled = {model: np.concatenate([_per_start(record, model) for record in records.values()]) for model in models}
    csi_m = {model: float(csi_m_of_counts(counts.sum(0))) for model, counts in pooled.items()}
    csi5 = {model: float(csi_m_of_counts(counts.sum(0)[[CSI5]])) for model, counts in pooled.items()}
    summary: dict[str, Any] = {"events": sorted(records), "csi_m": csi_m, "csi5": csi5}
    references = [name for name in REFERENCES if name in pooled]
    if references and AGENT in pooled:
        best = max(references, key=lambda name: csi_m[name])
        change = paired_bootstrap(pooled[AGENT], pooled[best], csi_m_of_counts)
        summary.update(best_reference=best, agent_vs_best_reference=change.change,
                       agent_vs_best_reference_ci95=[change.low, change.high],
                       csi5_vs_best_reference=(csi5[AGENT] - csi5[best]) / abs(csi5[best]))
    if all("lead_counts" in record["models"][model] for record in records.values() for model in models):
        summary["lead_minutes"] = next(iter(records.values()))["lead_minutes"]
        summary["per_lead"] = per_lead(records, models)
        plot_per_lead(out / "csi_lead.png", summary)
    events = {event: {model: {key: record["models"][model][key] for key in ("csi_m", "csi", "mse")}
                      for model in models} for event, record in records.items()}
    result = {"events": events, "summary": summary}
    (out / "heldout.json").write_text(json.dumps(result, indent=1))
    (out / "heldout.md").write_text(markdown(result))
    return result


def per_lead(records: dict[str, dict[str, Any]], models: Sequence[str]) -> dict[str, dict[str, list[float]]]:
    """Per model, CSI-M and CSI at 5 mm/h per lead time from the folds' per-lead counts pooled over events."""
    found = {}
    for model in models:
        counts = sum(np.asarray(record["models"][model]["lead_counts"], np.float64) for record in records.values())
        found[model] = {"csi_m": csi_m_of_counts(counts).tolist(), "csi5": csi_m_of_counts(counts[:, [CSI5]]).tolist()}
    return found


def plot_per_lead(path: Path, summary: dict[str, Any]) -> Path:
    """Pooled CSI-M and CSI at 5 mm/h against lead time, one line per model."""
    from sfp.report.figures import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), sharex=True)
    for axis, (key, title) in zip(axes, (("csi_m", "CSI-M"), ("csi5", "CSI >= 5 mm/h"))):
        for model, curves in sorted(summary["per_lead"].items()):
            axis.plot(summary["lead_minutes"], curves[key], marker="o", label=model)
        axis.set_title(f"{title}, pooled over {len(summary['events'])} held-out events", fontsize=9)
        axis.set_xlabel("lead time (min)")
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)


def markdown(result: dict[str, Any]) -> str:
    """CSI-M per held-out event and pooled, one column per model; the summary line under it."""
    summary = result["summary"]
    models = sorted(summary["csi_m"])
    lines = ["| event | " + " | ".join(models) + " |", "|" + "---|" * (len(models) + 1)]
    for event, scores in result["events"].items():
        lines.append(f"| {event} | " + " | ".join(f"{scores[m]['csi_m']:.3f}" for m in models) + " |")
    lines.append("| pooled | " + " | ".join(f"{summary['csi_m'][m]:.3f}" for m in models) + " |")
    if "best_reference" in summary:
        low, high = summary["agent_vs_best_reference_ci95"]
        lines += ["", f"{AGENT} vs {summary['best_reference']} (pooled CSI-M): "
                      f"{summary['agent_vs_best_reference']:+.1%} [{low:+.1%}, {high:+.1%}] (95 % bootstrap over "
                      f"forecast starts); CSI at 5 mm/h {summary['csi5_vs_best_reference']:+.1%}"]
    if "per_lead" in summary:
        minutes = summary["lead_minutes"]
        lines += ["", "Pooled CSI-M per lead time:", "",
                  "| model | " + " | ".join(f"{m} min" for m in minutes) + " |", "|" + "---|" * (len(minutes) + 1)]
        lines += [f"| {m} | " + " | ".join(f"{v:.3f}" for v in summary["per_lead"][m]["csi_m"]) + " |"
                  for m in models]
    return "\n".join(lines) + "\n"
