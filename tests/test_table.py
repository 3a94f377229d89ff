"""`sfp table`: cells computed once into JSON (recomputed when their settings change), and the table rebuilt from
those files alone, with relative changes and means over seeds and backbones checked by hand."""

import json

import pytest
import yaml

from pipeline_helpers import write_config
from sfp.cli.main import main
from sfp.forecasting import GridForecaster
from sfp.pipeline import STAGE_VERSIONS
from sfp.table.render import render, summarize
from sfp.table.spec import Cell, load_table


def _cell(dataset, backbone, seed, sfp, steps, time, mse=(1.0, 1.0)):
    headline = {"storms": "csi_m", "navier_stokes": "tke_error"}[dataset]
    return {"dataset": dataset, "backbone": backbone, "seed": seed, "seconds": {"sfp": 10.0}, "settings": "s",
            "models": {"sfp": {headline: sfp, "mse": mse[1]}, "baseline_steps": {headline: steps, "mse": mse[0]},
                       "baseline_time": {headline: time}}}


def test_summary_averages_seeds_then_backbones():
    cells = [_cell("storms", "simvp", 0, 0.30, 0.20, 0.25, mse=(0.010, 0.011)),  # +50%, +20%; MSE +10%
             _cell("storms", "simvp", 1, 0.22, 0.20, 0.20, mse=(0.010, 0.010)),  # +10%, +10%; MSE 0
             _cell("storms", "unet", 0, 0.20, 0.25, 0.20, mse=(0.020, 0.019)),  # -20%, 0; MSE -5%
             _cell("navier_stokes", "fno", 0, 0.3, 0.5, 0.4)]  # -40%, -25%
    summary = summarize(cells)
    storms = summary["storms"]
    assert storms["backbones"] == ["simvp", "unet"] and storms["headline"] == "csi_m"
    assert storms["sfp_vs_baseline_steps"] == pytest.approx(((0.5 + 0.1) / 2 - 0.2) / 2)
    assert storms["sfp_vs_baseline_time"] == pytest.approx(((0.2 + 0.1) / 2 + 0.0) / 2)
    assert storms["mse_vs_baseline_steps"] == pytest.approx(((0.1 + 0.0) / 2 - 0.05) / 2)
    assert storms["sfp_vs_surrogate"] is None  # no surrogate in these cells
    assert summary["navier_stokes"]["sfp_vs_baseline_steps"] == pytest.approx(-0.4)


def test_render_keeps_only_cells_with_the_current_settings(tmp_path):
    cells = tmp_path / "t" / "cells"
    cells.mkdir(parents=True)
    for cell, settings in ((_cell("storms", "simvp", 0, 0.3, 0.2, 0.25), "now"),
                           (_cell("storms", "unet", 0, 0.1, 0.2, 0.2), "before")):
        (cells / f"storms-{cell['backbone']}-s0.json").write_text(json.dumps({**cell, "settings": settings}))
    table = render(tmp_path, "t", {"storms-simvp-s0": "now", "storms-unet-s0": "now"})
    assert [cell["backbone"] for cell in table["cells"]] == ["simvp"]
    assert table["summary"]["storms"]["sfp_vs_baseline_steps"] == pytest.approx(0.5)
    assert json.loads((tmp_path / "t.json").read_text()) == table
    assert "| storms | csi_m | +50.0% | +20.0% | n/a |" in (tmp_path / "t.md").read_text()
    assert (tmp_path / "t.png").stat().st_size > 0


def test_shipped_table_has_every_dataset_and_backbone():
    table = load_table("table1")
    assert set(table.datasets) == {"storms", "navier_stokes", "flame"}
    assert {"simvp", "convlstm", "fno"} <= set(table.backbones) and {"unet", "resnet"} & set(table.backbones)
    assert Cell("storms", "simvp", 1) in table.cells() and Cell("flame", "fno", 0) in table.cells()


@pytest.mark.slow
def test_a_tiny_table_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pipeline = write_config(tmp_path / "tiny.yaml", tmp_path / "unused")
    config = tmp_path / "table.yaml"
    config.write_text(yaml.safe_dump({
        "name": "tiny", "results": str(tmp_path / "results"), "runs": str(tmp_path / "runs"),
        "backbones": {"simvp": {"hidden_spatial": 4, "hidden_temporal": 8, "spatial_layers": 2,
                                "temporal_blocks": 1}},
        "datasets": {"storms": {"pipeline": str(pipeline), "overrides": ["--agent_patience", "2",
                                                                        "--surrogate_weights", "[1.0]"]}}}))
    assert main(["table", "--config", str(config)]) == 0
    cell = json.loads((tmp_path / "results" / "tiny" / "cells" / "storms-simvp-s0.json").read_text())
    assert set(cell["models"]) == {"persistence", "agent", "baseline_steps", "baseline_time", "surrogate", "sfp"}
    changes = cell["surrogate"]["val_mse_change"]  # w1, and more weights where it missed SFP's MSE change
    gap = {name: abs(change - changes["sfp"]) for name, change in changes.items() if name.startswith("w")}
    assert {"baseline", "sfp", "w1"} <= set(changes) and gap[f"w{cell['surrogate']['weight']:g}"] == min(gap.values())
    assert cell["steps"]["baseline"] == cell["steps"]["sfp"] == 2 and cell["steps"]["baseline_time"] >= 1
    agent = GridForecaster.load_from_checkpoint(
        tmp_path / "runs" / "storms" / "storms-simvp-s0" / "agent" / "checkpoints" / "best.ckpt")
    assert cell["parameters"] == sum(parameter.numel() for parameter in agent.parameters())  # the trained agent's size
    table = json.loads((tmp_path / "results" / "tiny.json").read_text())
    assert table["summary"]["storms"]["backbones"] == ["simvp"]
    assert table["summary"]["storms"]["sfp_vs_surrogate"] is not None
    assert set(cell["per_lead"]) == {"persistence", "baseline_steps", "surrogate", "sfp"}
    assert len(cell["per_lead"]["sfp"]["csi_per_lead"]["16"]) == 3  # the tiny config's target length
    assert (tmp_path / "results" / "tiny" / "leads" / "storms-simvp-s0.png").is_file()
    assert (tmp_path / "runs" / "storms" / "world_model" / "world_model" / "checkpoints" / "best.ckpt").is_file()
    assert main(["table", "--config", str(config), "--render"]) == 0  # from the JSON alone
    assert main(["table", "--config", str(config), "--cell", "storms/fno/0"]) == 2  # not a cell of this table
    monkeypatch.setitem(STAGE_VERSIONS, "evaluate", STAGE_VERSIONS["evaluate"] + 1)  # scoring changed
    assert main(["table", "--config", str(config)]) == 0
    again = json.loads((tmp_path / "results" / "tiny" / "cells" / "storms-simvp-s0.json").read_text())
    assert again["settings"] != cell["settings"]  # re-evaluated ...
    assert again["seconds"]["agent"] == cell["seconds"]["agent"]  # ... without training again


def test_the_table_says_whether_each_agent_beats_persistence_and_how_it_was_trained(tmp_path):
    from sfp.table.render import markdown

    better = _cell("storms", "simvp", 0, 0.3, 0.2, 0.25)
    better["models"].update(agent={"csi_m": 0.25, "mse": 0.010}, persistence={"csi_m": 0.20, "mse": 0.012})
    worse = _cell("navier_stokes", "fno", 0, 0.3, 0.5, 0.4)  # tke_error: lower is better
    worse["models"].update(agent={"tke_error": 0.6, "mse": 0.5}, persistence={"tke_error": 0.5, "mse": 0.6})
    better.update(parameters=1234567, steps={"agent": 2050}, seconds={"agent": 1208.7, "sfp": 10.0})
    lines = markdown([better, worse], summarize([better, worse])).splitlines()
    rows = [line for line in lines if "/s0 | " in line and line.count(" | ") > 5]
    assert [row.split(" | ")[-2] for row in rows] == ["yes", "yes", "**no**", "yes"]
    # each agent's size and training, "n/a" where a cell does not record them
    assert "| storms/simvp/s0 | 1,234,567 | 2,050 | 1,209 |" in lines
    assert "| navier_stokes/fno/s0 | n/a | n/a | n/a |" in lines


def test_the_table_gives_the_spread_over_seeds(tmp_path):
    from sfp.table.render import seed_spread

    cells = [_cell("storms", "simvp", 1, 0.22, 0.20, 0.20, mse=(0.010, 0.010)),  # +10%, 0; MSE 0
             _cell("storms", "simvp", 0, 0.30, 0.20, 0.25, mse=(0.010, 0.011)),  # +50%, +20%; MSE +10%
             _cell("storms", "unet", 0, 0.20, 0.25, 0.20)]  # one seed: no spread
    spread = seed_spread(cells)
    assert list(spread) == ["storms/simvp"] and spread["storms/simvp"]["seeds"] == [0, 1]
    steps = spread["storms/simvp"]["sfp_vs_baseline_steps"]
    assert steps["values"] == pytest.approx([0.5, 0.1])
    assert steps["mean"] == pytest.approx(0.3)
    assert steps["std"] == pytest.approx(0.4 / 2**0.5)  # sample std of two values: |a - b| / sqrt(2)
    assert spread["storms/simvp"]["sfp_vs_surrogate"]["std"] is None  # no surrogate in these cells

    folder = tmp_path / "t" / "cells"
    folder.mkdir(parents=True)
    for cell in cells:
        (folder / f"{Cell(cell['dataset'], cell['backbone'], cell['seed']).name}.json").write_text(json.dumps(cell))
    table = render(tmp_path, "t")
    assert table["seeds"] == json.loads(json.dumps(spread))
    assert "| storms/simvp | 0, 1 | +30.0% ± 28.3% (+50.0%, +10.0%) |" in (tmp_path / "t.md").read_text()
