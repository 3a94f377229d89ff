"""What the dataset generators share: validated parameters, a deterministic parallel map, and the on-disk cache.

The cache is keyed by a hash of generator name, parameters and version. Files are written atomically (a temporary
file in the cache folder, then ``os.replace``), so a run killed while writing leaves no partial file under the final
name, and its temporary file is removed by the next write of the same key; files get the umask's mode. A file that
is nevertheless unreadable or has the wrong shape is regenerated. The folder is ``$SFP_CACHE`` or ``~/.cache/sfp``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from sfp.data.memory import require_memory
from sfp.data.writing import atomic_file
from sfp.errors import UserError, first_line

log = logging.getLogger(__name__)

GENERATOR_VERSION = "1"  # bump when any generator's output changes for the same parameters

Chunk = TypeVar("Chunk")
Result = TypeVar("Result")


@dataclasses.dataclass(frozen=True)
class GeneratorParams:
    """Base of a generator's knobs: a frozen dataclass of numbers and ``(low, high)`` ranges, all non-negative.

    Subclasses add fields with defaults and may extend :meth:`validate`.
    """

    @classmethod
    def from_overrides(cls, overrides: dict) -> GeneratorParams:
        """Defaults with ``overrides`` applied; unknown names and impossible values raise :class:`UserError`."""
        known = sorted(f.name for f in dataclasses.fields(cls))
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise UserError(f"unknown {cls.__name__} parameter(s) {', '.join(unknown)}; known: {', '.join(known)}")
        params = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
        params.validate()
        return params

    def validate(self) -> None:
        """Ranges are ``(low, high)`` with ``low <= high``; every number is non-negative."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            values = value if isinstance(value, tuple) else (value,)
            if isinstance(value, tuple) and (len(value) != 2 or value[0] > value[1]):
                raise UserError(f"{field.name} must be a (low, high) pair, got {value!r}")
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in values):
                raise UserError(f"{field.name} must be non-negative numbers, got {value!r}")


def map_chunks(function: Callable[[Chunk], Result], chunks: Sequence[Chunk]) -> list[Result]:
    """``[function(c) for c in chunks]``, run on as many Python threads as torch's thread setting allows.

    Each chunk runs with single-threaded torch operations, so results are bit-identical whatever the number of
    threads (torch's own intra-op threads can change round-off, and stall badly on cores shared with other work).
    Torch releases the GIL inside its kernels, so the threads do run in parallel.
    """
    workers = min(torch.get_num_threads(), len(chunks))
    with single_threaded_torch():
        if workers <= 1:
            return [function(chunk) for chunk in chunks]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(function, chunks))


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Run torch operations on one thread inside the block (the process-wide setting is restored after)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def cache_dir() -> Path:
    """The cache folder: ``$SFP_CACHE`` if set, else ``~/.cache/sfp``."""
    return Path(os.environ.get("SFP_CACHE") or Path.home() / ".cache" / "sfp")


def _canonical(value: object) -> object:
    """Parameters as plain JSON values: tuples become lists, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cache parameter of type {type(value).__name__} cannot be hashed: {value!r}")


def cache_key(name: str, params: dict, version: str = GENERATOR_VERSION) -> str:
    """sha256 of the canonical JSON of ``(name, params, version)``."""
    payload = json.dumps(
        {"name": name, "params": _canonical(params), "version": version}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def cache_path(name: str, params: dict, version: str = GENERATOR_VERSION) -> Path:
    """Where the array of ``(name, params, version)`` is stored."""
    return cache_dir() / f"{name}-{cache_key(name, params, version)}.npy"


def _load(path: Path, shape: tuple[int, ...] | None) -> np.ndarray | None:
    """The cached array, or None when missing, unreadable or of the wrong shape."""
    if not path.exists():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        log.warning("cache file %s is unreadable (%s); regenerating", path, first_line(error))
        return None
    if shape is not None and array.shape != tuple(shape):
        log.warning("cache file %s has shape %s, expected %s; regenerating", path, array.shape, tuple(shape))
        return None
    return array


def _save_atomically(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as temporary, open(temporary, "wb") as file:
        np.save(file, array, allow_pickle=False)
        file.flush()
        os.fsync(file.fileno())


def cached_array(
    name: str, params: dict, build: Callable[[], np.ndarray], cache: bool = True, *,
    shape: tuple[int, ...] | None = None, version: str = GENERATOR_VERSION,
) -> np.ndarray:
    """Return ``build()``, from the cache when a valid copy of ``(name, params, version)`` is stored there.

    ``shape``, when given, is the expected shape of the float32 result: a stored file of another shape counts as
    corrupt, and a shape too large for the memory left is a UserError before anything is built or loaded. A cache
    folder that cannot be written only costs the caching (a warning), never the result.
    """
    if shape is not None:
        require_memory(math.prod(shape) * np.dtype(np.float32).itemsize, f"{name} data of shape {tuple(shape)}")
    if not cache:
        return build()
    path = cache_path(name, params, version)
    array = _load(path, shape)
    if array is not None:
        log.debug("loaded %s from %s", name, path)
        return array
    array = build()
    try:
        _save_atomically(path, array)
    except OSError as error:
        log.warning("could not write cache file %s (%s)", path, error.strerror or first_line(error))
    return array


def check_field_sizes(n: int, frames: int, size: int) -> None:
    """A field dataset needs at least one sequence, one frame and one pixel a side."""
    if min(n, frames, size) < 1:
        raise UserError(f"n, frames and size must be positive, got n={n}, frames={frames}, size={size}")


def generated_field(name: str, options: type[GeneratorParams], overrides: dict, build: Callable[..., np.ndarray], *,
                    n: int, frames: int, size: int, channels: int, seed: int, cache: bool) -> np.ndarray:
    """An embedded field dataset ``(n, frames, channels, size, size)``: the sizes checked, ``overrides`` applied to
    the generator's options, and ``build(n, frames, size, seed, options)``
    cached under the sizes, the seed and every option."""
    check_field_sizes(n, frames, size)
    chosen = options.from_overrides(overrides)
    key = {"n": n, "frames": frames, "size": size, "seed": seed, **dataclasses.asdict(chosen)}
    return cached_array(name, key, lambda: build(n, frames, size, seed, chosen), cache,
                        shape=(n, frames, channels, size, size))
