"""Refuse, before allocating, data that cannot fit in the memory this machine has left.

An oversized request (``size=100000``) would otherwise end in a MemoryError traceback, or in swapping, minutes in.
"""

from __future__ import annotations

from sfp.errors import UserError


def available_bytes() -> int | None:
    """Memory that can still be allocated without swapping (Linux ``MemAvailable``); None where it is unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


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
