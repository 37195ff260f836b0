"""Findings into the store (SQLite or PostgreSQL), batched, idempotent by event.id."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from sensor.model import FileOrigin, Finding, FlowRecord, HostEvent, HostFinding, Identity, ObjectRecord
from sensor.names import stable_id, text
from sensor.output.base import sinks
from sensor.output.jsonl import dumps

if TYPE_CHECKING:
    from sensor.store.db import FindingRow, FindingStore, FlowRow, ObjectRow

# sensor.store.db (SQLAlchemy, ~0.1 s) is imported by the functions that make rows: the ids below are also
# what `scan --no-db` stamps on its flow and object records, and that run never opens a store.

BATCH = 200


FLOW_NS = uuid.UUID("0b1f4a52-3c0e-5f6a-8d1e-7a2b9c4d5e60")
OBJECT_NS = uuid.UUID("6a0c2f3e-9b1d-5e47-a8c2-41f0d7e3b9a5")


def flow_id_of(observer: str, community_id: str, start: float) -> str:
    """The store's id of a flow: its sensor, community ID and first-packet time (µs)."""
    return stable_id(FLOW_NS, f"{observer}|{community_id}|{int(start * 1e6)}")


def flow_row(observer: str, r: FlowRecord, record: dict[str, Any]) -> FlowRow:
    from sensor.store.db import FlowRow

    flow_id = flow_id_of(observer, r.community_id, r.start)
    return FlowRow(flow_id, r.community_id, r.start, r.end, r.src, r.dst, r.bytes[0], r.bytes[1], dumps(record))


def object_ids(observer: str, r: ObjectRecord) -> tuple[str, str]:
    """(object id, flow id): an object is keyed by its flow, direction, index, layers and hash (stored once)."""
    o = r.origin
    flow_id = flow_id_of(observer, o.community_id, o.flow_start)
    key = f"{flow_id}|{int(o.client_to_server)}|{r.index}|{','.join(r.layers)}|{r.sha256}"
    ref = r.app.sensor if r.app is not None else None
    if ref is not None:  # another sensor's file: its own id tells files on one connection apart
        key += f"|{ref.sensor}|{ref.fuid or ''}|{ref.flow_id or ''}|{ref.file_id or ''}"
    return stable_id(OBJECT_NS, key), flow_id


def object_row(observer: str, r: ObjectRecord, record: dict[str, Any]) -> ObjectRow:
    from sensor.store.db import ObjectRow

    object_id, flow_id = object_ids(observer, r)
    name = text(r.name) if r.name is not None else None
    return ObjectRow(object_id, flow_id, r.origin.ts, r.sha256, r.size, name, r.mime_type, dumps(record))


def row_of(f: Finding, record: dict[str, Any]) -> FindingRow:
    from sensor.store.db import FindingRow

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
        host=text(o.host) if isinstance(o, FileOrigin) and o.host is not None else None,
        path=text(o.path if isinstance(o, FileOrigin) else o.source),
        record=dumps(record),
    )


@sinks.register("store")
class StoreSink:
    """Buffers rows and writes them in batches; `close` writes the rest."""

    name: ClassVar[str] = "store"
    kinds: tuple[type, ...] = (object,)  # every result, host events included

    def __init__(self, store: FindingStore, run_id: int, observer: str) -> None:
        self.store = store
        self.run_id = run_id
        self.observer = observer
        self.inserted = 0
        self.updated = 0
        self.flows = 0
        self.objects = 0
        self._objects: list[ObjectRow] = []
        self.host_events = 0
        self._rows: list[FindingRow] = []
        self._flows: list[FlowRow] = []
        self._host: list[HostEvent] = []
        self.host_findings = 0
        self._host_findings: list[tuple[HostFinding, str]] = []
        self.identities = 0
        self._identities: list[tuple[Identity, str]] = []

    def write(self, item: object, record: dict[str, Any]) -> None:
        if isinstance(item, Finding):
            self._rows.append(row_of(item, record))
        elif isinstance(item, FlowRecord):
            self._flows.append(flow_row(self.observer, item, record))
        elif isinstance(item, HostFinding):
            self._host_findings.append((item, dumps(record)))
        elif isinstance(item, ObjectRecord):
            self._objects.append(object_row(self.observer, item, record))
        elif isinstance(item, Identity):
            self._identities.append((item, dumps(record)))
        elif isinstance(item, HostEvent):
            self._host.append(item)
            if len(self._host) >= 10 * BATCH:  # many small rows: larger batches
                self.flush()
            return
        else:
            return
        if len(self._rows) + len(self._flows) + len(self._objects) + len(self._identities) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Everything buffered, in one transaction."""
        with self.store.batch():
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            stored = self.store.judge(self.run_id, self._rows)
            self.inserted += stored.new
            self.updated += stored.updated
            self._rows = []
        if self._objects:
            self.objects += self.store.add_objects(self.run_id, self._objects)
            self._objects = []
        if self._flows:
            self.flows += self.store.add_flows(self.run_id, self._flows)
            self._flows = []
        if self._host:
            self.host_events += self.store.add_host_events(self.run_id, self._host)
            self._host = []
        if self._identities:
            self.identities += self.store.add_identities(self.run_id, self._identities)
            self._identities = []
        if self._host_findings:
            judged = self.store.judge_host_findings(self.run_id, self._host_findings)
            self.host_findings += judged.new
            self.updated += judged.updated
            self._host_findings = []

    def close(self) -> None:
        self.flush()
