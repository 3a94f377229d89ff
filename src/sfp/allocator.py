"""Keep freed memory in the process on glibc, so that large tensors reuse it instead of being mapped afresh.

glibc returns every freed block above its mmap threshold (at most 32 MiB) to the system, so each large activation of
a training step is a fresh mapping whose pages fault in one by one; on a virtual machine that costs about as much
as the arithmetic (``python -m benchmarks performer``: the Performer's seed step used 39% of the matmul rate with
glibc's defaults and 47% with this setting). :func:`keep_freed_memory` raises the mmap and trim thresholds to 1 GiB,
what the environment variables ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` do. The training commands
of ``sfp`` call it at start; a user who sets either variable keeps their own setting; without glibc it does nothing.
The price: freed memory stays with the process until it ends instead of going back to the system at once.
"""

from __future__ import annotations

import ctypes
import os
import platform
from typing import Any

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt option numbers (malloc.h)
THRESHOLD = 1 << 30
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def _glibc() -> Any | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def keep_freed_memory(libc: Any | None = None) -> bool:
    """Raise glibc's mmap and trim thresholds to :data:`THRESHOLD`; True when both were set. ``libc``: the C
    library to call (found by itself when None)."""
    if any(name in os.environ for name in USER_SETTINGS):
        return False
    libc = libc if libc is not None else _glibc()
    if libc is None:
        return False
    return all(libc.mallopt(option, THRESHOLD) == 1 for option in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD))
