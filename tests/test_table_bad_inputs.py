"""`sfp table` on a user's mistakes: a malformed table config, a malformed --cell, a cell JSON that is no cell.
Each is one line on stderr (``sfp: error: ...`` naming the file and the key or problem) and exit code 2, found
before any work, with nothing written."""

import pytest
import yaml

from sfp.cli.main import main
from table_helpers import tiny_table


def _fails_in_one_line(capsys, argv, *expected):
    """``sfp argv`` exits 2 with one line on stderr holding each of ``expected``."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sfp: error: ") and err.count("\n") == 1, err
    for text in expected:
        assert text in err, err


CONFIG_MISTAKES = {  # the tiny table's keys replaced -> what the error names
    "datasets a list": ({"datasets": ["storms"]}, "datasets must map"),
    "a row without pipeline": ({"datasets": {"storms": {"overrides": []}}}, "datasets.storms", "'pipeline'"),
    "a row not a mapping": ({"datasets": {"storms": "storms_sfp"}}, "datasets.storms", "mapping"),
    "a row's unknown key": ({"datasets": {"storms": {"pipeline": "storms_sfp", "extra": 1}}}, "datasets.storms",
                            "'extra'"),
    "overrides not words": ({"datasets": {"storms": {"pipeline": "storms_sfp", "overrides": ["--x", 5]}}},
                            "datasets.storms", "overrides"),
    "an unknown shipped pipeline": ({"datasets": {"storms": {"pipeline": "nope_sfp"}}}, "datasets.storms.pipeline",
                                    "nope_sfp"),
    "a dataset that is no task": ({"datasets": {"rain": {"pipeline": "storms_sfp"}}}, "unknown dataset 'rain'"),
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


@pytest.mark.parametrize("cell", ["storms/simvp/x", "storms/simvp/-1", "a/b", "storms/simvp/0/1", "storms/fno/0"])
def test_a_malformed_or_unknown_cell_is_one_line(tmp_path, capsys, cell):
    config = tiny_table(tmp_path)
    _fails_in_one_line(capsys, ["table", "--config", str(config), "--cell", cell], cell)
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs").exists()
