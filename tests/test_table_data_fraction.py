"""The data-scarce axis of a table: cells on a share of the training sequences, beside the table proper."""

import json

import pytest

from sfp.errors import UserError
from sfp.table.cells import cell_config, world_model_config
from sfp.table.render import render
from sfp.table.spec import Cell, load_table
from table_helpers import make_cell, tiny_table, write_cells


def test_a_table_runs_the_pairs_asked_for_on_each_share_of_the_training_data(tmp_path):
    table = load_table(tiny_table(tmp_path, fractions={"storms/simvp": [0.1, 0.25]}))
    scarce = [cell for cell in table.cells() if cell.fraction != 1]
    assert scarce == [Cell("storms", "simvp", 0, 0.1), Cell("storms", "simvp", 0, 0.25)]
    assert [cell.name for cell in scarce] == ["storms-simvp-s0-f0.1", "storms-simvp-s0-f0.25"]
    assert Cell.parse("storms/simvp/0/0.25") == scarce[1] and Cell.parse("storms/simvp/0") == Cell("storms", "simvp", 0)
    config = cell_config(table, scarce[0])
    assert config["data"]["init_args"]["train_fraction"] == 0.1 and config["run_dir"].endswith("storms-simvp-s0-f0.1")
    assert cell_config(table, Cell("storms", "simvp", 0))["data"]["init_args"]["train_fraction"] == 1.0
    world = world_model_config(table, "storms", 0.1)  # the agent's share of the data for its world model too
    assert world["run_dir"].endswith("world_model-f0.1") and world["data"]["init_args"]["train_fraction"] == 0.1
    for bad in ([0.0], [1.0], [0.5, 0.5], "half"):
        with pytest.raises(UserError, match="fractions"):
            load_table(tiny_table(tmp_path, fractions={"storms/simvp": bad}))
    with pytest.raises(UserError, match="no dataset/backbone"):
        load_table(tiny_table(tmp_path, fractions={"storms/fno": [0.1]}))


def test_cells_on_a_share_of_the_data_form_their_own_axis_not_the_summary(tmp_path):
    full = make_cell("storms", "simvp", 0, 0.30, 0.20, 0.25)  # +50 % over equal steps
    tenth = {**make_cell("storms", "simvp", 0, 0.22, 0.20, 0.25, surrogate=0.21), "fraction": 0.1}  # +10 %
    folder = tmp_path / "t" / "cells"
    write_cells(folder, full)
    (folder / "storms-simvp-s0-f0.1.json").write_text(json.dumps(tenth))
    states = {Cell("storms", "simvp", 0): None, Cell("storms", "simvp", 0, 0.1): None,
              Cell("storms", "simvp", 0, 0.25): "not computed"}
    table = render(tmp_path, "t", states)
    storms = table["summary"]["storms"]
    assert storms["sfp_vs_baseline_steps"] == pytest.approx(0.5) and storms["table_cells"] == 1
    axis = table["data_fraction"]["storms/simvp"]
    assert axis["0.1"]["sfp_vs_baseline_steps"] == pytest.approx(0.1)
    assert axis["0.1"]["sfp_vs_best_peer"] == pytest.approx((0.22 - 0.21) / 0.21)  # the surrogate, the only peer
    assert axis["1"]["sfp_vs_baseline_steps"] == pytest.approx(0.5)
    text = (tmp_path / "t.md").read_text()
    assert "| storms/simvp | 0.1 | +10.0% |" in text and "- storms/simvp/s0/0.25: not computed" in text
    assert (tmp_path / "t" / "data_fraction.png").stat().st_size > 0
