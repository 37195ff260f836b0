"""The sink seam: each sink writes findings somewhere and is closed at the end of a run."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from sensor.model import Finding, FlowRecord
from sensor.registry import Registry


class Sink(Protocol):
    """Receives every finding and ended flow of a run (with its ECS record) and is closed once."""

    name: ClassVar[str]
    kinds: tuple[type, ...]  # the results it writes: the caller builds a record only for what some sink wants

    def write(self, item: Finding | FlowRecord, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


sinks: Registry[type] = Registry("sink")
