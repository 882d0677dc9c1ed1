"""Named registries: the one way models, datasets, losses, optimizers and evaluators are
registered (`@registry.register("name")`) and looked up (an unknown name lists the valid
ones)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from jaxcx.config import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> entry for one kind of thing (`what`, e.g. 'model.name' for messages)."""

    def __init__(self, what: str, on_first_lookup: Callable[[], None] | None = None):
        self.what = what
        self._entries: dict[str, T] = {}
        self._on_first_lookup = on_first_lookup

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator adding an entry under `name`; a name is registered once."""
        def decorate(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.what} {name!r} is already registered")
            self._entries[name] = entry
            return entry
        return decorate

    def names(self) -> list[str]:
        if self._on_first_lookup is not None:
            self._on_first_lookup()  # e.g. import the modules that register built-ins
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def get(self, name: str) -> T:
        """The entry of `name`; a ConfigError listing the valid names if there is none."""
        if name not in self:
            raise ConfigError(f"unknown {self.what} {name!r}; valid: {', '.join(self.names())}")
        return self._entries[name]
