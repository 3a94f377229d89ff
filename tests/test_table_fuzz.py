"""Fuzzing `sfp table --render` with spoiled cell JSON files: random mutations of a tiny table's cells (keys
deleted, values replaced by random JSON types, NaN, infinities, huge numbers and strings, deep nesting, bytes
truncated, flipped or random) never give a traceback: the command exits 0, or 2 with one line on stderr, and
changes no file outside the table's results folder (nor, on exit 2, any file in it)."""

import json
import math
import random
import time
from pathlib import Path

import pytest

from sfp.cli.main import main
from table_helpers import make_cell, tiny_table, write_cells

SEED = 34  # the mutations are those of this seed, in this order; a failure names its iteration
ITERATIONS = 400  # at most, within SECONDS of wall time
SECONDS = 10.0
DEEP = "deeply nested "
LEADS = {"csi_per_lead": {"16": [0.9, 0.8, 0.7], "74": [0.5, 0.4, 0.3]}, "ssim_per_lead": [0.8, 0.7, 0.6]}


def _cells() -> list[dict]:
    cells = [make_cell("storms", "simvp", 0, 0.30, 0.20, 0.25, mse=(0.010, 0.011)),
             make_cell("storms", "simvp", 1, 0.22, 0.20, 0.20, mse=(0.010, 0.010)),
             make_cell("storms", "unet", 0, 0.20, 0.25, 0.20, mse=(0.020, 0.019))]
    for cell in cells:
        cell.update(parameters=1234, steps={"agent": 20, "sfp": 2}, version="0.1.0", surrogate={"weight": 1.0})
        cell["models"]["agent"] = {"csi_m": 0.2, "mse": 0.012, "csi": {"16": 0.5}}
    cells[0]["per_lead"] = {"sfp": LEADS, "persistence": LEADS}  # one cell's plot: each plot costs a tenth of a second
    return cells


def _random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(12)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**63, 10**300, 10**400, -10**400])
    if kind == 3:
        return rng.choice([math.nan, math.inf, -math.inf, 1e308, -1e308, 1e-320, 0.0, rng.uniform(-1e3, 1e3)])
    if kind == 4:
        return "".join(rng.choice("ab\n\"\\$ \x00é") for _ in range(rng.randrange(50)))
    if kind == 5:
        return "x" * rng.choice([0, 10**5])
    if kind == 6:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(3))] if depth < 4 else []
    if kind == 7:
        return {str(rng.random()): _random_value(rng, depth + 1) for _ in range(rng.randrange(3))} if depth < 4 else {}
    if kind == 8:
        return f"{DEEP}{rng.choice([5, 50, 5000])}"  # lists nested this deep, spliced into the text
    return rng.choice(["storms", "simvp", "unet", "navier_stokes", "-1", "NaN", {}, []])


def _text(cell) -> bytes:
    """``cell`` as JSON, each ``DEEP<n>`` string replaced by lists nested ``n`` deep."""
    parts = json.dumps(cell).split(f'"{DEEP}')
    return "".join([parts[0], *("[" * int(n) + "0.5" + "]" * int(n) + rest.partition('"')[2]
                                for n, rest in ((part.partition('"')[0], part) for part in parts[1:]))]).encode()


def _children(value):
    return list(value.items()) if isinstance(value, dict) else list(enumerate(value)) if isinstance(value, list) else []


def _mutate(rng: random.Random, cell: dict) -> tuple[str, bytes]:
    """One random mutation of ``cell`` (a copy): its description and the file's bytes."""
    text = json.dumps(cell).encode()
    kind = rng.randrange(10)
    if kind == 0:
        cut = rng.randrange(len(text))
        return f"truncated at {cut}", text[:cut]
    if kind == 1:
        return "random bytes", bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
    if kind == 2:
        where = rng.randrange(len(text))
        return f"byte {where} flipped", text[:where] + bytes([text[where] ^ (1 << rng.randrange(8))]) + text[where + 1:]
    cell = json.loads(text)
    parent, key = cell, None
    path = []
    while _children(parent if key is None else parent[key]) and (key is None or rng.random() < 0.6):
        parent = parent if key is None else parent[key]
        key, _ = rng.choice(_children(parent))
        path.append(key)
    if key is None:
        return "the whole cell replaced", _text(_random_value(rng))
    if kind == 3 and isinstance(parent, dict):
        del parent[key]
        return f"deleted {path}", _text(cell)
    value = _random_value(rng)
    parent[key] = value
    return f"{path} = {str(value)[:60]!r}", _text(cell)


def _files(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.mark.filterwarnings("ignore")
def test_spoiled_cell_files_never_give_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sfp.table.cells.cell_config", lambda table, cell: {})
    monkeypatch.setattr("sfp.table.cells.why_stale", lambda done, config: None)  # hashing is not what is fuzzed
    config = tiny_table(tmp_path, extra_seeds={"storms/simvp": [0, 1]})
    results, cells = tmp_path / "results", _cells()
    folder = results / "tiny" / "cells"
    write_cells(folder, *cells)
    argv = ["table", "--config", str(config), "--render"]
    assert main(argv) == 0
    outside = {path: content for path, content in _files(tmp_path).items() if results not in path.parents}
    rng, start, outcomes = random.Random(SEED), time.monotonic(), {0: 0, 2: 0}
    for iteration in range(ITERATIONS):
        if time.monotonic() - start > SECONDS:
            break
        cell = rng.choice(cells)
        path = folder / f"{cell['dataset']}-{cell['backbone']}-s{cell['seed']}.json"
        pristine = path.read_bytes()
        what, spoiled = _mutate(rng, cell)
        path.write_bytes(spoiled)
        before = _files(results)
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err
        context = f"iteration {iteration} (seed {SEED}): {path.name}: {what}"
        assert code in (0, 2), context
        assert err == "" if code == 0 else err.startswith("sfp: error: ") and err.count("\n") == 1, (context, err)
        assert path.read_bytes() == spoiled, context  # the cell file is only read
        if code == 2:
            assert _files(results) == before, context  # nothing written
        assert {p: c for p, c in _files(tmp_path).items() if results not in p.parents} == outside, context
        outcomes[code] += 1
        path.write_bytes(pristine)
    assert outcomes[0] >= 3 and outcomes[2] >= 10, outcomes  # both paths were exercised
