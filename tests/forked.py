"""Run ``sfp`` in a forked child of the test process and SIGKILL it part-way: a real process killed mid-run,
without the seconds a fresh interpreter spends importing torch and Lightning."""

import os
import signal
import time
from pathlib import Path

import pytest
import torch

from sfp.cli.main import main


def skip_once_the_gpu_was_used() -> None:
    """A forking DDP strategy cannot follow GPU work in this process (a CUDA test run earlier in the same worker)."""
    if torch.cuda.is_initialized():
        pytest.skip("this test process has used the GPU, and CUDA does not survive a fork")


def start(argv: list[str], cwd: Path | None = None) -> int:
    """Fork; the child runs ``sfp argv`` (output discarded) and exits with its code. Returns the child's pid."""
    skip_once_the_gpu_was_used()
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            if cwd is not None:
                os.chdir(cwd)
            code = main(argv)
        finally:
            os._exit(code)
    return pid


def kill_when(pid: int, ready, timeout: float = 120.0) -> bool:
    """SIGKILL the child as soon as ``ready()`` holds; True when it was still running then (not finished early)."""
    deadline = time.monotonic() + timeout
    while not ready() and time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status)
