"""Findings into the store (SQLite or PostgreSQL), batched, idempotent by event.id."""

from __future__ import annotations

from typing import Any, ClassVar

from sensor.model import FileOrigin, Finding
from sensor.output.base import sinks
from sensor.output.jsonl import dumps
from sensor.store.db import FindingRow, FindingStore

BATCH = 200


def row_of(f: Finding, record: dict[str, Any]) -> FindingRow:
    o = f.origin
    return FindingRow(
        event_id=f.event_id,
        ts=f.timestamp,
        created=f.created,
        kind=str(f.kind),
        severity=f.severity,
        rule=f.rule,
        format=str(f.member.format),
        sha256=f.member.sha256,
        size=f.member.length,
        host=o.host if isinstance(o, FileOrigin) else None,
        path=o.path if isinstance(o, FileOrigin) else None,
        record=dumps(record),
    )


@sinks.register("store")
class StoreSink:
    """Buffers rows and writes them in batches; `close` writes the rest."""

    name: ClassVar[str] = "store"

    def __init__(self, store: FindingStore, run_id: int) -> None:
        self.store = store
        self.run_id = run_id
        self.inserted = 0
        self._rows: list[FindingRow] = []

    def write(self, finding: Finding, record: dict[str, Any]) -> None:
        self._rows.append(row_of(finding, record))
        if len(self._rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self.inserted += self.store.add(self.run_id, self._rows)
            self._rows = []

    def close(self) -> None:
        self.flush()
