"""Findings into the store (SQLite or PostgreSQL), batched, idempotent by event.id."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from sensor.model import FileOrigin, Finding, FlowRecord, HostEvent, HostFinding
from sensor.output.base import sinks
from sensor.output.jsonl import dumps
from sensor.store.db import FindingRow, FindingStore, FlowRow

BATCH = 200


FLOW_NS = uuid.UUID("0b1f4a52-3c0e-5f6a-8d1e-7a2b9c4d5e60")


def flow_row(observer: str, r: FlowRecord, record: dict[str, Any]) -> FlowRow:
    flow_id = uuid.uuid5(FLOW_NS, f"{observer}|{r.community_id}|{int(r.start * 1e6)}")
    return FlowRow(str(flow_id), r.community_id, r.start, r.end, r.src, r.dst, r.bytes[0], r.bytes[1], dumps(record))


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
        path=o.path if isinstance(o, FileOrigin) else o.source,
        record=dumps(record),
    )


@sinks.register("store")
class StoreSink:
    """Buffers rows and writes them in batches; `close` writes the rest."""

    name: ClassVar[str] = "store"

    def __init__(self, store: FindingStore, run_id: int, observer: str) -> None:
        self.store = store
        self.run_id = run_id
        self.observer = observer
        self.inserted = 0
        self.flows = 0
        self.host_events = 0
        self._rows: list[FindingRow] = []
        self._flows: list[FlowRow] = []
        self._host: list[HostEvent] = []
        self.host_findings = 0
        self._host_findings: list[tuple[HostFinding, str]] = []

    def write(self, item: object, record: dict[str, Any]) -> None:
        if isinstance(item, Finding):
            self._rows.append(row_of(item, record))
        elif isinstance(item, FlowRecord):
            self._flows.append(flow_row(self.observer, item, record))
        elif isinstance(item, HostFinding):
            self._host_findings.append((item, dumps(record)))
        elif isinstance(item, HostEvent):
            self._host.append(item)
            if len(self._host) >= 10 * BATCH:  # many small rows: larger batches
                self.flush()
            return
        else:
            return  # application objects go to --objects only
        if len(self._rows) + len(self._flows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self.inserted += self.store.add(self.run_id, self._rows)
            self._rows = []
        if self._flows:
            self.flows += self.store.add_flows(self.run_id, self._flows)
            self._flows = []
        if self._host:
            self.host_events += self.store.add_host_events(self.run_id, self._host)
            self._host = []
        if self._host_findings:
            self.host_findings += self.store.add_host_findings(self.run_id, self._host_findings)
            self._host_findings = []

    def close(self) -> None:
        self.flush()
