"""Retention: delete what is older than a cutoff without leaving any kept incident's evidence dangling.

Rules (README "Retention"): ages are event times (findings.ts, flows.end, host_events.ts,
host_findings.ts, incidents.end), the times `--since` filters on. An incident goes as a whole when
its end is before the cutoff. A row an incident that stays names as evidence stays, however old; so
does the host event a remaining host finding flags. A run goes once no row refers to it and it is
either emptied by this prune or ended before the cutoff; a run still 'running' never goes (a live
sensor's run lasts weeks, and its next insert needs it). Segments go with their run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Table, and_, delete, or_, select

from sensor.store.schema import (
    findings,
    flows,
    host_events,
    host_findings,
    identities,
    incidents,
    objects,
    runs,
    segments,
)

PRUNE_BATCH = 500  # ids per SELECT page and per DELETE ... IN (...): under SQLite's oldest variable limit (999)
TABLES = (
    "incidents",
    "findings",
    "flows",
    "objects",
    "identities",
    "host_findings",
    "host_events",
    "segments",
    "runs",
)  # pruning order


@dataclass(frozen=True, slots=True)
class TableCounts:
    """One table's rows: deleted, and older than the cutoff but kept (a kept incident's evidence, or referenced)."""

    deleted: int = 0
    kept: int = 0


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What one prune deleted and kept, per table; `dry_run` results were rolled back."""

    before: float
    incidents: TableCounts = TableCounts()
    findings: TableCounts = TableCounts()
    flows: TableCounts = TableCounts()
    objects: TableCounts = TableCounts()
    identities: TableCounts = TableCounts()
    host_findings: TableCounts = TableCounts()
    host_events: TableCounts = TableCounts()
    segments: TableCounts = TableCounts()
    runs: TableCounts = TableCounts()
    dry_run: bool = False

    def tables(self) -> list[tuple[str, TableCounts]]:
        """(table name, counts) in the order the prune works through them."""
        return [(name, getattr(self, name)) for name in TABLES]

    @property
    def deleted(self) -> int:
        return sum(c.deleted for _, c in self.tables())

    def summary(self) -> str:
        """One line for a log: what went, and which older rows stayed (evidence, or still referenced)."""
        gone = ", ".join(f"{c.deleted} {name}" for name, c in self.tables() if c.deleted) or "nothing"
        kept = ", ".join(f"{c.kept} {name}" for name, c in self.tables() if c.kept)
        verb = "would delete" if self.dry_run else "deleted"
        return f"retention: {verb} {gone}" + (f"; older but still needed: {kept}" if kept else "")


def prune_rows(conn: Connection, before: float) -> PruneResult:
    """Delete rows older than `before` (epoch seconds) on `conn`; the caller commits or rolls back."""
    evidence = _kept_evidence(conn, before)
    n_incidents = conn.execute(delete(incidents).where(incidents.c.end < before)).rowcount
    emptied: set[int] = set()
    f = _sweep(conn, findings, "event_id", "ts", [findings.c.ts < before], evidence, emptied)
    old_flow = [flows.c.start < before, flows.c.end < before]  # paged by start: that column is indexed
    fl = _sweep(conn, flows, "flow_id", "start", old_flow, evidence, emptied)
    # Objects are no incident's evidence: they go by their own time, like Zeek's files.log ages.
    ob = _sweep(conn, objects, "object_id", "ts", [objects.c.ts < before], set(), emptied)
    # Identities age by the time they were said, as the evidence they name hosts for does.
    ids = _sweep(conn, identities, "identity_id", "ts", [identities.c.ts < before], set(), emptied)
    hf = _sweep(conn, host_findings, "finding_id", "ts", [host_findings.c.ts < before], evidence, emptied)
    # Host findings that stay keep the event they flag (after the sweep above: the survivors only).
    flagged = {r[0] for r in conn.execute(select(host_findings.c.event_key).distinct())}

    def keep_event(r: Row[Any]) -> bool:
        return r.pk in flagged or _event_ref(r.source, r.record_id, r.action) in evidence

    old_event = [host_events.c.ts < before]
    he = _sweep(conn, host_events, "event_key", "ts", old_event, keep_event, emptied, ("source", "record_id", "action"))
    n_segments, run_counts = _prune_runs(conn, before, emptied)
    return PruneResult(
        before=before,
        incidents=TableCounts(n_incidents, 0),
        findings=f,
        flows=fl,
        objects=ob,
        identities=ids,
        host_findings=hf,
        host_events=he,
        segments=TableCounts(n_segments, 0),
        runs=run_counts,
    )


def _kept_evidence(conn: Connection, before: float) -> set[str]:
    """Every evidence id that incidents staying after the prune cite, of any kind.

    Kinds name different tables (network/staged_file: findings, host_rule: host_findings, flow: flows,
    host_event: host_events by source#record#action); ids never collide across them, so one set serves.
    Read all staying incidents rather than only those starting near the cutoff: evidence times went
    through ISO text and may differ from the rows' own by a little.
    """
    ids: set[str] = set()
    cols = (incidents.c.incident_id, incidents.c.record)
    for batch in _pages(conn, incidents, "incident_id", "incident_id", [incidents.c.end >= before], cols):
        for row in batch:
            record = json.loads(row.record)
            for e in record.get("stagewatch", {}).get("incident", {}).get("evidence", []):
                if e.get("id"):
                    ids.add(str(e["id"]))
    return ids


def _sweep(
    conn: Connection,
    table: Table,
    key_name: str,
    order_name: str,
    old: Sequence[ColumnElement[bool]],
    keep: set[str] | Callable[[Row[Any]], bool],
    emptied: set[int],
    extra: Sequence[str] = (),
) -> TableCounts:
    """Delete the `old` rows of `table` that `keep` does not claim, page by page; note their runs in `emptied`.

    `keep` is a set of ids (the row's `key_name` column), or a test of the row (`pk`, `run_id`, `extra` columns).
    """
    keeps = (lambda r: r.pk in keep) if isinstance(keep, set) else keep
    key = table.c[key_name]
    deleted = kept = 0
    cols = (key.label("pk"), table.c.run_id, *(table.c[name] for name in extra))
    for batch in _pages(conn, table, key_name, order_name, old, cols):
        gone = [r for r in batch if not keeps(r)]
        kept += len(batch) - len(gone)
        if gone:
            deleted += conn.execute(delete(table).where(key.in_([r.pk for r in gone]))).rowcount
            emptied.update(r.run_id for r in gone)
    return TableCounts(deleted, kept)


def _pages(
    conn: Connection,
    table: Table,
    key_name: str,
    order_name: str,
    where: Sequence[ColumnElement[bool]],
    cols: Sequence[Any],
) -> Iterator[list[Row[Any]]]:
    """Rows matching `where` in pages of PRUNE_BATCH, ordered by (order, key); `key_name` must be unique.

    Keyset paging, not OFFSET and not one open cursor: each page is a fresh SELECT that starts after
    the last row seen, so deleting the rows of a page before reading the next one is safe.
    """
    key, order = table.c[key_name], table.c[order_name]
    same = key_name == order_name
    query = select(*cols, order.label("_order"), key.label("_key")).select_from(table).where(*where)
    last: tuple[Any, Any] | None = None
    while True:
        q = query
        if last is not None:
            after = key > last[1] if same else or_(order > last[0], and_(order == last[0], key > last[1]))
            q = q.where(after)
        order_by = (key,) if same else (order, key)
        batch = list(conn.execute(q.order_by(*order_by).limit(PRUNE_BATCH)))
        if not batch:
            return
        last = (batch[-1]._order, batch[-1]._key)
        yield batch


def _prune_runs(conn: Connection, before: float, emptied: set[int]) -> tuple[int, TableCounts]:
    """Delete runs no row refers to any more (emptied now, or ended before the cutoff) and their segments."""
    referenced: set[int] = set()
    for table in (findings, flows, objects, identities, host_events, host_findings):
        referenced.update(r[0] for r in conn.execute(select(table.c.run_id).distinct()))
    candidates: list[int] = []
    running: set[int] = set()
    for r in conn.execute(select(runs.c.id, runs.c.status, runs.c.started, runs.c.ended)):
        if r.id in emptied or (r.ended if r.ended is not None else r.started) < before:
            candidates.append(r.id)
            if r.status == "running":
                running.add(r.id)  # a live sensor's run: its next insert needs the row, however old its start
    gone = sorted(set(candidates) - referenced - running)
    n_segments = n_runs = 0
    for i in range(0, len(gone), PRUNE_BATCH):
        batch = gone[i : i + PRUNE_BATCH]
        n_segments += conn.execute(delete(segments).where(segments.c.run_id.in_(batch))).rowcount
        n_runs += conn.execute(delete(runs).where(runs.c.id.in_(batch))).rowcount
    return n_segments, TableCounts(n_runs, len(candidates) - len(gone))


def _event_ref(source: str, record_id: str, action: str) -> str:
    """A host event's evidence id: the text of sensor.correlate.inputs.event_ref (a layer the store cannot import)."""
    return f"{source}#{record_id}#{action}"


__all__ = ["PRUNE_BATCH", "TABLES", "PruneResult", "TableCounts", "prune_rows"]
