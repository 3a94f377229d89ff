"""`sfp table` on a user's mistakes: a malformed table config, a malformed --cell, a cell JSON that is no cell.
Each is one line on stderr (``sfp: error: ...`` naming the file and the key or problem) and exit code 2, found
before any work, with nothing written."""

import json

import pytest
import yaml

from sfp.cli.main import main
from sfp.errors import UserError
from sfp.table.cells import cell_path, compute_cell
from sfp.table.spec import Cell, load_table
from table_helpers import make_cell, tiny_table, write_cells


def _fails_in_one_line(capsys, argv, *expected):
    """``sfp argv`` exits 2 with one line on stderr holding each of ``expected``."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sfp: error: ") and err.count("\n") == 1, err
    for text in expected:
        assert text in err, err


CONFIG_MISTAKES = {  # the tiny table's keys replaced -> what the error names
    "datasets a list": ({"datasets": ["storms"]}, "datasets must map"),
    "a row without pipeline": ({"datasets": {"storms": {"settings": {}}}}, "datasets.storms", "'pipeline'"),
    "a row not a mapping": ({"datasets": {"storms": "storms_sfp"}}, "datasets.storms", "mapping"),
    "a row's unknown key": ({"datasets": {"storms": {"pipeline": "storms_sfp", "extra": 1}}}, "datasets.storms",
                            "'extra'"),
    "settings not a mapping": ({"datasets": {"storms": {"pipeline": "storms_sfp", "settings": ["--x", "5"]}}},
                               "datasets.storms", "settings must map"),
    "command-line words": ({"datasets": {"storms": {"pipeline": "storms_sfp", "overrides": ["--x", "5"]}}},
                           "datasets.storms.overrides", "settings"),
    "a setting the pipeline has not": ({"datasets": {"storms": {"pipeline": "storms_sfp", "settings": {"x": 5}}}},
                                       "x"),
    "an unknown shipped pipeline": ({"datasets": {"storms": {"pipeline": "nope_sfp"}}}, "datasets.storms.pipeline",
                                    "nope_sfp"),
    "a dataset that is no task": ({"datasets": {"rain": {"pipeline": "storms_sfp"}}}, "unknown dataset 'rain'"),
    "a reward row without its dataset": ({"datasets": {"storms/object": {"pipeline": "storms_sfp"}}},
                                         "unknown dataset 'storms/object'"),
    "a row's dataset no task": ({"datasets": {"storms/object": {"pipeline": "storms_sfp", "dataset": "rain"}}},
                                "dataset must be a task"),
    "a row's name a path": ({"datasets": {"storms/../x": {"pipeline": "storms_sfp", "dataset": "storms"}}},
                            "a row's name is a dataset or dataset/reward"),
    "backbones a list": ({"backbones": ["simvp"]}, "backbones must map"),
    "backbone kwargs not a mapping": ({"backbones": {"simvp": 3}}, "backbones must map"),
    "seeds not integers": ({"seeds": ["a"]}, "seeds must be"),
    "seeds fractional": ({"seeds": [0.5]}, "seeds must be"),
    "seeds a number": ({"seeds": 1}, "seeds must be"),
    "seeds negative": ({"seeds": [-1]}, "seeds must be"),
    "an unknown key": ({"colour": "red"}, "unknown option 'colour'"),
    "extra_seeds a list": ({"extra_seeds": ["storms/simvp"]}, "extra_seeds must map"),
    "extra_seeds a number": ({"extra_seeds": {"storms/simvp": 1}}, "extra_seeds.storms/simvp must be"),
    "extra_seeds of no cell": ({"extra_seeds": {"storms/fno": [1]}}, "extra_seeds: 'storms/fno'"),
    "a name that is a path": ({"name": "../up"}, "name must be"),
}


@pytest.mark.parametrize("mistake", CONFIG_MISTAKES)
def test_a_malformed_table_config_is_one_line_naming_the_key(tmp_path, capsys, mistake):
    changes, *expected = CONFIG_MISTAKES[mistake]
    config = tiny_table(tmp_path, **changes)
    _fails_in_one_line(capsys, ["table", "--config", str(config), "--render"], str(config), *expected)
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs").exists()  # before any work


@pytest.mark.parametrize("content", ["- storms\n- simvp\n", "datasets: [\n", ""])
def test_a_table_config_that_is_no_mapping_is_one_line(tmp_path, capsys, content):
    config = tmp_path / "table.yaml"
    config.write_text(content)
    _fails_in_one_line(capsys, ["table", "--config", str(config)], str(config))


def test_the_table_config_must_have_datasets_and_backbones(tmp_path, capsys):
    config = tmp_path / "table.yaml"
    config.write_text(yaml.safe_dump({"name": "t", "backbones": {"simvp": {}}}))
    _fails_in_one_line(capsys, ["table", "--config", str(config)], "missing option 'datasets'")


@pytest.mark.parametrize("cell", ["storms/simvp/x", "storms/simvp/-1", "a/b", "storms/simvp/0/1/2", "storms/fno/0",
                                  "storms/simvp/0/0.5", "storms/simvp/0/2"])
def test_a_malformed_or_unknown_cell_is_one_line(tmp_path, capsys, cell):
    config = tiny_table(tmp_path)
    _fails_in_one_line(capsys, ["table", "--config", str(config), "--cell", cell], cell)
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs").exists()


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """The tiny table with its SimVP cell rendered (every cell taken as current): its config and results."""
    monkeypatch.setattr("sfp.table.cells.cell_config", lambda table, cell: {})
    monkeypatch.setattr("sfp.table.cells.why_stale", lambda done, config: None)
    config = tiny_table(tmp_path)
    write_cells(tmp_path / "results" / "tiny" / "cells", make_cell("storms", "simvp", 0, 0.3, 0.2, 0.25))
    assert main(["table", "--config", str(config), "--render"]) == 0
    return config, tmp_path / "results"


def _set(path, value):
    """A cell's JSON text -> its bytes with the value at ``path`` (keys) replaced, or removed where ``value`` is
    ``...``."""
    def change(text):
        cell = content = json.loads(text)
        *parents, last = path
        for key in parents:
            content = content[key]
        if value is ...:
            del content[last]
        else:
            content[last] = value
        return json.dumps(cell).encode()
    return change


CELL_MISTAKES = {  # the U-Net cell's JSON text -> the file's bytes, and what the error says
    "truncated": (lambda text: text[:len(text) // 2].encode(), "not valid JSON"),
    "empty": (lambda text: b"", "not valid JSON"),
    "not UTF-8": (lambda text: b"\xff\xfe{", "not valid JSON (not UTF-8"),
    "a list": (lambda text: b"[1, 2]", "a cell is a JSON object, got list"),
    "deeply nested": (lambda text: b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    "no models": (_set(["models"], ...), "models must map"),
    "models a list": (_set(["models"], []), "models must map"),
    "a model not a mapping": (_set(["models", "sfp"], 0.3), "models must map"),
    "a metric that is a string": (_set(["models", "sfp", "csi_m"], "0.3"), "models.sfp.csi_m must be a number"),
    "a metric that is true": (_set(["models", "sfp", "mse"], True), "models.sfp.mse must be a number"),
    "a huge integer": (_set(["models", "sfp", "mse"], 10**400), "models.sfp.mse is too large"),
    "nested too deep": (_set(["models", "sfp", "csi"], [[[[[[[[[1]]]]]]]]]), "nests deeper"),
    "a dataset that is no task": (_set(["dataset"], "rain"), "dataset must be one of"),
    "another cell's content": (_set(["backbone"], "simvp"), "holds the cell storms/simvp/0"),
    "a seed that is a string": (_set(["seed"], "0"), "seed must be"),
    "settings not a string": (_set(["settings"], ["s"]), "settings must be a string"),
    "per_window rows missing": (_set(["per_window"], {"sequence": [0, 1], "models": {"sfp": [[1.0]]}}),
                                "one row of numbers per window"),
    "per_window without sequences": (_set(["per_window"], {"models": {}}), "per_window must hold a sequence"),
    "seconds a list": (_set(["seconds"], [1]), "seconds must map"),
    "a step count that is a string": (_set(["steps"], {"agent": "ten"}), "steps must map"),
    "parameters a mapping": (_set(["parameters"], {}), "parameters must be a number"),
    "step cost a word": (_set(["step_cost"], "fast"), "step_cost must be a number"),
    "per_lead of a string": (_set(["per_lead"], {"sfp": {"csi_per_lead": "x"}}), "per_lead.sfp.csi_per_lead"),
    "per_lead of an unknown model": (_set(["per_lead"], {"x": {}}), "per_lead: unknown model 'x'"),
    "per_lead of other thresholds": (_set(["per_lead"], {"sfp": {"csi_per_lead": {"16": [0.5]}},
                                                         "persistence": {"csi_per_lead": {"74": [0.5]}}}),
                                     "every model needs the same views"),
}


@pytest.mark.parametrize("mistake", CELL_MISTAKES)
def test_a_cell_json_that_is_no_cell_is_one_line_naming_it_and_nothing_is_written(tiny, capsys, mistake):
    config, results = tiny
    spoil, expected = CELL_MISTAKES[mistake]
    before = {path: path.read_bytes() for path in results.rglob("*") if path.is_file()}
    path = results / "tiny" / "cells" / "storms-unet-s0.json"
    path.write_bytes(spoil(json.dumps(make_cell("storms", "unet", 0, 0.1, 0.2, 0.2))))
    capsys.readouterr()
    _fails_in_one_line(capsys, ["table", "--config", str(config), "--render"], str(path), expected)
    assert {path: path.read_bytes() for path in before} == before  # nothing rewritten
    assert {path for path in results.rglob("*") if path.is_file()} == {*before, path}  # nothing added


def test_a_cell_json_of_a_dataset_not_in_the_table_is_one_line(tiny, capsys):
    config, results = tiny
    write_cells(results / "tiny" / "cells", make_cell("navier_stokes", "simvp", 0, 0.3, 0.5, 0.4))
    _fails_in_one_line(capsys, ["table", "--config", str(config), "--render"], "navier_stokes-simvp-s0.json",
                       "not a cell of this table")


def test_a_bad_cell_json_stops_the_computation_before_any_work(tiny, capsys):
    config, results = tiny
    (results / "tiny" / "cells" / "storms-unet-s0.json").write_text('{"dataset": "sto')
    _fails_in_one_line(capsys, ["table", "--config", str(config), "--cell", "storms/unet/0"], "not valid JSON")
    assert not (config.parent / "runs").exists()


def test_compute_cell_checks_a_done_cell_before_training(tmp_path):
    config = tiny_table(tmp_path)
    table = load_table(config)
    path = cell_path(table, Cell("storms", "simvp", 0))
    path.parent.mkdir(parents=True)
    path.write_text("[]")
    with pytest.raises(UserError, match="a cell is a JSON object"):
        compute_cell(table, Cell("storms", "simvp", 0), {})
    assert not (tmp_path / "runs").exists()


def test_a_cell_file_keeps_each_list_of_numbers_on_one_line_and_reads_back_the_same():
    from sfp.table.cellfile import cell_text

    cell = make_cell("storms", "simvp", 0, 0.3, 0.2, float("nan"))
    cell["per_window"] = {"keys": ["csi_m", "mse"], "sequence": [0, 0, 1], "models": {"sfp": [[1.0, -2.5e-07], [3, 4],
                                                                                              [5, 6]]}}
    text = cell_text(cell)
    assert '"sequence": [0, 0, 1]' in text and "[1.0, -2.5e-07]" in text
    assert json.dumps(json.loads(text), sort_keys=True) == json.dumps(cell, sort_keys=True)  # NaN included
