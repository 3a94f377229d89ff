"""Grid backbones by name: ``register`` a class once, ``build`` it anywhere from a config.

Every registered class is constructed as ``cls(in_frames=, out_frames=, channels=, **kwargs)`` and maps
``(B, in_frames, channels, H, W) -> (B, out_frames, channels, H, W)`` for any ``H, W``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from sfp.errors import UserError
from sfp.models.common import require_positive
from sfp.registry import Registry

BACKBONES: Registry[type[nn.Module]] = Registry("backbone")
_SHAPE_ARGS = ("in_frames", "out_frames", "channels")


def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding a backbone under ``name`` (a name can be registered only once)."""
    return BACKBONES.register(name)


def available() -> list[str]:
    """Names of all registered backbones, sorted."""
    return BACKBONES.names()


def options(name: str) -> dict[str, object]:
    """The keyword arguments ``name`` accepts beyond the shape arguments, with their defaults."""
    params = inspect.signature(BACKBONES.get(name)).parameters
    return {k: p.default for k, p in params.items() if k not in _SHAPE_ARGS and k != "self"}


def build(
    name: str, *, in_frames: int, out_frames: int, channels: int, seed: int | None = None, **kwargs: object
) -> nn.Module:
    """Construct backbone ``name``; with ``seed`` its initial weights depend on nothing else.

    Raises UserError for an unknown name, an unknown keyword (listing the accepted ones) or a bad size.
    """
    cls = BACKBONES.get(name)
    require_positive(in_frames=in_frames, out_frames=out_frames, channels=channels)
    accepted = options(name)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise UserError(
            f"backbone {name!r} got unknown option(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(accepted)) or 'none'}"
        )
    if seed is None:
        return cls(in_frames=in_frames, out_frames=out_frames, channels=channels, **kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(in_frames=in_frames, out_frames=out_frames, channels=channels, **kwargs)

