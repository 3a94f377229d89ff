"""The shipped configs: every one is found by name, SFP pipeline configs parse and validate as a whole, and each
shipped `sfp fit` config names only arguments its classes accept (LightningCLI's own check, `--print_config`)."""

import pytest

from sfp.cli.main import main
from sfp.configs import read_yaml, resolve, shipped
from sfp.pipeline_config import load_config

PIPELINES = ["storms_sfp", "navier_stokes_sfp", "flame_sfp", "radar_sfp", "radar_hybrid", "ocean_sfp"]
TABLES = {name for name in shipped() if "datasets" in read_yaml(resolve(name))}  # tests/test_table.py's


@pytest.mark.parametrize("name", PIPELINES)
def test_sfp_config_parses_and_validates(name):
    config = load_config(["--config", name])
    assert config["run_dir"] == f"runs/{name}" and config["sfp"]["pseudo_labels"]["weight"] > 0
    assert config["sfp_trainer"]["max_steps"] > 0 and config["agent"]["class_path"].startswith("sfp.forecasting.")


@pytest.mark.parametrize("name", sorted(set(shipped()) - set(PIPELINES) - TABLES))
def test_fit_config_parses(name, capsys):
    with pytest.raises(SystemExit) as done:  # --print_config prints the resolved config and exits
        main(["fit", "--config", name, "--print_config"])
    assert done.value.code in (0, None) and "class_path" in capsys.readouterr().out


def test_names_and_paths_resolve_alike(tmp_path):
    assert resolve("storms_sfp") == resolve("storms_sfp.yaml") == resolve("configs/storms_sfp.yaml")
    own = tmp_path / "storms_sfp.yaml"
    own.write_text("run_dir: x\n")
    assert resolve(own) == own  # a file that exists wins over the shipped config of that name
