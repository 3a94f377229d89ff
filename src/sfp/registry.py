"""Named things (backbones, datasets, tasks, rewards, planners, nowcasts, baselines, centrings): one registry type
for all of them, pysteps-style: ``REGISTRY.get(name)`` (or ``REGISTRY[name]``), the family's contract stated once
where its registry is made."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from sfp.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Items of one ``kind`` by name; each name registered once, an unknown name a one-line :class:`UserError`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    @classmethod
    def of(cls, kind: str, items: dict[str, T]) -> Registry[T]:
        """A registry of ``kind`` holding ``items``."""
        registry: Registry[T] = cls(kind)
        for name, item in items.items():
            registry.add(name, item)
        return registry

    def add(self, name: str, item: T) -> T:
        """Register ``item`` under ``name`` (a programming error, not a user's, when the name is taken)."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        return lambda item: self.add(name, item)

    def get(self, name: str) -> T:
        """The item called ``name``."""
        if name not in self._items:
            raise UserError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._items[name]

    def items(self) -> list[tuple[str, T]]:
        """``(name, item)`` pairs, sorted by name."""
        return sorted(self._items.items())

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
