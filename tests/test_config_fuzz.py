"""Seeded fuzzing of a tiny pipeline config: random mutations (keys dropped or added, values of other types, odd
numbers, class paths, damaged YAML text) given to ``sfp pipeline --until data`` never end in a traceback (exit 0, or
exit 2 with one line on stderr) and never change a file outside the run folder. Bounded in time for CI."""

import copy
import hashlib
import math
import random
import time

import pytest
import yaml

from pipeline_helpers import CONFIG
from sfp.cli.main import main

SEED = 34
MUTATIONS = 300
MINIMUM = 20  # mutations tried however slow the machine
SECONDS = 20.0
VALUES = [None, True, False, 0, -1, 1, 2.5, 10**12, -(10**12), math.nan, math.inf, "", "x", "1e400", [], {}, [1, 2],
          {"a": 1}, "[[[]]]", "*alias", "&anchor x", "os:system", "!!python/object:os.system"]
CLASS_PATHS = ["os.system", "this.Foo", "builtins.dict", "sfp.data.Nope", "", "a..b", ".", "sfp", "subprocess.Popen",
               "sfp.forecasting.GridForecaster", "sfp.data.FieldDataModule", "sfp.planning.WorldModelModule"]


def _paths(node, prefix=()):
    """Every key path of a nested mapping/list."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def _mutate(config: dict, rng: random.Random) -> dict:
    config = copy.deepcopy(config)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(list(_paths(config)))
        parent = config
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = rng.random()
        if action < 0.2 and isinstance(parent, dict):
            del parent[key]
        elif action < 0.3 and isinstance(parent, dict):
            parent[f"unknown_{rng.randint(0, 9)}"] = rng.choice(VALUES)
        elif key == "class_path" or action < 0.4:
            parent[key] = rng.choice(CLASS_PATHS) if key == "class_path" else [parent[key]]
        else:
            parent[key] = copy.deepcopy(rng.choice(VALUES))
    return config


def _text(config: dict, rng: random.Random) -> str:
    text = yaml.safe_dump(config)
    if rng.random() < 0.2:  # damaged text: cut short, or a few bytes replaced
        cut = rng.randrange(len(text))
        text = text[:cut] if rng.random() < 0.5 else text[:cut] + rng.choice(":[{&*!|>%@`\t\"'") + text[cut + 1:]
    return text


def _digests(root, skip):
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in root.rglob("*")
            if path.is_file() and skip not in path.parents}


@pytest.mark.slow
def test_mutated_configs_never_give_a_traceback_or_touch_other_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = random.Random(SEED)
    run = tmp_path / "run"
    base = {**CONFIG, "run_dir": str(run), "data": {**CONFIG["data"], "init_args": {
        **CONFIG["data"]["init_args"], "n_sequences": 8}}}
    (tmp_path / "keep.txt").write_text("outside the run folder\n")
    before = _digests(tmp_path, run)
    deadline, tried, codes = time.monotonic() + SECONDS, 0, {0: 0, 2: 0}
    while tried < MUTATIONS and (tried < MINIMUM or time.monotonic() < deadline):
        path = tmp_path / "mutated.yaml"
        path.write_text(_text(_mutate(base, rng), rng))
        code = main(["pipeline", "--config", str(path), "--until", "data", "--run_dir", str(run)])
        err = capsys.readouterr().err
        assert code in codes, (code, path.read_text())
        assert code == 0 or (err.count("\n") == 1 and err.startswith("sfp: error: ")), (err, path.read_text())
        codes[code] += 1
        tried += 1
        path.unlink()
        assert _digests(tmp_path, run) == before, path
    assert codes[2] > 0, codes  # the mutations do break the config
