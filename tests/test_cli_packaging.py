"""The installed command works from any directory: shipped configs by name, `sfp demo`, `sfp --version`."""

import importlib.metadata
import json
import subprocess
import sys

import pytest

import sfp
from sfp.cli.main import main

SFP = [sys.executable, "-c", "from sfp.cli import main; raise SystemExit(main())"]
TINY_DATA = ["--data.init_args.n_sequences", "16", "--data.init_args.size", "16"]


@pytest.mark.slow
def test_demo_runs_from_an_empty_directory(tmp_path):
    done = subprocess.run([*SFP, "demo", "--until", "data", *TINY_DATA], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "runs" / "storms_sfp" / "manifest.json").read_text())
    assert manifest["stages"]["data"]["status"] == "done"


def test_version_is_the_installed_distributions(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"sfp {importlib.metadata.version('sfp-forecast')}" == \
        f"sfp {sfp.__version__}"
