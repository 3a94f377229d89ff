"""Hand-made table cells, and a tiny table config whose results and runs lie under a test's folder."""

import json
from pathlib import Path

import yaml

from pipeline_helpers import write_config
from sfp.table.spec import Cell

HEADLINES = {"storms": "csi_m", "navier_stokes": "tke_error"}
TINY_BACKBONES = {"simvp": {"hidden_spatial": 4, "hidden_temporal": 8, "spatial_layers": 2, "temporal_blocks": 1},
                  "unet": {"width": 4, "depth": 1}}


def make_cell(dataset, backbone, seed, sfp, steps, time, mse=(1.0, 1.0), surrogate=None, settings="s"):
    """A cell's JSON content: SFP's and the baselines' headline metric (the surrogate's is ``steps`` unless
    given), MSE as ``(baseline_steps, sfp)``."""
    headline = HEADLINES[dataset.split("/")[0]]
    return {"dataset": dataset, "backbone": backbone, "seed": seed, "seconds": {"sfp": 10.0}, "settings": settings,
            "models": {"sfp": {headline: sfp, "mse": mse[1]}, "baseline_steps": {headline: steps, "mse": mse[0]},
                       "baseline_time": {headline: time},
                       "surrogate": {headline: steps if surrogate is None else surrogate}}}


def write_cells(folder: Path, *cells: dict) -> None:
    """Each cell as ``folder/<its name>.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    for cell in cells:
        (folder / f"{Cell(cell['dataset'], cell['backbone'], cell['seed']).name}.json").write_text(json.dumps(cell))


def tiny_table(folder: Path, **changes) -> Path:
    """A table config (``folder/table.yaml``): storms with a tiny pipeline, SimVP and U-Net, seed 0, results in
    ``folder/results``; top-level keys replaced by ``changes``."""
    pipeline = write_config(folder / "tiny.yaml", folder / "unused")
    config = {"name": "tiny", "results": str(folder / "results"), "runs": str(folder / "runs"),
              "backbones": TINY_BACKBONES, "datasets": {"storms": {"pipeline": str(pipeline)}}, **changes}
    path = folder / "table.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
