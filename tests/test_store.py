"""The findings store on real SQLite files and a real PostgreSQL server (tests/pgserver.py)."""

from __future__ import annotations

import calendar
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from sensor.errors import StoreError
from sensor.store.db import FindingRow, FindingStore, _insert_ignoring_duplicates, parse_since
from sensor.store.schema import SCHEMA_VERSION, metadata


def make_row(event_id: str, ts: float, kind: str = "alert", host: str | None = "ws-17") -> FindingRow:
    """A finding row whose record is a small ECS line carrying the same id, time and kind."""
    stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    record = {
        "@timestamp": stamp,
        "event": {"id": event_id, "kind": kind, "module": "stagewatch", "severity": 73},
        "rule": {"name": "gzip_member", "ruleset": "compression"},
        "file": {"size": 5120, "hash": {"sha256": "ab" * 32}},
        "stagewatch": {"format": "gzip", "verified": True},
    }
    return FindingRow(
        event_id=event_id,
        ts=ts,
        created=ts + 1.0,
        kind=kind,
        severity=73,
        rule="gzip_member",
        format="gzip",
        sha256="ab" * 32,
        size=5120,
        host=host,
        path=None,
        record=json.dumps(record, sort_keys=True),
    )


def ids(records: list[dict]) -> list[str]:
    return [r["event"]["id"] for r in records]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "stagewatch.db"


@pytest.fixture
def store(db_path: Path):
    with FindingStore(str(db_path)) as s:
        yield s


# -- opening and schema --------------------------------------------------------------------


def test_plain_path_creates_tables_and_one_version_row(db_path: Path) -> None:
    FindingStore(str(db_path)).close()
    FindingStore(str(db_path)).close()  # reopening must not stamp a second row
    with sqlite3.connect(db_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        versions = conn.execute("SELECT version FROM schema_version").fetchall()
    assert tables == {
        "schema_version",
        "runs",
        "findings",
        "flows",
        "host_events",
        "host_findings",
        "incidents",
        "objects",
        "identities",
        "segments",
    }
    assert versions == [(SCHEMA_VERSION,)]


def test_a_version_1_store_gains_the_host_tables_and_keeps_its_findings(db_path: Path) -> None:
    with FindingStore(str(db_path)) as s:
        s.add(s.begin_run("sensor-a", []), [make_row("e1", 100.0)])
    with sqlite3.connect(db_path) as conn:  # what stagewatch wrote before host events existed
        conn.execute("DROP TABLE host_findings")
        conn.execute("DROP TABLE host_events")
        conn.execute("UPDATE schema_version SET version = 1")
    with FindingStore(str(db_path)) as s:
        assert s.count() == 1
    with sqlite3.connect(db_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"host_events", "host_findings"} <= tables
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_sqlite_url_opens_the_same_file(db_path: Path) -> None:
    with FindingStore(str(db_path)) as s:
        s.add(s.begin_run("sensor-a", []), [make_row("e1", 100.0)])
    with FindingStore(f"sqlite:///{db_path}") as s:
        assert s.count() == 1


def test_wal_mode_and_connection_pragmas(store: FindingStore, db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:  # journal_mode=WAL is stored in the file itself
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with store._engine.connect() as conn:  # the others are per connection: the store's own
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_newer_schema_version_is_refused(db_path: Path) -> None:
    FindingStore(str(db_path)).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError) as info:
        FindingStore(str(db_path))
    assert str(info.value) == (
        f"{db_path}: schema version {SCHEMA_VERSION + 1} is newer than this stagewatch ({SCHEMA_VERSION})"
    )


def test_not_a_database_names_the_path_and_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    content = b"this is a text file, not SQLite\n" * 128
    path.write_bytes(content)
    with pytest.raises(StoreError) as info:
        FindingStore(str(path))
    assert str(info.value) == f"{path}: file is not a database"
    assert info.value.where == str(path)
    assert path.read_bytes() == content


def test_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "stagewatch.db"
    with pytest.raises(StoreError) as info:
        FindingStore(str(path))
    assert str(info.value) == f"{path}: directory {path.parent} does not exist"
    assert not (tmp_path / "no").exists()


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        FindingStore(str(tmp_path))
    assert str(info.value) == f"{tmp_path}: is a directory, not a database file"


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(StoreError) as info:
        FindingStore("mysql://user:secret@db.example/sw")
    assert str(info.value) == "mysql://user:***@db.example/sw: unsupported database 'mysql'; use SQLite or PostgreSQL"


def test_memory_store_keeps_its_data_across_calls() -> None:
    with FindingStore(":memory:") as s:
        run = s.begin_run("sensor-a", ["scan"])
        assert s.add(run, [make_row("e1", 1.0), make_row("e2", 2.0)]) == 2
        assert s.count() == 2
        assert ids(list(s.findings())) == ["e1", "e2"]


# -- runs ----------------------------------------------------------------------------------


def test_runs_record_start_end_argv_and_stats(store: FindingStore) -> None:
    first = store.begin_run("sensor-a", ["scan", "day1.pcap", "--db", "x.db"])
    second = store.begin_run("sensor-a", ["live", "--interface", "eth1"])
    store.end_run(first, {"files": 1, "candidates": {"gzip": 4}})
    runs = store.runs()
    assert [r["id"] for r in runs] == [first, second]
    assert second == first + 1
    assert runs[0]["argv"] == ["scan", "day1.pcap", "--db", "x.db"]
    assert runs[0]["stats"] == {"files": 1, "candidates": {"gzip": 4}}
    assert runs[0]["status"] == "ok"
    assert runs[0]["ended"] >= runs[0]["started"]
    assert runs[1]["status"] == "running"
    assert runs[1]["ended"] is None and runs[1]["stats"] is None
    assert runs[1]["observer"] == "sensor-a"


def test_end_run_with_a_status(store: FindingStore) -> None:
    run = store.begin_run("sensor-a", [])
    store.end_run(run, {}, status="interrupted")
    assert store.runs()[0]["status"] == "interrupted"


def test_end_run_of_unknown_run(store: FindingStore, db_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        store.end_run(42, {})
    assert str(info.value) == f"{db_path}: run 42 does not exist"


# -- findings ------------------------------------------------------------------------------


def test_add_is_idempotent_by_event_id(store: FindingStore) -> None:
    run = store.begin_run("sensor-a", ["scan"])
    rows = [make_row("e1", 10.0), make_row("e2", 11.0), make_row("e3", 12.0)]
    assert store.add(run, rows) == 3
    assert store.add(run, rows) == 0
    assert store.count() == 3
    # A second run seeing two old findings and one new one stores only the new one.
    rerun = store.begin_run("sensor-a", ["scan"])
    assert store.add(rerun, [rows[0], make_row("e4", 13.0), rows[2]]) == 1
    assert store.count() == 4


def test_add_counts_a_repeat_inside_one_call_once(store: FindingStore) -> None:
    run = store.begin_run("sensor-a", [])
    assert store.add(run, [make_row("e1", 1.0), make_row("e1", 1.0), make_row("e2", 2.0)]) == 2
    assert store.count() == 2


def test_add_takes_a_generator_larger_than_one_batch(store: FindingStore) -> None:
    run = store.begin_run("sensor-a", [])
    assert store.add(run, (make_row(f"e{i:05d}", float(i)) for i in range(1234))) == 1234
    assert store.add(run, (make_row(f"e{i:05d}", float(i)) for i in range(1200, 1300))) == 66
    assert store.count() == 1300
    assert store.add(run, []) == 0


def test_add_is_one_transaction(store: FindingStore, db_path: Path) -> None:
    run = store.begin_run("sensor-a", [])

    def rows():
        yield make_row("e1", 1.0)
        raise RuntimeError("producer died")

    with pytest.raises(RuntimeError):
        store.add(run, rows())
    assert store.count() == 0


def test_add_to_unknown_run_is_a_store_error(store: FindingStore, db_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        store.add(99, [make_row("e1", 1.0)])
    assert str(info.value) == f"{db_path}: FOREIGN KEY constraint failed"
    assert store.count() == 0


def test_rows_are_stored_column_for_column(store: FindingStore, db_path: Path) -> None:
    run = store.begin_run("sensor-a", [])
    row = make_row("e1", 1700000000.123456, kind="event", host=None)
    store.add(run, [row])
    with sqlite3.connect(db_path) as conn:
        stored = conn.execute(
            "SELECT event_id, run_id, ts, created, kind, severity, rule, format, sha256, size,"
            " host, path, record FROM findings"
        ).fetchall()
    assert stored == [
        ("e1", run, 1700000000.123456, 1700000001.123456, "event", 73, "gzip_member", "gzip", "ab" * 32)
        + (5120, None, None, row.record)
    ]


def test_findings_ordered_by_ts_then_event_id(store: FindingStore) -> None:
    run = store.begin_run("sensor-a", [])
    store.add(run, [make_row("c", 30.0), make_row("b", 10.0), make_row("a", 30.0), make_row("d", 20.0)])
    records = list(store.findings())
    assert ids(records) == ["b", "d", "a", "c"]
    assert records[0]["@timestamp"] == "1970-01-01T00:00:10.000000Z"
    assert records[0]["rule"] == {"name": "gzip_member", "ruleset": "compression"}


def test_findings_since_is_inclusive(store: FindingStore) -> None:
    run = store.begin_run("sensor-a", [])
    store.add(run, [make_row("e1", 100.0), make_row("e2", 200.0), make_row("e3", 300.0)])
    assert ids(list(store.findings(since=200.0))) == ["e2", "e3"]
    assert ids(list(store.findings(since=200.5))) == ["e3"]
    assert ids(list(store.findings(since=301.0))) == []
    assert ids(list(store.findings(since=0.0))) == ["e1", "e2", "e3"]


def test_findings_by_kind_and_limit(store: FindingStore) -> None:
    run = store.begin_run("sensor-a", [])
    store.add(
        run,
        [
            make_row("a1", 1.0),
            make_row("v1", 2.0, kind="event"),
            make_row("a2", 3.0),
            make_row("a3", 4.0),
            make_row("v2", 5.0, kind="event"),
        ],
    )
    assert ids(list(store.findings(kind="event"))) == ["v1", "v2"]
    assert ids(list(store.findings(kind="alert", limit=2))) == ["a1", "a2"]
    assert ids(list(store.findings(since=2.0, kind="alert", limit=1))) == ["a2"]
    assert ids(list(store.findings(limit=0))) == []


def test_since_from_parse_since_selects_the_last_hour(store: FindingStore) -> None:
    now = 1_800_000_000.0
    run = store.begin_run("sensor-a", [])
    store.add(run, [make_row("old", now - 7200), make_row("edge", now - 3600), make_row("new", now - 60)])
    assert ids(list(store.findings(since=parse_since("1h", now)))) == ["edge", "new"]


# -- parse_since ---------------------------------------------------------------------------

NOW = 1_795_363_200.0  # 2026-11-22T16:00:00Z


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("30s", NOW - 30),
        ("15m", NOW - 900),
        ("1h", NOW - 3600),
        ("2d", NOW - 172_800),
        ("1.5h", NOW - 5400),
        (" 0m ", NOW),
        ("2026-11-22T16:00:00Z", float(calendar.timegm((2026, 11, 22, 16, 0, 0)))),
        ("2026-11-22T15:00:00Z", NOW - 3600),
        ("2026-11-22T18:00:00+02:00", NOW),
        ("2026-11-22T10:30:00-05:30", NOW),
        ("2026-11-22T16:00:00.250000Z", NOW + 0.25),
        ("2026-11-22T16:00:00", NOW),  # no offset: UTC, like the records' @timestamp
        ("2026-11-22", NOW - 16 * 3600),
    ],
)
def test_parse_since(spec: str, expected: float) -> None:
    assert parse_since(spec, NOW) == expected


@pytest.mark.parametrize("spec", ["", "15", "1w", "-1h", "1 hour", "yesterday", "h1", "2026-13-01T00:00:00Z"])
def test_parse_since_rejects(spec: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_since(spec, NOW)
    assert str(info.value) == f"--since: cannot read '{spec}'; use 15m, 1h, 2d or an ISO time"


# -- PostgreSQL ----------------------------------------------------------------------------


def test_schema_compiles_for_postgresql_with_portable_types() -> None:
    ddl = str(CreateTable(metadata.tables["findings"]).compile(dialect=postgresql.dialect()))
    assert "event_id VARCHAR(36) NOT NULL" in ddl
    assert "ts FLOAT NOT NULL" in ddl
    assert "size BIGINT NOT NULL" in ddl
    assert "record TEXT NOT NULL" in ddl
    assert "FOREIGN KEY(run_id) REFERENCES runs (id)" in ddl


def test_insert_ignores_duplicates_on_postgresql() -> None:
    sql = str(_insert_ignoring_duplicates("postgresql").compile(dialect=postgresql.dialect()))
    assert sql.startswith("INSERT INTO findings (event_id, run_id, ts,")
    assert sql.endswith("ON CONFLICT (event_id) DO NOTHING")


def test_postgresql_round_trip(pg_url: str) -> None:
    with FindingStore(pg_url) as s:
        with s._engine.begin() as conn:  # a clean slate: the tests own this database
            conn.execute(
                text(
                    "TRUNCATE findings, flows, objects, identities, host_findings, host_events, incidents, segments, "
                    "runs"
                )
            )
        run = s.begin_run("sensor-a", ["scan"])
        rows = [make_row("c", 30.0), make_row("a", 30.0), make_row("b", 10.0, kind="event")]
        assert s.add(run, rows) == 3
        assert s.add(run, rows) == 0
        assert ids(list(s.findings(since=20.0))) == ["a", "c"]
        assert ids(list(s.findings(kind="event"))) == ["b"]
        s.end_run(run, {"files": 1})
        assert s.runs()[0]["stats"] == {"files": 1}
    with FindingStore(pg_url) as s:
        assert s.count() == 3
