"""How predictable the embedded ocean is: persistence and a damped persistence against the climatology on the
test years of ``ocean_sfp`` (10 days in, 10 out), by MSE per lead (°C²) and the heatwave scores.

Persistence holds the last context day; the damped one relaxes its anomaly from the climatology with the
generator's e-folding time (``OceanParams.anomaly_memory``); the climatology forecast is the training years'
seasonal mean, which has no heatwave. A last row counts how many of the truth's strong-core days in the forecast
windows belong to heatwaves with no heatwave day in the context: cores no forecaster can see coming.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from sfp.data.ocean import OceanParams
from sfp.metrics.heatwave_scores import classify
from sfp.models.baselines import persistence
from sfp.pipeline_config import load_config
from sfp.report.evaluation import evaluate_forecasts
from sfp.run_spec import RunSpec

CONFIG = Path(__file__).resolve().parents[1] / "src" / "sfp" / "configs" / "ocean_sfp.yaml"


def run() -> list[dict]:
    data = RunSpec.of(load_config(["--config", str(CONFIG)])).data.build()
    data.setup("test")
    windows, context_len, target_len = data.heatwave_windows, data.context, data.target
    memory = OceanParams().anomaly_memory

    def climatology(batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return windows(batch)[1][:, context_len:]

    def damped(batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        context, seas = windows(batch)[:2]
        anomaly = context[:, -1:] - seas[:, context_len - 1:context_len]
        decay = torch.exp(-torch.arange(1, target_len + 1, dtype=context.dtype) / memory).view(1, -1, 1, 1, 1)
        return seas[:, context_len:] + anomaly * decay

    forecasts = {"persistence": lambda batch: persistence(batch[1], target_len), "damped persistence": damped,
                 "climatology": climatology}
    results = evaluate_forecasts(forecasts, data.test_dataloader(), data.task, target_len, windows)
    rows = []
    for name, values in results.items():
        for lead in (1, 5, 10):
            rows.append({"name": f"ocean test MSE at lead {lead} d, {name}", "value": values[f"mse_t{lead}"],
                         "unit": "degC^2"})
        for metric in ("mhw_csi", "strong_core_csi"):
            value = values[metric]
            rows.append({"name": f"ocean test {metric}, {name}", "value": 0.0 if math.isnan(value) else value,
                         "unit": "", "note": "no heatwave forecast" if math.isnan(value) else ""})
    rows.append({"name": "ocean test strong-core days of heatwaves unseen in the context",
                 "value": _unseen_core_fraction(data), "unit": "fraction"})
    return rows


def _unseen_core_fraction(data) -> float:
    unseen = total = 0
    for batch in data.test_dataloader():
        context, seas, thresh, _ = data.heatwave_windows(batch)
        found = classify(context, batch[3], seas, thresh)
        cores = found.category >= 2
        seen = classify(context[:, :0], context, seas[:, :data.context], thresh[:, :data.context]).event.any(1)
        unseen += int((cores & ~seen[:, None]).sum())
        total += int(cores.sum())
    return unseen / max(total, 1)
