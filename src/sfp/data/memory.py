"""Refuse, before allocating, data that cannot fit in the memory this machine has left.

An oversized request (``size=100000``) would otherwise end in a MemoryError traceback, or in swapping, minutes in.
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager

from sfp.errors import UserError


def _kibibytes_field(path: str, key: str) -> int | None:
    """The ``key:  N kB`` line of a Linux ``/proc`` file, in bytes; None where there is no such file or line."""
    try:
        with open(path) as lines:
            for line in lines:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_bytes() -> int | None:
    """Memory that can still be allocated without swapping (Linux ``MemAvailable``); None where it is unknown."""
    return _kibibytes_field("/proc/meminfo", "MemAvailable")


def _human(nbytes: int) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    value, index = float(nbytes), 0
    while value >= 1024 and index < len(units) - 1:
        value, index = value / 1024, index + 1
    return f"{value:.1f} {units[index]}"


def require_memory(nbytes: int, what: str) -> None:
    """A one-line UserError when `what` (e.g. ``"storms data of shape (...)"``) needs more than the memory left."""
    available = available_bytes()
    if available is not None and nbytes > available:
        raise UserError(f"{what} would need {nbytes} bytes ({_human(nbytes)}) of memory, more than the {available} "
                        f"({_human(available)}) available; make it smaller")


def _mapped_bytes() -> int | None:
    """This process's virtual memory size (Linux ``VmSize``); None where it is unknown."""
    return _kibibytes_field("/proc/self/status", "VmSize")


@contextmanager
def within_available_memory() -> Iterator[None]:
    """Run the body with the process's address space capped at what it maps now plus the memory left, so that a
    construction too large for the machine (a model of 10**12 layers) ends in a MemoryError instead of the kernel
    killing the process, or the machine swapping, minutes later. Where the limits are unknown, nothing is capped."""
    available, mapped = available_bytes(), _mapped_bytes()
    if available is None or mapped is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = mapped + available if hard == resource.RLIM_INFINITY else min(mapped + available, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
