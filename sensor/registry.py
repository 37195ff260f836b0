"""Explicit, loud registries for the plug-in seams (verifiers, decoders, engines, sinks)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from sensor.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> plug-in class; a duplicate or unknown name raises instead of passing silently."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self.modules: dict[str, str] = {}  # name -> module that registered it

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise RegistryError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            self.modules[name] = getattr(obj, "__module__", "?")
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items))
            raise RegistryError(f"unknown {self.kind} {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(sorted(self._items.items()))

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items


def import_submodules(package: str, path: list[str], skip: tuple[str, ...] = ("base",)) -> None:
    """Import every module of a plug-in package so that adding a file registers it."""
    for info in pkgutil.iter_modules(path):
        if info.name not in skip and not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
