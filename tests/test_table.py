"""`sfp table`: cells computed once into JSON (recomputed when their settings change), and the table rebuilt from
those files alone, with relative changes and means over seeds and backbones checked by hand."""

import dataclasses
import json

import pytest

from sfp import stage_graph
from sfp.cli.main import main
from sfp.forecasting import GridForecaster
from sfp.table.render import render, summarize
from sfp.table.spec import Cell, load_table
from table_helpers import TINY_BACKBONES, tiny_table, write_cells
from table_helpers import make_cell as _cell


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
    assert storms["sfp_vs_surrogate"] == pytest.approx(storms["sfp_vs_baseline_steps"])  # surrogate = steps here
    assert (storms["averaged_cells"], storms["table_cells"], storms["missing"]) == (3, 3, [])
    assert summary["navier_stokes"]["sfp_vs_baseline_steps"] == pytest.approx(-0.4)


def test_a_row_judged_on_another_metric_is_summarized_on_it():
    from sfp.table.render import _beats, markdown

    cells = []
    for seed, (sfp, steps) in enumerate(((0.5, 0.4), (0.3, 0.3))):  # object CSI: +25 %, 0
        cell = _cell("storms", "unet", seed, 0.2, 0.3, 0.3)  # csi_m: SFP worse, not what the row is judged on
        cell["metric"] = "object_csi_m"
        for model, value in (("sfp", sfp), ("baseline_steps", steps), ("baseline_time", steps), ("surrogate", steps)):
            cell["models"][model]["object_csi_m"] = value
        cells.append(cell)
    cells[0]["models"]["agent"] = {"object_location_error_m": 3.0, "mse": 1.0}
    cells[0]["models"]["persistence"] = {"object_location_error_m": 2.0, "mse": 2.0}
    storms = summarize(cells)["storms"]
    assert storms["headline"] == "object_csi_m" and storms["sfp_vs_baseline_steps"] == pytest.approx(0.125)
    lines = markdown(cells, summarize(cells)).splitlines()
    assert any(line.startswith("| storms/unet/s0 | object_csi_m | ") for line in lines)
    assert _beats(cells[0], "object_location_error_m") == "**no**"  # an error: lower is better


def test_rows_of_one_dataset_judged_on_different_rewards(tmp_path):
    from sfp.table.cells import cell_config, cell_path

    judged = {"evaluation": {"metric": "object_csi_m", "extras": {"objects": {"radius": 4}}}}
    config = tiny_table(tmp_path, datasets={
        "storms": {"pipeline": str(tmp_path / "tiny.yaml")},
        "storms/object": {"pipeline": str(tmp_path / "tiny.yaml"), "dataset": "storms", "settings": judged}})
    table = load_table(config)
    assert table.datasets["storms"].dataset == table.datasets["storms/object"].dataset == "storms"
    cell = Cell.parse("storms/object/unet/0")
    assert cell == Cell("storms/object", "unet", 0) and cell in table.cells()
    assert Cell.parse("storms/object/unet/0/0.5") == Cell("storms/object", "unet", 0, 0.5)
    assert Cell.parse("storms/unet/0/0.5") == Cell("storms", "unet", 0, 0.5)
    assert cell_path(table, cell).name == "storms.object-unet-s0.json"
    assert cell_config(table, cell)["evaluation"]["metric"] == "object_csi_m"
    assert cell_config(table, Cell("storms", "unet", 0))["evaluation"]["metric"] is None
    row = _cell("storms/object", "unet", 0, 0.3, 0.2, 0.2)  # a cell of the row: its data is storms
    row["task"], row["metric"] = "storms", "object_csi_m"
    for model in row["models"].values():
        model["object_csi_m"] = model.pop("csi_m")
    write_cells(tmp_path / "results" / "tiny" / "cells", row)
    summary = render(tmp_path / "results", "tiny")["summary"]
    assert summary["storms/object"]["headline"] == "object_csi_m"
    assert summary["storms/object"]["sfp_vs_baseline_steps"] == pytest.approx(0.5)


def test_render_keeps_only_cells_with_the_current_settings(tmp_path):
    cells = tmp_path / "t" / "cells"
    cells.mkdir(parents=True)
    for cell in (_cell("storms", "simvp", 0, 0.3, 0.2, 0.25), _cell("storms", "unet", 0, 0.1, 0.2, 0.2)):
        (cells / f"storms-{cell['backbone']}-s0.json").write_text(json.dumps(cell))
    reason = "stale: computed with other settings"
    table = render(tmp_path, "t", {Cell("storms", "simvp", 0): None, Cell("storms", "unet", 0): reason})
    assert [cell["backbone"] for cell in table["cells"]] == ["simvp"]
    storms = table["summary"]["storms"]
    assert storms["sfp_vs_baseline_steps"] == pytest.approx(0.5) and storms["backbones"] == ["simvp"]
    assert storms["missing"] == [{"cell": "storms/unet/s0", "reason": reason}]
    assert json.loads((tmp_path / "t.json").read_text()) == table
    text = (tmp_path / "t.md").read_text()
    assert "| storms | csi_m ↑ | +50.0% | +20.0% | +50.0% | +50.0% (surrogate) | +0.0% | simvp | 1 of 2 |" in text
    assert "- storms/unet/s0: stale: computed with other settings" in text
    assert (tmp_path / "t.png").stat().st_size > 0


def test_shipped_table_has_every_dataset_and_backbone():
    table = load_table("table1")
    assert set(table.datasets) == {"storms", "navier_stokes", "flame"}
    assert {"simvp", "convlstm", "fno"} <= set(table.backbones) and {"unet", "resnet"} & set(table.backbones)
    assert Cell("storms", "simvp", 1) in table.cells() and Cell("flame", "fno", 0) in table.cells()


def test_shipped_ocean_table_has_two_backbones():
    table = load_table("ocean_table")
    assert table.name == "ocean" and set(table.datasets) == {"ocean"} and len(table.backbones) >= 2
    assert table.datasets["ocean"].pipeline == "ocean_sfp"


@pytest.mark.slow
def test_a_tiny_table_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = {"agent_patience": 2, "surrogate_weights": [1.0], "equal_time_budget": "step_cost"}
    judged = {**settings, "evaluation": {"metric": "object_csi_m", "extras": {"objects": {"radius": 4}}}}
    config = tiny_table(tmp_path, backbones={"simvp": TINY_BACKBONES["simvp"]},
                        datasets={"storms": {"pipeline": str(tmp_path / "tiny.yaml"), "settings": settings},
                                  "storms/object": {"pipeline": str(tmp_path / "tiny.yaml"), "settings": judged,
                                                    "dataset": "storms"}})
    assert main(["table", "--config", str(config)]) == 0
    objects = json.loads((tmp_path / "results" / "tiny" / "cells" / "storms.object-simvp-s0.json").read_text())
    assert objects["task"] == "storms" and objects["metric"] == "object_csi_m"
    assert "object_csi_m" in objects["models"]["sfp"] and "object_csi_m" in objects["models"]["baseline_steps"]
    shared = json.loads((tmp_path / "runs" / "storms" / "agent-simvp-s0" / "manifest.json").read_text())["stages"]
    assert shared["agent"]["status"] == "done"  # one agent for both rows, trained once:
    cell = json.loads((tmp_path / "results" / "tiny" / "cells" / "storms-simvp-s0.json").read_text())
    assert cell["seconds"]["agent"] == objects["seconds"]["agent"] == shared["agent"]["seconds"]
    assert set(cell["models"]) == {"persistence", "agent", "baseline_steps", "baseline_time", "surrogate", "sfp"}
    changes = cell["surrogate"]["val_mse_change"]  # w1, and more weights where it missed SFP's MSE change
    gap = {name: abs(change - changes["sfp"]) for name, change in changes.items() if name.startswith("w")}
    assert {"baseline_steps", "sfp", "w1"} <= set(changes)
    assert gap[f"w{cell['surrogate']['weight']:g}"] == min(gap.values())
    assert cell["steps"]["baseline_steps"] == cell["steps"]["sfp"] == 2
    assert cell["step_cost"] > 1 and cell["steps"]["baseline_time"] == round(2 * cell["step_cost"])  # SFP plans
    agent = GridForecaster.load_from_checkpoint(
        tmp_path / "runs" / "storms" / "agent-simvp-s0" / "agent" / "checkpoints" / "best.ckpt")
    assert cell["parameters"] == sum(parameter.numel() for parameter in agent.parameters())  # the trained agent's size
    table = json.loads((tmp_path / "results" / "tiny.json").read_text())
    assert table["summary"]["storms"]["backbones"] == ["simvp"]
    assert table["summary"]["storms"]["sfp_vs_surrogate"] is not None
    windows = cell["per_window"]  # the states behind the intervals, one row per test window, its sequence beside it
    assert len(windows["sequence"]) == len(windows["models"]["sfp"]) == len(windows["models"]["baseline_steps"])
    low, high = table["summary"]["storms"]["ci95"]["sfp_vs_baseline_steps"]
    assert low <= high and isinstance(table["summary"]["storms"]["significant"]["sfp_vs_baseline_steps"], bool)
    assert set(cell["per_lead"]) == {"persistence", "baseline_steps", "surrogate", "sfp"}
    assert len(cell["per_lead"]["sfp"]["csi_per_lead"]["16"]) == 3  # the tiny config's target length
    assert (tmp_path / "results" / "tiny" / "leads" / "storms-simvp-s0.png").is_file()
    assert (tmp_path / "runs" / "storms" / "world_model" / "world_model" / "checkpoints" / "best.ckpt").is_file()
    assert main(["table", "--config", str(config), "--render"]) == 0  # from the JSON alone
    assert main(["table", "--config", str(config), "--cell", "storms/fno/0"]) == 2  # not a cell of this table
    monkeypatch.setattr(stage_graph, "GRAPH", tuple(  # scoring changed
        dataclasses.replace(stage, code=stage.code + 1) if stage.name == "evaluate" else stage
        for stage in stage_graph.GRAPH))
    assert main(["table", "--config", str(config)]) == 0
    again = json.loads((tmp_path / "results" / "tiny" / "cells" / "storms-simvp-s0.json").read_text())
    assert again["code"]["stages"]["evaluate"] == cell["code"]["stages"]["evaluate"] + 1  # re-evaluated ...
    assert again["seconds"]["agent"] == cell["seconds"]["agent"]  # ... without training again


def test_the_table_says_whether_each_agent_beats_persistence_and_how_it_was_trained(tmp_path):
    from sfp.table.render import markdown

    better = _cell("storms", "simvp", 0, 0.3, 0.2, 0.25)
    better["models"].update(agent={"csi_m": 0.25, "mse": 0.010}, persistence={"csi_m": 0.20, "mse": 0.012})
    worse = _cell("navier_stokes", "fno", 0, 0.3, 0.5, 0.4)  # tke_error: lower is better
    worse["models"].update(agent={"tke_error": 0.6, "mse": 0.5}, persistence={"tke_error": 0.5, "mse": 0.6})
    better.update(parameters=1234567, steps={"agent": 2050}, seconds={"agent": 1208.7, "sfp": 10.0})
    lines = markdown([better, worse], summarize([better, worse])).splitlines()
    rows = [line for line in lines if "/s0 | " in line and line.split(" | ")[1] in ("csi_m", "tke_error", "mse")]
    assert [row.split(" | ")[-2] for row in rows] == ["yes", "yes", "**no**", "yes"]
    # each agent's size and training, "n/a" where a cell does not record them
    assert any(line.startswith("| storms/simvp/s0 | 1,234,567 | 2,050 | 1,209 |") for line in lines)
    assert any(line.startswith("| navier_stokes/fno/s0 | n/a | n/a | n/a |") for line in lines)


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
    assert spread["storms/simvp"]["sfp_vs_surrogate"]["std"] == pytest.approx(0.4 / 2**0.5)  # surrogate = steps

    folder = tmp_path / "t" / "cells"
    folder.mkdir(parents=True)
    for cell in cells:
        (folder / f"{Cell(cell['dataset'], cell['backbone'], cell['seed']).name}.json").write_text(json.dumps(cell))
    table = render(tmp_path, "t")
    assert table["seeds"] == json.loads(json.dumps(spread))
    assert "| storms/simvp | 0, 1 | +30.0% ± 28.3% (+50.0%, +10.0%) |" in (tmp_path / "t.md").read_text()


def test_a_nan_cell_is_left_out_of_the_means_marked_and_named(tmp_path):
    good = _cell("storms", "simvp", 0, 0.30, 0.20, 0.25, mse=(0.010, 0.011), surrogate=0.24)
    diverged = _cell("storms", "unet", 0, float("nan"), 0.20, 0.20)  # JSON NaN, as a diverged run writes it
    write_cells(tmp_path / "t" / "cells", good, diverged)
    table = render(tmp_path, "t")
    storms = table["summary"]["storms"]  # the good cell's own changes, by hand
    assert storms["sfp_vs_baseline_steps"] == pytest.approx((0.30 - 0.20) / 0.20)
    assert storms["sfp_vs_baseline_time"] == pytest.approx((0.30 - 0.25) / 0.25)
    assert storms["sfp_vs_surrogate"] == pytest.approx((0.30 - 0.24) / 0.24)
    assert storms["mse_vs_baseline_steps"] == pytest.approx((0.011 - 0.010) / 0.010)
    assert storms["backbones"] == ["simvp"] and (storms["averaged_cells"], storms["table_cells"]) == (1, 2)
    assert storms["missing"] == [{"cell": "storms/unet/s0", "reason": "NaN sfp csi_m"}]
    assert json.loads((tmp_path / "t.json").read_text())["summary"] == table["summary"]
    lines = (tmp_path / "t.md").read_text().splitlines()
    assert "| storms | csi_m ↑ | +50.0% | +20.0% | +25.0% | +25.0% (surrogate) | +10.0% | simvp | 1 of 2 |" in lines
    assert lines[lines.index("Left out of the means above:") + 1] == "- storms/unet/s0: NaN sfp csi_m"
    assert "| storms/unet/s0 (left out) | csi_m | n/a | n/a | 0.2 | 0.2 | 0.2 | nan | n/a | 10 |" in lines
    assert "| storms/simvp/s0 | csi_m | n/a | n/a | 0.2 | 0.25 | 0.24 | 0.3 | n/a | 10 |" in lines


def _with(cell, model, metric, value):
    cell["models"].setdefault(model, {})[metric] = value
    return cell


@pytest.mark.parametrize(("change", "hole"), [
    (lambda c: _with(c, "sfp", "csi_m", float("nan")), "NaN sfp csi_m"),
    (lambda c: _with(c, "baseline_time", "csi_m", float("inf")), "inf baseline_time csi_m"),
    (lambda c: _with(c, "sfp", "mse", float("-inf")), "-inf sfp mse"),
    (lambda c: c["models"].pop("surrogate") and c, "no surrogate csi_m"),
    (lambda c: _with(c, "baseline_steps", "mse", 0.0), "baseline_steps mse is 0"),
    (lambda c: _with(_with(c, "sfp", "csi_m", 1e300), "baseline_steps", "csi_m", 1e-10),
     "sfp_vs_baseline_steps out of range"),
    (lambda c: _with(c, "agent", "csi_m", float("nan")), None),  # not in the summary
])
def test_a_cell_with_a_hole_says_which(change, hole):
    from sfp.table.render import cell_hole

    assert cell_hole(change(_cell("storms", "simvp", 0, 0.3, 0.2, 0.25))) == hole


def test_sfp_table_names_each_cell_left_out_and_averages_the_others(tmp_path, capsys):
    """Through the command, with the cells' real run specs: one cell good, one NaN, one stale, one missing."""
    from sfp.table.cells import cell_code, cell_config, cell_spec

    config = tiny_table(tmp_path, extra_seeds={"storms/simvp": [0, 1, 2]})
    table = load_table(config)

    def stored(seed):
        return {"spec": cell_spec(cell_config(table, Cell("storms", "simvp", seed))), "code": cell_code()}

    stale = stored(2)
    stale["spec"]["sfp"]["lr"] = 0.5  # computed before a change
    write_cells(tmp_path / "results" / "tiny" / "cells",
                {**_cell("storms", "simvp", 0, 0.26, 0.20, 0.25), **stored(0)},
                {**_cell("storms", "simvp", 1, float("nan"), 0.20, 0.25), **stored(1)},
                {**_cell("storms", "simvp", 2, 0.40, 0.20, 0.25), **stale})
    assert main(["table", "--config", str(config), "--render"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    left_out = [line.partition("left out of the means: ")[2] for line in out.splitlines() if "left out" in line]
    assert left_out == ["storms/simvp/s1 (NaN sfp csi_m)", "storms/simvp/s2 (stale: sfp.lr: 0.5 -> 0.0003)",
                        "storms/unet/s0 (not computed)"]
    assert "storms csi_m +30.0% (1 of 4 cells)" in out  # (0.26 - 0.20) / 0.20, the one good cell's change
    storms = json.loads((tmp_path / "results" / "tiny.json").read_text())["summary"]["storms"]
    assert storms["sfp_vs_baseline_steps"] == pytest.approx(0.3) and storms["backbones"] == ["simvp"]
    assert [hole["cell"] for hole in storms["missing"]] == ["storms/simvp/s1", "storms/simvp/s2", "storms/unet/s0"]


def test_an_empty_table_renders(tmp_path, capsys):
    table = render(tmp_path, "t")
    assert table == {"cells": [], "summary": {}, "seeds": {}, "data_fraction": {}}
    assert (tmp_path / "t.md").read_text().startswith("| dataset | headline |") and not (tmp_path / "t.png").exists()
    config = tiny_table(tmp_path)
    assert main(["table", "--config", str(config), "--render"]) == 0
    assert "storms csi_m n/a" in capsys.readouterr().out
    storms = json.loads((tmp_path / "results" / "tiny.json").read_text())["summary"]["storms"]
    assert storms["backbones"] == [] and storms["sfp_vs_baseline_steps"] is None
    assert [hole["reason"] for hole in storms["missing"]] == ["not computed", "not computed"]


def test_the_summary_names_the_best_peer_and_can_be_keyed_by_the_headline(tmp_path):
    cells = [_cell("storms", "simvp", 0, 0.30, 0.20, 0.25, surrogate=0.24),  # SFP vs surrogate +25%
             _cell("storms", "unet", 0, 0.20, 0.25, 0.20, surrogate=0.25)]  # -20%
    storms = summarize(cells)["storms"]
    assert storms["best_peer"] == "surrogate" and storms["sfp_vs_best_peer"] == pytest.approx((0.25 - 0.2) / 2)
    write_cells(tmp_path / "t" / "cells", *cells)
    render(tmp_path, "t", summary_by="headline")
    keyed = json.loads((tmp_path / "t.json").read_text())["summary"]
    assert list(keyed) == ["csi_m"] and keyed["csi_m"]["dataset"] == "storms"
    assert keyed["csi_m"]["sfp_vs_best_peer"] == pytest.approx(storms["sfp_vs_best_peer"])


def test_the_best_peer_of_an_error_is_the_one_with_the_lowest_error():
    """TKE error (lower is better): SFP 0.30, surrogate 0.25 (SFP +20 %), FACL 0.40 (SFP -25 %): the surrogate is
    the strongest peer, and SFP's change against it the one the summary keeps."""
    cell = _cell("navier_stokes", "fno", 0, 0.30, 0.50, 0.45, surrogate=0.25)
    cell["models"]["facl"] = {"tke_error": 0.40}
    summary = summarize([cell])["navier_stokes"]
    assert summary["best_peer"] == "surrogate" and summary["sfp_vs_best_peer"] == pytest.approx(0.2)
    assert summary["higher_is_better"] is False


def test_a_cell_is_stale_when_code_it_ran_changed_not_when_a_stage_was_added_since(tmp_path):
    from sfp.table.cells import cell_code, cell_config, cell_spec, why_stale

    table = load_table(tiny_table(tmp_path))
    config = cell_config(table, Cell("storms", "simvp", 0))
    code = cell_code()
    done = {"spec": cell_spec(config), "code": code}
    assert why_stale(done, config) is None
    fewer = {**code, "stages": {k: v for k, v in code["stages"].items() if k != "facl"}}  # before FACL existed
    assert why_stale({**done, "code": fewer}, config) is None
    older = {**code, "stages": {**code["stages"], "evaluate": code["stages"]["evaluate"] - 1}}
    assert why_stale({**done, "code": older}, config) == (f"code: evaluate {code['stages']['evaluate'] - 1} -> "
                                                          f"{code['stages']['evaluate']}")
    assert why_stale({**done, "code": {**code, "sfp": "0.0.1"}}, config).startswith("code: sfp 0.0.1 -> ")


def test_a_cell_an_earlier_sfp_wrote_is_upgraded_once_and_reused(tmp_path):
    """A copy of a real cell written with a settings hash (Table 1's storms/simvp/0, before stored settings)."""
    from pathlib import Path

    from sfp.table.cells import cell_config, upgrade_cell, why_stale

    config = cell_config(load_table("table1"), Cell("storms", "simvp", 0))
    path = tmp_path / "storms-simvp-s0.json"
    path.write_text((Path(__file__).parent / "legacy_cell.json").read_text())
    assert why_stale(json.loads(path.read_text()), config) == "computed by an earlier sfp with other settings"
    assert upgrade_cell(path, config) and not upgrade_cell(path, config)  # once
    upgraded = json.loads(path.read_text())
    assert "settings" not in upgraded and "spec" in upgraded
    assert upgraded["code"]["stages"]["evaluate"] == 2 and why_stale(upgraded, config) is None  # the code it ran
    assert upgraded["models"] == json.loads((Path(__file__).parent / "legacy_cell.json").read_text())["models"]
    changed = cell_config(load_table("table1"), Cell("storms", "simvp", 1))  # another seed: another hash
    path.write_text((Path(__file__).parent / "legacy_cell.json").read_text())
    assert not upgrade_cell(path, changed)


def test_a_cell_stored_with_the_data_modules_flat_arguments_is_reused():
    """A copy of a real cell's stored spec (Table 1's storms/simvp/0) from before the data modules' option groups:
    its ``context``, ``batch_size``... are read where they live now, so the cell equals today's spec."""
    from pathlib import Path

    from sfp.table.cells import cell_config, why_stale

    stored = json.loads((Path(__file__).parent / "flat_data_cell.json").read_text())
    assert "context" in stored["spec"]["data"]["init_args"]  # the flat form
    config = cell_config(load_table("table1"), Cell("storms", "simvp", 0))
    assert config["data"]["init_args"]["windows"] == {"context": 10, "target": 10, "stride": 2}
    assert why_stale(stored, config) is None
    stored["spec"]["data"]["init_args"]["stride"] = 3  # a flat value that differs is a difference, named
    assert why_stale(stored, config) == "data.init_args.windows.stride: 3 -> 2"


def test_the_second_edition_of_table1_is_a_valid_table_of_converging_agents_and_every_peer():
    from sfp.table.cells import cell_config

    table = load_table("table1_second")
    cells = table.cells()
    assert len([cell for cell in cells if cell.fraction == 1]) == 4 * 3 + 3 * 2  # 3 seeds for one pair a dataset
    assert {cell.fraction for cell in cells} == {0.1, 0.25, 1.0}
    storms = cell_config(table, Cell("storms", "unet", 1))
    assert storms["agent_monitor"] == "mse" and storms["agent_patience"] == 10
    assert storms["balanced_mse_baseline"] and storms["facl_baseline"] and storms["qmap_baseline"]
    assert storms["equal_time_budget"] == "step_cost"
    flame = cell_config(table, Cell("flame", "unet", 0, 0.1))
    assert flame["data"]["init_args"]["train_fraction"] == 0.1 and not flame["balanced_mse_baseline"]
    assert flame["equal_time_budget"] == "step_cost"


def test_the_blackbox_table_judges_each_row_on_its_reward_with_the_rows_peers():
    from sfp.table.cells import agent_config, cell_config, world_model_config

    table = load_table("blackbox")
    assert {row.dataset for row in table.datasets.values()} == {"storms", "navier_stokes", "radar"}
    assert len(table.backbones) >= 2 and len(table.cells()) == len(table.datasets) * len(table.backbones)
    objects = cell_config(table, Cell("storms/object", "unet", 0))
    assert objects["sfp"]["reward"]["name"] == "object_csi" and objects["sfp"]["planner"]["kind"] == "best_of_k"
    assert objects["sfp"]["pseudo_labels"]["kind"] == "objects"
    assert objects["sfp"]["pseudo_labels"]["weight"] == 2.0  # the row's settings laid over storms_sfp's, key by key
    assert objects["evaluation"]["metric"] == "object_csi_m" and objects["equal_time_budget"] == "step_cost"
    assert objects["surrogate_loss"] == {"name": "soft_csi", "thresholds": [133, 181], "pool": 8}
    assert cell_config(table, Cell("storms/sal", "unet", 0))["surrogate_loss"] == {"name": "soft_sal"}
    unaided = cell_config(table, Cell("storms/object_perturbation", "unet", 0))
    assert unaided["sfp"]["planner"]["kind"] == "perturbation" and unaided["sfp"]["reward"] == objects["sfp"]["reward"]
    gauged = cell_config(table, Cell("storms/gauges", "fno", 0))
    assert gauged["sfp"]["gauges"] == 0.02 and gauged["evaluation"]["metric"] is None  # CSI-M on the full field
    rain_cells = cell_config(table, Cell("radar/object", "unet", 0))
    assert rain_cells["sfp"]["reward"] == {"name": "object_csi", "thresholds": [5, 10], "radius": 4}
    assert rain_cells["data"]["init_args"]["test_events"] == ["fmi/20170509", "mch/20160711"]  # held-out events
    vortices = cell_config(table, Cell("navier_stokes/vortices", "fno", 0))
    assert vortices["evaluation"]["metric"] == "vortex_csi" and not vortices["balanced_mse_baseline"]
    assert vortices["surrogate_loss"] == {"name": "soft_vortices", "pool": 4}
    # the storms rows share one world model and, per backbone and seed, one agent
    storms = [row for row in table.datasets if row.startswith("storms/")]
    assert {world_model_config(table, row)["run_dir"] for row in storms} == {"runs/blackbox/storms/world_model"}
    agents = [agent_config(table, Cell(row, "unet", 0)) for row in storms]
    assert {agent["run_dir"] for agent in agents} == {"runs/blackbox/storms/agent-unet-s0"}
    reads = ("agent", "agent_trainer", "agent_patience", "agent_monitor", "data", "seed_everything")
    assert all({key: agent[key] for key in reads} == {key: agents[0][key] for key in reads} for agent in agents)
