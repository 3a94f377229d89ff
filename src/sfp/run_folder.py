"""Run folders: what made each one, and one process at a time in it.

Every run folder holds ``sfp-run.json``: the command that made it (``fit``, ``test``, ``pipeline`` or ``table``)
and the run it belongs to (a fit's or pipeline's own id; for a table's cells and runs folder, the table's name). A
command refuses, in one line, a folder made by another kind of command, a folder of another run, and a folder
inside another run's folder, unless told ``--force``; ``sfp test``/``predict``/``validate`` may write into a fit's
folder (they evaluate that run), never into a pipeline's or a table's. Folders made before these files existed are
recognised by what they hold (``manifest.json``: a pipeline; checkpoints or ``config.yaml``: a fit; pipeline runs one
level down: a table's runs folder); any other folder must be empty.

While a command works in a folder it holds an OS lock on ``sfp-run.lock`` (``fcntl.flock``): a second process is
refused in one line naming the holder, and the lock dies with its process, so a killed run never blocks the next.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from sfp.data.writing import write_text
from sfp.errors import UserError

MARKER = "sfp-run.json"
LOCK = "sfp-run.lock"
ALSO_WRITES_INTO = {"test": ("fit",)}  # an evaluation writes its metrics beside the run it evaluates
UNRECORDED = "unrecorded"  # the run of a folder made before the marker existed


@dataclass(frozen=True)
class Owner:
    """What made a run folder (``fit``, ``test``, ``pipeline`` or ``table``) and the run it belongs to."""

    made_by: str
    run: str

    def describe(self) -> str:
        return f"a `sfp {self.made_by}` run ({self.run})"


def read_owner(root: Path) -> Owner | None:
    """The owner recorded in ``root``, else the one its files show (folders older than the marker), else None."""
    marker = root / MARKER
    if marker.is_file():
        try:
            content = json.loads(marker.read_text())
            return Owner(str(content["made_by"]), str(content["run"]))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise UserError(f"{marker}: unreadable run-folder record ({type(err).__name__}); it says which "
                            "command owns the folder: restore it or use another folder") from err
    if (root / "manifest.json").is_file():
        return Owner("pipeline", UNRECORDED)
    if any((root / "checkpoints").glob("*.ckpt")) or (root / "config.yaml").is_file():
        return Owner("fit", UNRECORDED)
    entries = list(root.iterdir()) if root.is_dir() else []
    if entries and all(path.is_dir() for path in entries) and any(root.glob("*/*/manifest.json")):
        return Owner("table", UNRECORDED)  # a table's runs folder: dataset folders of pipeline runs
    return None


def _stranger(root: Path) -> str | None:
    """The name of something in ``root`` that no sfp run put there (a folder that is no run folder must be empty:
    a run never mixes its files with others' or writes across a home or project folder)."""
    entries = [path.name for path in root.iterdir() if path.name not in (MARKER, LOCK)] if root.is_dir() else []
    return sorted(entries)[0] if entries else None


def _enclosing(root: Path) -> tuple[Path, Owner] | None:
    """The nearest folder above ``root`` that is a run folder, with its owner."""
    for parent in root.resolve().parents:
        owner = read_owner(parent) if (parent / MARKER).is_file() or (parent / "manifest.json").is_file() else None
        if owner is not None:
            return parent, owner
    return None


def _refusal(root: Path, made_by: str, run: str | None) -> str | None:
    """Why ``made_by`` (of run ``run``; None: any) may not use ``root``, or None when it may."""
    enclosing = _enclosing(root)
    if enclosing is not None and not (enclosing[1].made_by == made_by == "table" and enclosing[1].run == run):
        return f"lies inside {enclosing[0]}, the folder of {enclosing[1].describe()}"
    owner = read_owner(root)
    if owner is None:
        stranger = _stranger(root)
        return None if stranger is None else f"is not empty ({stranger}) and holds no sfp run"
    if owner == Owner("pipeline", UNRECORDED) and made_by == "table":
        return None  # a table's cell computed before the record existed
    if owner.made_by != made_by and owner.made_by not in ALSO_WRITES_INTO.get(made_by, ()):
        return f"belongs to {owner.describe()}"
    if run is not None and owner.run not in (run, UNRECORDED):
        return f"belongs to {owner.describe()}, not to {run}"
    return None


def claim(root: str | Path, made_by: str, run: str | None = None, *, fresh: bool = False,
          force: bool = False) -> Owner:
    """Check that ``made_by`` may use ``root`` (one line when not, unless ``force``) and record it as the folder's
    owner where the folder has none on record; returns the owner on record. A ``fresh`` fit never starts beside
    another run's checkpoints, forced or not (their names would be shared: ``last.ckpt`` would resume the old run)."""
    root = Path(root)
    existing = sorted((root / "checkpoints").glob("*.ckpt"))
    if made_by == "fit" and fresh and existing:
        raise UserError(f"{root}: holds a run already ({existing[0].name}): continue it with --ckpt_path last, or "
                        "start over in another --run_dir (or delete that folder)")
    reason = _refusal(root, made_by, run)
    if reason is not None and not force:
        raise UserError(f"{root}: {reason}; use another folder (or --force to use this one anyway)")
    recorded = read_owner(root) if (root / MARKER).is_file() else None
    if recorded is not None and not force:
        return recorded
    owner = Owner(made_by, run or uuid.uuid4().hex[:12])
    if not _is_child_process():
        write_text(root / MARKER, json.dumps({**asdict(owner), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
    return owner


@contextmanager
def run_folder(root: str | Path, made_by: str, run: str | None = None, *, fresh: bool = False,
               force: bool = False) -> Iterator[Owner]:
    """:func:`claim` ``root``, then hold its lock while the body runs (processes a launcher started for a
    multi-process run share their parent's folder and take no lock)."""
    owner = claim(root, made_by, run, fresh=fresh, force=force)
    if _is_child_process():
        yield owner
        return
    path = Path(root) / LOCK
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 500, 0).decode(errors="replace").strip() or "another process"
            raise UserError(f"{root}: in use by {holder}; wait for it to end, or stop it") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()} (sfp {made_by}, since {time.strftime('%H:%M:%S')})".encode(), 0)
        yield owner
    finally:
        os.close(descriptor)  # releases the lock


def _is_child_process() -> bool:
    """Whether this is a process Lightning's launcher started for ranks > 0 (it runs the same command again)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"

