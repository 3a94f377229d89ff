"""Write output files safely: check the output path before any work, write a temporary file, then rename it.

:func:`check_output` refuses, up front, a path that could not be written after minutes of work (a folder, a wrong
suffix, a name too long, an existing file, a missing or read-only folder). :func:`write_file` writes through a
hidden temporary file beside the target (named with the writer's pid, so one left by a killed run is removed by the
next write) and renames it; any failure removes it and, for :class:`OSError`, becomes one :class:`UserError` line.
"""

from __future__ import annotations

import errno
import glob
import os
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from sfp.errors import UserError

TEMP_TAG = ".sfp-tmp"
NAME_MAX = 255  # bytes of one file name on the common file systems (ext4, xfs, btrfs, tmpfs, APFS)
MKSTEMP_RANDOM = 8  # characters tempfile.mkstemp puts between its prefix and suffix
FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        pass
    return True


def temp_prefix(path: Path) -> str:
    """Prefix of this process's temporary files for `path`: hidden, with the writer's pid."""
    return f".{path.name}.{os.getpid()}{TEMP_TAG}."


def remove_stale_temps(path: Path) -> None:
    """Delete temporary files for `path` left by writers that no longer run (a killed earlier run)."""
    for temp in path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_TAG}.*"):
        pid = temp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            temp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(temp: str | os.PathLike, path: Path) -> None:
    """Give `temp` the mode a new file gets under the umask (mkstemp makes 0600), then rename it to `path`."""
    os.chmod(temp, 0o666 & ~_umask())
    os.replace(temp, path)


def _longest_name(path: Path) -> int:
    """Longest name `path` may have: the file system's limit less what its temporary file's name adds."""
    extra = len(os.fsencode(temp_prefix(path))) - len(os.fsencode(path.name)) + MKSTEMP_RANDOM + len(path.suffix)
    return NAME_MAX - extra


def _check_name_lengths(path: Path) -> None:
    for part in path.parent.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise UserError(f"{path}: folder name {part[:40]}... is {len(os.fsencode(part))} bytes long; "
                            f"file systems allow {NAME_MAX}")
    length, longest = len(os.fsencode(path.name)), _longest_name(path)
    if length > longest:
        raise UserError(f"{path}: file name is {length} bytes long; at most {longest} fit ({NAME_MAX} less "
                        f"{NAME_MAX - longest} for sfp's temporary file)")


def _nearest_existing(folder: Path) -> Path:
    """`folder`, or its closest ancestor that exists (as a folder or not)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_output(path: str | os.PathLike, suffixes: Collection[str], replace: bool,
                 make_folders: bool = False) -> Path:
    """`path` as a Path when a file can be written there, else a one-line :class:`UserError` saying why.

    `suffixes` are the allowed ones (lower case, with the dot); an existing file is refused unless `replace`; a
    missing folder is refused unless `make_folders` (then its nearest existing ancestor must be a writable folder).
    Nothing is created. Call it before the work whose result is written.
    """
    path = Path(path)
    listing = ", ".join(sorted(suffixes))
    _check_name_lengths(path)
    if path.is_dir():
        raise UserError(f"{path}: is a directory; give a file name ending in {listing}")
    if path.suffix.lower() not in suffixes:
        found = f"ends in {path.suffix}" if path.suffix else "has no suffix"
        raise UserError(f"{path}: wrong file type, the name {found}; the output must end in {listing}")
    if path.exists() and not replace:
        raise UserError(f"{path}: exists; pass --overwrite to replace it")
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a directory (in the output path {path})")
    if folder != path.parent and not make_folders:
        raise UserError(f"{path.parent}: no such directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{folder}: not writable, cannot write {path} there")
    return path


@contextmanager
def atomic_file(path: Path) -> Iterator[str]:
    """A temporary file beside `path` to write in the block; renamed to `path` if the block succeeds, else removed."""
    remove_stale_temps(path)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=path.suffix.lower())
    os.close(handle)
    try:
        yield temp
        publish(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)


def _cannot_write(path: Path, err: OSError) -> UserError:
    """One line saying why `path` could not be written; a full disk or the file size limit said as such."""
    if err.errno in FULL:
        return UserError(f"{path}: cannot write ({err.strerror}: the file is too large or the disk is full)")
    return UserError(f"{path}: cannot write ({err.strerror or err})")


def write_file(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Write `path` with ``write(temporary_path)`` atomically, making missing folders; an OSError is a UserError."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as temp:
            write(temp)
    except OSError as err:
        raise _cannot_write(path, err) from err
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`write_file` for a text file (a manifest, a result's JSON or markdown, a run folder's record)."""
    return write_file(path, lambda temp: Path(temp).write_text(text))
