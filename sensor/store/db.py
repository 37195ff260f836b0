"""The findings store: open (SQLite file or PostgreSQL URL), record runs, add and query findings."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, Self

from sqlalchemy import Connection, Engine, Table, create_engine, delete, event, func, insert, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from sensor.errors import StoreError
from sensor.model import HostEvent, HostFinding, Identity, NetTuple
from sensor.names import stable_id, text
from sensor.store.prune import TABLES, PruneResult, prune_rows
from sensor.store.query import Query, record_matches, short_host
from sensor.store.schema import (
    SCHEMA_VERSION,
    findings,
    flows,
    host_events,
    host_findings,
    identities,
    incidents,
    metadata,
    objects,
    runs,
    schema_version,
    segments,
)

IDENTITY_NS = uuid.UUID("5d1f0c2e-8b4a-5e6f-9a7b-3c2d1e0f4a5b")
BUSY_TIMEOUT_MS = 10_000  # several workers may write one SQLite file; wait rather than fail
SETUP_LOCK_KEY = 0x5354_4757  # PostgreSQL advisory lock held while creating tables ("STGW")
PRUNE_LOCK_KEY = 0x5354_5052  # ... and while pruning, so sensors sharing a store prune one at a time ("STPR")
BATCH_ROWS = 500  # rows per INSERT statement; bounds memory when `rows` is a long generator


def identity_id(i: Identity) -> str:
    """The same claim, seen in the same packet, is stored once."""
    return stable_id(IDENTITY_NS, "|".join(map(str, (i.address, i.name, i.mac, i.source, i.ts, i.capture, i.packet))))


# The dialect's own INSERT is what offers ON CONFLICT DO NOTHING; other databases are refused.
_DIALECT_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


@dataclass(frozen=True, slots=True)
class FlowRow:
    """One `flows` row; the store adds `run_id`."""

    flow_id: str
    community_id: str
    start: float
    end: float
    src: str
    dst: str
    bytes_out: int
    bytes_in: int
    record: str


@dataclass(frozen=True, slots=True)
class FindingRow:
    """One `findings` row as the output layer hands it over; the store adds `run_id`."""

    event_id: str
    ts: float
    created: float
    kind: str
    severity: int
    rule: str
    format: str
    sha256: str
    size: int
    host: str | None
    path: str | None
    record: str


@dataclass(frozen=True, slots=True)
class ObjectRow:
    """One `objects` row (an application object, as Zeek's files.log); the store adds `run_id`."""

    object_id: str
    flow_id: str
    ts: float
    sha256: str
    size: int
    name: str | None
    mime_type: str | None
    record: str


@dataclass(frozen=True, slots=True)
class Stored:
    """What one write of findings did: rows new to the store, and rows whose judgement changed (replaced)."""

    new: int = 0
    updated: int = 0


@dataclass(frozen=True, slots=True)
class IncidentsStored:
    """What `correlate` did to the stored incidents: new, changed, and withdrawn (no longer derived)."""

    new: int = 0
    updated: int = 0
    withdrawn: int = 0


_ROW_FIELDS = tuple(f.name for f in fields(FindingRow))
# Parts of a finding's record that differ on every run without the judgement changing.
_VOLATILE = (("event", "created"), ("stagewatch", "threshold"), ("observer", "ip"))


class FindingStore:
    """Findings and runs in SQLite (embedded default) or PostgreSQL (shared by many sensors)."""

    def __init__(self, url_or_path: str, create: bool = True) -> None:
        """Open the store; with `create` False (the query commands) a store that does not exist is refused."""
        self.where, url = _resolve(url_or_path)
        sqlite_file = url.get_backend_name() == "sqlite" and not _is_memory(url)
        if not create and sqlite_file and not Path(url.database).is_file():
            raise StoreError(self.where, "no such store (scan, live or watch create one; check --db)")
        self._engine = self._open(url)
        self._conn: Connection | None = None  # the open transaction of a `batch()`
        try:
            self._prepare(create)
        except BaseException:
            self._engine.dispose()
            raise

    # -- opening ----------------------------------------------------------------------------

    def _open(self, url: URL) -> Engine:
        backend = url.get_backend_name()
        if backend not in _DIALECT_INSERT:
            raise StoreError(self.where, f"unsupported database '{backend}'; use SQLite or PostgreSQL")
        with self._errors():
            try:
                return _make_engine(url)
            except ImportError as exc:
                hint = " (pip install 'stagewatch[postgres]')" if backend == "postgresql" else ""
                raise StoreError(self.where, f"database driver not installed ({exc.name}){hint}") from exc

    def _prepare(self, create: bool = True) -> None:
        """Refuse a newer schema (and, unless `create`, a database without a store), then create what is
        missing and stamp the version."""
        # One transaction under a lock: workers opening a fresh store at once would otherwise
        # race between "table missing?" and CREATE TABLE.
        with self._errors(), self._engine.connect() as conn:
            _lock_for_setup(conn)
            self._check_version(conn)
            stored = _stored_version(conn)
            if stored is None and not create:
                conn.rollback()
                raise StoreError(self.where, "holds no stagewatch store (scan, live or watch create one; check --db)")
            metadata.create_all(conn)  # also adds tables a store of an older version lacks
            if stored is None:
                conn.execute(insert(schema_version).values(version=SCHEMA_VERSION))
            elif stored < SCHEMA_VERSION:
                conn.execute(update(schema_version).values(version=SCHEMA_VERSION))
            conn.commit()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every write inside is one transaction: a sink's flush (findings, flows, objects, host events and
        host findings) and the planned segment it completes are stored together or not at all."""
        if self._conn is not None:
            yield
            return
        with self._errors(), self._engine.begin() as conn:
            self._conn = conn
            try:
                yield
            finally:
                self._conn = None

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """The batch's connection inside `batch()`, else a transaction of its own."""
        if self._conn is not None:
            yield self._conn
            return
        with self._errors(), self._engine.begin() as conn:
            yield conn

    def _check_version(self, conn: Connection) -> None:
        stored = _stored_version(conn)
        if stored is not None and stored > SCHEMA_VERSION:
            raise StoreError(self.where, f"schema version {stored} is newer than this stagewatch ({SCHEMA_VERSION})")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn a database or OS error into a one-line StoreError naming this store."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise StoreError(self.where, _one_line(getattr(exc, "orig", None) or exc)) from exc
        except OSError as exc:
            raise StoreError(self.where, _one_line(exc)) from exc

    # -- runs -------------------------------------------------------------------------------

    def begin_run(self, observer: str, argv: list[str]) -> int:
        """Record the start of a run; returns its id for `add` and `end_run`."""
        values = {"started": time.time(), "observer": observer, "argv": json.dumps(argv), "status": "running"}
        with self._errors(), self._engine.begin() as conn:
            return int(conn.execute(insert(runs).values(**values)).inserted_primary_key[0])

    def end_run(self, run_id: int, stats: dict, status: str = "ok") -> None:
        """Record the end of a run with its statistics (`RunStats.as_dict()`) and status."""
        values = {"ended": time.time(), "stats": json.dumps(stats, sort_keys=True), "status": status}
        with self._errors(), self._engine.begin() as conn:
            found = conn.execute(update(runs).where(runs.c.id == run_id).values(**values)).rowcount
        if found == 0:
            raise StoreError(self.where, f"run {run_id} does not exist")

    def update_run_stats(self, run_id: int, stats: dict) -> None:
        """A long run's statistics so far (a live sensor writes them every stats interval)."""
        values = {"stats": json.dumps(stats, sort_keys=True)}
        with self._errors(), self._engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))

    def runs(self) -> list[dict[str, Any]]:
        """Every run, oldest first, with `argv` and `stats` decoded from JSON."""
        with self._errors(), self._engine.connect() as conn:
            rows = conn.execute(select(runs).order_by(runs.c.id)).mappings().all()
        return [_run_dict(row) for row in rows]

    # -- findings ---------------------------------------------------------------------------

    def add(self, run_id: int, rows: Iterable[FindingRow]) -> int:
        """Store findings (see `judge`); returns how many were new."""
        return self.judge(run_id, rows).new

    def judge(self, run_id: int, rows: Iterable[FindingRow]) -> Stored:
        """Store findings in one transaction. A finding already stored (same event.id: the same evidence) is
        judged again: its row takes this run's judgement (kind, severity, host, record) and run_id, the run
        that last judged it. Returns how many were new and how many changed."""
        return self._judge(findings, "event_id", (_row_params(run_id, row) for row in rows))

    def _judge(self, table: Table, key: str, params: Iterable[dict[str, Any]]) -> Stored:
        """Insert new rows, replace rows whose record (less what changes every run) differs, and give every row
        seen again this run's run_id; one transaction, in batches."""
        col = table.c[key]
        stmt = self._insert_new(table, key)
        new = updated = 0
        with self._tx() as conn:
            for batch in _batches(params, BATCH_ROWS):  # type: ignore[arg-type]
                by_id = {row[key]: row for row in batch}  # the last judgement of an id in a batch wins
                q = select(col, table.c.run_id, table.c.record).where(col.in_(list(by_id)))
                known = {r[0]: r for r in conn.execute(q)}
                fresh = [row for rid, row in by_id.items() if rid not in known]
                if fresh:
                    new += len(conn.execute(stmt, fresh).all())
                rejudged: dict[int, list[str]] = {}  # same judgement: only the run that last judged it changes
                for rid, row in by_id.items():
                    old = known.get(rid)
                    if old is None:
                        continue
                    if _judgement(old.record) == _judgement(row["record"]):
                        if old.run_id != row["run_id"]:
                            rejudged.setdefault(row["run_id"], []).append(rid)
                        continue
                    values = {name: value for name, value in row.items() if name != key}
                    conn.execute(update(table).where(col == rid).values(**values))
                    updated += 1
                for run, ids in rejudged.items():
                    conn.execute(update(table).where(col.in_(ids)).values(run_id=run))
        return Stored(new, updated)

    def replace_file(self, run_id: int, path: str, rows: list[FindingRow]) -> int:
        """A rescanned file: its earlier findings are deleted and `rows` stored, in one transaction."""
        stmt = self._insert_new(findings, "event_id")
        with self._errors(), self._engine.begin() as conn:
            conn.execute(delete(findings).where(findings.c.path == text(path), findings.c.host.is_not(None)))
            if not rows:
                return 0
            return len(conn.execute(stmt, [_row_params(run_id, row) for row in rows]).all())

    def _insert_new_rows(self, table: Table, key: str, params: Iterable[dict[str, Any]]) -> int:
        """Insert rows in one transaction, in batches, skipping keys already stored; returns how many were new."""
        stmt = self._insert_new(table, key)
        inserted = 0
        with self._tx() as conn:
            for batch in _batches(params, BATCH_ROWS):  # type: ignore[arg-type]
                inserted += len(conn.execute(stmt, batch).all())
        return inserted

    def add_flows(self, run_id: int, rows: Iterable[FlowRow]) -> int:
        """Insert flow records, skipping flow_ids already stored; returns how many were new."""
        params = ({**{f.name: getattr(r, f.name) for f in fields(FlowRow)}, "run_id": run_id} for r in rows)
        return self._insert_new_rows(flows, "flow_id", params)

    def add_host_events(self, run_id: int, events: Iterable[HostEvent]) -> int:
        """Insert host events, skipping ones already stored (same source, record, action); returns how many were new."""
        return self._insert_new_rows(host_events, "event_key", (_host_params(run_id, e) for e in events))

    def add_host_findings(self, run_id: int, items: Iterable[tuple[HostFinding, str]]) -> int:
        """Store host findings with their ECS lines, judged as `judge` does findings; returns how many were new."""
        return self.judge_host_findings(run_id, items).new

    def judge_host_findings(self, run_id: int, items: Iterable[tuple[HostFinding, str]]) -> Stored:
        """Host findings as `judge` stores findings: a rule hit judged again (tuning) replaces its row."""
        params = (
            {
                "finding_id": h.finding_id,
                "run_id": run_id,
                "ts": h.event.ts,
                "host": h.event.host,
                "host_ips": json.dumps(list(h.event.host_ips)),
                "rule_id": h.rule_id,
                "label": h.label,
                "operation": h.operation,
                "severity": h.severity,
                "event_key": host_event_key(h.event),
                "record": record,
            }
            for h, record in items
        )
        return self._judge(host_findings, "finding_id", params)

    def host_finding_records(self) -> list[dict[str, Any]]:
        """Every stored host finding's ECS record, oldest first."""
        with self._errors(), self._engine.connect() as conn:
            rows = conn.execute(select(host_findings.c.record).order_by(host_findings.c.ts)).all()
        return [json.loads(r[0]) for r in rows]

    def segment_done(self, run_id: int, key: str, chain: str, seq: int) -> None:
        """A planned segment whose results are all stored: a re-run skips it."""
        values = {"segment_key": key, "run_id": run_id, "chain": chain, "seq": seq, "finished": time.time()}
        self._insert_new_rows(segments, "segment_key", [values])

    def done_segments(self) -> set[str]:
        with self._errors(), self._engine.connect() as conn:
            return {r[0] for r in conn.execute(select(segments.c.segment_key))}

    def seen_object_records(self) -> list[dict[str, Any]]:
        """Objects another sensor (Zeek, Suricata) logged without keeping their bytes: their sizes and hashes still
        join incidents. Their records say `"scanned":false` (compact JSON, sensor/output/jsonl.dumps)."""
        q = select(objects.c.record).where(objects.c.record.like('%"scanned":false%')).order_by(objects.c.ts)
        with self._errors(), self._engine.connect() as conn:
            rows = conn.execute(q).all()
        return [rec for rec in (json.loads(r[0]) for r in rows) if rec.get("stagewatch", {}).get("scanned") is False]

    def flow_records(self) -> list[tuple[str, dict[str, Any]]]:
        """Every stored flow as (flow_id, its --flows record)."""
        with self._errors(), self._engine.connect() as conn:
            rows = conn.execute(select(flows.c.flow_id, flows.c.record).order_by(flows.c.start)).all()
        return [(r[0], json.loads(r[1])) for r in rows]

    def replace_incidents(self, items: Iterable[tuple[str, float, float, str | None, int, str]]) -> IncidentsStored:
        """`correlate`'s result is what the store's evidence gives now: incidents it derives again keep their id
        and `created` and take the new record; stored incidents it no longer derives (another window, a fixed
        home_net) are withdrawn. (id, start, end, host, score, record) rows; one transaction."""
        keys = ("incident_id", "start", "end", "host", "score", "record")
        rows = {row[0]: dict(zip(keys, row, strict=True)) for row in items}
        new = updated = 0
        with self._errors(), self._engine.begin() as conn:
            stored = dict(conn.execute(select(incidents.c.incident_id, incidents.c.record)).all())
            gone = [i for i in stored if i not in rows]
            for batch in _batches(gone, BATCH_ROWS):  # type: ignore[arg-type]
                conn.execute(delete(incidents).where(incidents.c.incident_id.in_(batch)))
            now = time.time()
            for iid, values in rows.items():
                if iid not in stored:
                    conn.execute(insert(incidents).values(**values, created=now))
                    new += 1
                elif stored[iid] != values["record"]:
                    conn.execute(update(incidents).where(incidents.c.incident_id == iid).values(**values))
                    updated += 1
        return IncidentsStored(new, updated, len(gone))

    def incident_records(self, since: float | None = None, host: str | None = None) -> list[dict[str, Any]]:
        """Stored incidents' ECS records, oldest first; `host` matches the name without its domain."""
        q = select(incidents.c.record, incidents.c.host).order_by(incidents.c.start)
        if since is not None:
            q = q.where(incidents.c.start >= since)
        with self._errors(), self._engine.connect() as conn:
            rows = conn.execute(q).all()
        out = [json.loads(r[0]) for r in rows]
        if host:
            want = short_host(host)
            out = [r for r in out if short_host(r.get("host", {}).get("name")) == want]
        return out

    def add_identities(self, run_id: int, rows: Iterable[tuple[Identity, str]]) -> int:
        """Insert identities (with their JSON records), skipping ones already stored; returns how many were new."""
        params = (
            {
                "identity_id": identity_id(i),
                "run_id": run_id,
                "ts": i.ts,
                "until": i.until,
                "address": i.address,
                "name": i.name,
                "mac": i.mac,
                "source": i.source,
                "record": record,
            }
            for i, record in rows
        )
        return self._insert_new_rows(identities, "identity_id", params)

    def identity_records(self) -> list[dict[str, Any]]:
        """Every stored identity's record, oldest first."""
        with self._errors(), self._engine.connect() as conn:
            q = select(identities.c.record).order_by(identities.c.ts, identities.c.identity_id)
            return [json.loads(r[0]) for r in conn.execute(q)]

    def add_objects(self, run_id: int, rows: Iterable[ObjectRow]) -> int:
        """Insert application objects, skipping object_ids already stored; returns how many were new."""
        params = ({**{f.name: getattr(r, f.name) for f in fields(ObjectRow)}, "run_id": run_id} for r in rows)
        return self._insert_new_rows(objects, "object_id", params)

    # -- read-only lookups for `report` and `explain` ------------------------------------------

    def host_finding_records_since(self, since: float | None = None) -> list[dict[str, Any]]:
        """Stored host findings' ECS records at or after `since` (epoch seconds), oldest first."""
        q = select(host_findings.c.record).order_by(host_findings.c.ts)
        if since is not None:
            q = q.where(host_findings.c.ts >= since)
        with self._errors(), self._engine.connect() as conn:
            return [json.loads(r[0]) for r in conn.execute(q)]

    def records_by_id(self, ids: Iterable[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """Findings, host findings, incidents and flows by exact id: {id: (table, record)}; unknown ids left out."""
        wanted = sorted(set(ids))
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        with self._errors(), self._engine.connect() as conn:
            for table, key in _ID_COLUMNS:
                for batch in _batches(wanted, BATCH_ROWS):  # type: ignore[arg-type]
                    rows = conn.execute(select(table.c[key], table.c.record).where(table.c[key].in_(batch)))
                    out.update((r[0], (table.name, json.loads(r[1]))) for r in rows)
        return out

    def match_id(self, prefix: str, limit: int = 10) -> list[tuple[str, str, dict[str, Any]]]:
        """Findings, incidents, host findings and flows whose id starts with `prefix`: (table, id, record), up to
        `limit`."""
        pattern = re.sub(r"([\\%_])", r"\\\1", prefix.lower()) + "%"  # ids are lower-case UUIDs; LIKE is literal here
        out: list[tuple[str, str, dict[str, Any]]] = []
        with self._errors(), self._engine.connect() as conn:
            for table, key in _ID_COLUMNS:
                q = select(table.c[key], table.c.record).where(table.c[key].like(pattern, escape="\\")).limit(limit)
                out.extend((table.name, r[0], json.loads(r[1])) for r in conn.execute(q))
        return out[:limit]

    def match_host_events(self, prefix: str, limit: int = 10) -> list[tuple[str, HostEvent]]:
        """Host events whose event_key (a SHA-1 hex) starts with `prefix`: (event_key, event), up to `limit`."""
        pattern = re.sub(r"([\\%_])", r"\\\1", prefix.lower()) + "%"
        q = select(host_events).where(host_events.c.event_key.like(pattern, escape="\\")).limit(limit)
        with self._errors(), self._engine.connect() as conn:
            return [(r["event_key"], _host_event(r)) for r in conn.execute(q.order_by(host_events.c.ts)).mappings()]

    def host_events_at(self, source: str, record_id: str, action: str | None = None) -> list[tuple[str, HostEvent]]:
        """Host events of one record of one source file (one action): (event_key, event), oldest first."""
        q = select(host_events).where(host_events.c.source == source, host_events.c.record_id == record_id)
        if action is not None:
            q = q.where(host_events.c.action == action)
        with self._errors(), self._engine.connect() as conn:
            rows = conn.execute(q.order_by(host_events.c.ts, host_events.c.event_key)).mappings()
            return [(r["event_key"], _host_event(r)) for r in rows]

    def host_event_flagged_by(self, finding_id: str) -> tuple[str, HostEvent] | None:
        """The host event a host finding flags: (event_key, event), or None when the store no longer holds it."""
        key = select(host_findings.c.event_key).where(host_findings.c.finding_id == finding_id).scalar_subquery()
        with self._errors(), self._engine.connect() as conn:
            row = conn.execute(select(host_events).where(host_events.c.event_key == key)).mappings().first()
        return None if row is None else (row["event_key"], _host_event(row))

    def host_findings_flagging(self, event_key: str) -> list[dict[str, Any]]:
        """ECS records of the host findings that flag the host event with this event_key, oldest first."""
        q = select(host_findings.c.record).where(host_findings.c.event_key == event_key).order_by(host_findings.c.ts)
        with self._errors(), self._engine.connect() as conn:
            return [json.loads(r[0]) for r in conn.execute(q)]

    def findings_in_flow(self, community_id: str, start: float, end: float) -> list[dict[str, Any]]:
        """Network findings carried by one flow: its community ID, seen between its first and last packet."""
        in_time = findings.c.ts.between(start - 1e-3, end + 1e-3)
        q = select(findings.c.record).where(in_time, findings.c.record.contains(community_id, autoescape=True))
        q = q.order_by(findings.c.ts)
        with self._errors(), self._engine.connect() as conn:
            records = [json.loads(r[0]) for r in conn.execute(q)]
        # The text match only narrows the rows: keep findings whose network.community_id is the flow's.
        return [r for r in records if r.get("network", {}).get("community_id") == community_id]

    def extent(self) -> dict[str, tuple[int, float | None]]:
        """{table: (rows, newest time)} of findings, host findings (their `ts`) and incidents (their `start`)."""
        cols = ((findings, findings.c.ts), (host_findings, host_findings.c.ts), (incidents, incidents.c.start))
        out: dict[str, tuple[int, float | None]] = {}
        with self._errors(), self._engine.connect() as conn:
            for table, col in cols:
                rows, newest = conn.execute(select(func.count(), func.max(col)).select_from(table)).one()
                out[table.name] = (int(rows), newest)
        return out

    def findings_with_sha256(self, sha256: str) -> list[dict[str, Any]]:
        """Every stored finding whose carved member has this SHA-256 (a staged file and its transfer), oldest first."""
        q = select(findings.c.record).where(findings.c.sha256 == sha256).order_by(findings.c.ts)
        with self._errors(), self._engine.connect() as conn:
            return [json.loads(r[0]) for r in conn.execute(q)]

    def incidents_citing(self, ref: str) -> list[dict[str, Any]]:
        """Stored incidents whose evidence list names `ref` (an event.id or host finding id), oldest first."""
        q = select(incidents.c.record).where(incidents.c.record.contains(ref, autoescape=True))
        with self._errors(), self._engine.connect() as conn:
            records = [json.loads(r[0]) for r in conn.execute(q.order_by(incidents.c.start))]
        # The text match only narrows the rows: keep incidents that really list the id as evidence.
        return [r for r in records if any(e.get("id") == ref for e in _evidence(r))]

    def host_events(self, action: str | None = None) -> list[HostEvent]:
        """Stored host events, oldest first (optionally of one action)."""
        q = select(host_events).order_by(host_events.c.ts)
        if action is not None:
            q = q.where(host_events.c.action == action)
        with self._errors(), self._engine.connect() as conn:
            return [_host_event(r) for r in conn.execute(q).mappings()]

    def flow_count(self) -> int:
        with self._errors(), self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(flows)).scalar_one())

    def _insert_new(self, table: Table, key: str) -> Any:
        """INSERT ... ON CONFLICT (key) DO NOTHING RETURNING key, in the dialect's own syntax.

        RETURNING lists only the rows actually inserted: an exact count even when another worker is
        writing the same rows at the same time (a before/after count is not).
        """
        return _insert_ignoring_duplicates(self._engine.dialect.name, table, key).returning(table.c[key])

    def findings(
        self, since: float | None = None, kind: str | None = None, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield stored ECS records (parsed JSON), oldest first; `since` is epoch seconds, inclusive."""
        query = select(findings.c.record).order_by(findings.c.ts, findings.c.event_id)
        if since is not None:
            query = query.where(findings.c.ts >= since)
        if kind is not None:
            query = query.where(findings.c.kind == kind)
        if limit is not None:
            query = query.limit(limit)
        with self._errors(), self._engine.connect() as conn:
            for (record,) in conn.execution_options(yield_per=BATCH_ROWS).execute(query):
                yield json.loads(record)

    def query(self, table_name: str, q: Query) -> list[dict[str, Any]]:
        """Records of `findings`, `host_findings`, `flows` or `objects` that pass the filters, oldest first;
        with `limit`, the newest (or the most severe with sort=severity) `limit` of them."""
        table = _QUERY_TABLES[table_name]
        c = table.c
        time_col = c.start if table is flows else c.ts
        where: list[Any] = []
        if q.since is not None:
            where.append(time_col >= q.since)
        if q.until is not None:
            where.append(time_col <= q.until)
        if q.kind is not None and "kind" in c:
            where.append(c.kind == q.kind)
        if q.format is not None and "format" in c:
            where.append(c.format == q.format.lower())
        if q.min_severity is not None and "severity" in c:
            where.append(c.severity >= q.min_severity)
        if q.community_id is not None:
            in_record = c.record.contains(q.community_id, autoescape=True)
            where.append(c.community_id == q.community_id if "community_id" in c else in_record)
        if q.flow is not None and "flow_id" in c:
            where.append(c.flow_id.startswith(q.flow.lower(), autoescape=True))
        if q.sha256 is not None:
            where.append(c.record.contains(q.sha256, autoescape=True))
        if q.ip is not None:
            where.append(c.record.contains(q.ip, autoescape=True))
        if q.host is not None:
            where.append(func.lower(c.record).contains(short_host(q.host), autoescape=True))
        newest = q.sort == "severity" and "severity" in c
        key = next(iter(table.primary_key.columns))  # ties broken alike on every database
        order = (c.severity.desc(), time_col.desc(), key.desc()) if newest else (time_col.desc(), key.desc())
        query = select(c.record).where(*where).order_by(*order)
        out: list[dict[str, Any]] = []
        with self._errors(), self._engine.connect() as conn:
            for (text,) in conn.execution_options(yield_per=BATCH_ROWS).execute(query):
                record = json.loads(text)
                if record_matches(q, record):
                    out.append(record)
                    if q.limit is not None and len(out) >= q.limit:
                        break
        return out if newest else out[::-1]

    def set_threshold_counts(self, counts: dict[str, tuple[str, int]]) -> int:
        """Write each kept alert's fold count into its record (`stagewatch.threshold`); returns rows changed."""
        changed = 0
        with self._errors(), self._engine.begin() as conn:
            for event_id, (name, count) in counts.items():
                row = conn.execute(select(findings.c.record).where(findings.c.event_id == event_id)).first()
                if row is None:
                    continue  # a re-run that stored the alert in an earlier run keeps that run's record
                record = json.loads(row.record)
                record.setdefault("stagewatch", {})["threshold"] = {"name": name, "count": count}
                conn.execute(
                    update(findings)
                    .where(findings.c.event_id == event_id)
                    .values(record=json.dumps(record, separators=(",", ":"), ensure_ascii=False))
                )
                changed += 1
        return changed

    def count(self) -> int:
        """Number of stored findings."""
        with self._errors(), self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(findings)).scalar_one())

    # -- retention --------------------------------------------------------------------------

    def prune(self, before: float, dry_run: bool = False) -> PruneResult:
        """Delete what is older than `before` (epoch seconds) in one transaction; rules in sensor/store/prune.py."""
        with self._errors(), self._engine.connect() as conn:
            _lock_for_prune(conn)
            result = prune_rows(conn, before)
            if dry_run:
                conn.rollback()  # the exact counts, nothing changed
            else:
                conn.commit()
        return replace(result, dry_run=dry_run)

    def reclaim_space(self, full: bool = True) -> None:
        """Give freed pages back: SQLite VACUUM (rewrites the file: only when `full`), PostgreSQL VACUUM (ANALYZE)."""
        if self._engine.dialect.name == "sqlite":
            if not full or self.file_size() is None:
                return
            # VACUUM cannot run in a transaction; under WAL it writes the new pages to the WAL, and the
            # checkpoint is what shrinks the main file and empties the WAL.
            statements = ["VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"]
        else:
            # Plain VACUUM runs beside readers and writers and makes the space reusable; VACUUM FULL
            # would return it to the OS but locks each table exclusively while it copies it.
            quote = self._engine.dialect.identifier_preparer.quote
            statements = [f"VACUUM (ANALYZE) {', '.join(quote(name) for name in TABLES)}"]
        with self._errors(), self._engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                conn.exec_driver_sql(statement)

    def file_size(self) -> int | None:
        """Bytes of the SQLite file and its WAL; None for PostgreSQL or an in-memory store."""
        url = self._engine.url
        if url.get_backend_name() != "sqlite" or _is_memory(url):
            return None
        files = (Path(url.database), Path(url.database + "-wal"))
        return sum(f.stat().st_size for f in files if f.exists())

    def close(self) -> None:
        """Release every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- helpers -----------------------------------------------------------------------------------


def _resolve(url_or_path: str) -> tuple[str, URL]:
    """Where to name in errors, and the URL to open; a plain path becomes an absolute SQLite URL."""
    if url_or_path == ":memory:":
        return url_or_path, make_url("sqlite://")
    if "://" not in url_or_path:
        path = Path(url_or_path).expanduser().absolute()
        _check_sqlite_path(url_or_path, path)
        return url_or_path, URL.create("sqlite", database=str(path))
    try:
        url = make_url(url_or_path)
    except SQLAlchemyError as exc:
        raise StoreError(url_or_path, _one_line(exc)) from exc
    if url.get_backend_name() == "sqlite" and not _is_memory(url):
        _check_sqlite_path(url.database, Path(url.database))
        return url.database, url
    return url.render_as_string(hide_password=True), url


def _check_sqlite_path(where: str, path: Path) -> None:
    # SQLite would only say "unable to open database file"; say which part is wrong.
    if not path.parent.is_dir():
        raise StoreError(where, f"directory {path.parent} does not exist")
    if path.is_dir():
        raise StoreError(where, "is a directory, not a database file")


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _make_engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    # One in-memory database lives only as long as its one connection: share it.
    pool = {"poolclass": StaticPool} if _is_memory(url) else {}
    engine = create_engine(url, connect_args={"check_same_thread": False}, **pool)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _lock_for_setup(conn: Connection) -> None:
    """Serialize schema setup across processes until this transaction ends."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # takes the write lock now; others wait busy_timeout
    else:
        conn.execute(select(func.pg_advisory_xact_lock(SETUP_LOCK_KEY)))


def _lock_for_prune(conn: Connection) -> None:
    """SQLite: the write lock before the evidence is read, so no writer slips in before the deletes.

    PostgreSQL: an advisory lock, so sensors sharing one store prune one at a time.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.execute(select(func.pg_advisory_xact_lock(PRUNE_LOCK_KEY)))


def _stored_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table(schema_version.name):
        return None
    return conn.execute(select(func.max(schema_version.c.version))).scalar()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers (findings, correlate) run while a scan writes; NORMAL is safe under WAL."""
    cursor = dbapi_connection.cursor()
    try:
        # First, so that switching a fresh file to WAL waits for a concurrent opener.
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # PostgreSQL enforces findings.run_id -> runs.id; make SQLite behave the same.
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _insert_ignoring_duplicates(dialect: str, table: Table = findings, key: str = "event_id") -> Any:
    """INSERT INTO table ... ON CONFLICT (key) DO NOTHING, in the dialect's own syntax."""
    return _DIALECT_INSERT[dialect](table).on_conflict_do_nothing(index_elements=[table.c[key]])


def _batches(rows: Iterable[FindingRow], size: int) -> Iterator[list[FindingRow]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def _row_params(run_id: int, row: FindingRow) -> dict[str, Any]:
    params = {name: getattr(row, name) for name in _ROW_FIELDS}
    params["run_id"] = run_id
    return params


def _run_dict(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["argv"] = json.loads(out["argv"])
    out["stats"] = None if out["stats"] is None else json.loads(out["stats"])
    return out


_QUERY_TABLES = {"findings": findings, "host_findings": host_findings, "flows": flows, "objects": objects}


def _judgement(record: str) -> str:
    """A stored record without what changes on every run (event.created, the threshold count, observer.ip)."""
    r = json.loads(record)
    for outer, inner in _VOLATILE:
        part = r.get(outer)
        if isinstance(part, dict):
            part.pop(inner, None)
    return json.dumps(r, sort_keys=True)


# Tables that hold an ECS record under one id column: what `explain` resolves ids in.
_ID_COLUMNS = (
    (findings, "event_id"),
    (incidents, "incident_id"),
    (host_findings, "finding_id"),
    (flows, "flow_id"),
    (objects, "object_id"),
)


def _evidence(incident: dict[str, Any]) -> list[dict[str, Any]]:
    return incident.get("stagewatch", {}).get("incident", {}).get("evidence", [])


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float, flag: str = "--since") -> float:
    """Epoch seconds from `--since` (or `flag`): a span back from `now` (30s, 15m, 1h, 2d) or an ISO-8601 time."""
    spec = text.strip()
    if match := _RELATIVE.fullmatch(spec):
        return now - float(match[1]) * _UNIT_SECONDS[match[2]]
    try:
        moment = datetime.fromisoformat(spec)
    except ValueError:
        raise ValueError(f"{flag}: cannot read '{text}'; use 15m, 1h, 2d or an ISO time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # records' @timestamp is UTC, so read bare times as UTC
    return moment.timestamp()


def host_event_key(e: HostEvent) -> str:
    """One audit serial gives several events (EXECVE and its CREATEs): the key tells them apart."""
    parts = (e.source, e.record_id, e.action, e.code, e.target_file or "", e.loaded_image or "")
    return hashlib.sha1("\x1f".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def _host_params(run_id: int, e: HostEvent) -> dict[str, Any]:
    n = e.net
    params = {
        "event_key": host_event_key(e),
        "run_id": run_id,
        "ts": e.ts,
        "host": e.host,
        "host_ips": json.dumps(list(e.host_ips)),
        "provider": e.provider,
        "code": e.code,
        "action": e.action,
        "image": e.image,
        "command_line": e.command_line,
        "parent_image": e.parent_image,
        "user": e.user,
        "pid": e.pid,
        "ppid": e.ppid,
        "target_file": e.target_file,
        "loaded_image": e.loaded_image,
        "src": n.src if n else None,
        "sport": n.sport if n else None,
        "dst": n.dst if n else None,
        "dport": n.dport if n else None,
        "transport": n.transport if n else None,
        "hashes": e.hashes,
        "label": e.label,
        "source": e.source,
        "record_id": e.record_id,
    }
    # log text is stored as text: a lone surrogate (unpaired UTF-16) or NUL would be refused by the database
    return {k: text(v) if isinstance(v, str) else v for k, v in params.items()}


def _host_event(r: Any) -> HostEvent:
    net = None
    if r["src"] is not None:
        net = NetTuple(r["src"], r["sport"] or 0, r["dst"] or "", r["dport"] or 0, r["transport"] or "tcp")
    return HostEvent(
        ts=r["ts"],
        source=r["source"],
        record_id=r["record_id"],
        provider=r["provider"],
        code=r["code"],
        action=r["action"],
        host=r["host"],
        host_ips=tuple(json.loads(r["host_ips"])),
        image=r["image"],
        command_line=r["command_line"],
        parent_image=r["parent_image"],
        user=r["user"],
        pid=r["pid"],
        ppid=r["ppid"],
        target_file=r["target_file"],
        loaded_image=r["loaded_image"],
        net=net,
        hashes=r["hashes"],
        label=r["label"],
    )
