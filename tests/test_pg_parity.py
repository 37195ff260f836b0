"""SQLite and PostgreSQL hold the same rows after the same run: the demo's captures, staged tree and host
telemetry scanned into each (a real PostgreSQL server), then correlated; every table compared row by row."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, select, text

from sensor.cli import main as cli_main
from sensor.store.db import FindingStore
from sensor.store.query import Query
from sensor.store.schema import findings, flows, host_events, host_findings, incidents, objects

ROOT = Path(__file__).resolve().parents[1]
KEYS = {
    findings: "event_id",
    flows: "flow_id",
    objects: "object_id",
    host_events: "event_key",
    host_findings: "finding_id",
}


def _canonical(row: dict) -> str:
    if "record" in row:
        record = json.loads(row["record"])
        record.get("event", {}).pop("created", None)  # event.created: when the record was produced
        row["record"] = record
    return json.dumps(row, sort_keys=True, default=str)


def _rows(url: str) -> dict[str, dict[str, str]]:
    engine = create_engine(url)
    out: dict[str, dict[str, str]] = {}
    with engine.connect() as conn:
        for table, key in KEYS.items():
            cols = [c for c in table.c if c.name not in ("run_id", "created")]  # when written: not content
            rows = conn.execute(select(*cols)).mappings()
            out[table.name] = {str(r[key]): _canonical(dict(r)) for r in rows}
        c = incidents.c
        rows = conn.execute(select(c.incident_id, c.host, c.score, c.record)).mappings()
        out["incidents"] = {r["incident_id"]: _canonical(dict(r)) for r in rows}
    engine.dispose()
    return out


def test_sqlite_and_postgresql_hold_the_same_rows(tmp_path, rule_cache, pg_url):
    for script, args in (
        ("samples/make_staged.py", [tmp_path / "staged"]),
        ("pcaps/make_samples.py", [tmp_path / "pcaps"]),
        ("samples/make_hostevents.py", [tmp_path / "telemetry", tmp_path / "staged"]),
    ):
        subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], check=True, capture_output=True)
    cfg = tmp_path / "sw.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "test"\n')
    FindingStore(pg_url).close()  # tables created
    engine = create_engine(pg_url)
    with engine.begin() as conn:  # the session's database may hold another test's rows
        conn.execute(
            text("TRUNCATE findings, flows, objects, identities, host_findings, host_events, incidents, segments, runs")
        )
    engine.dispose()
    sqlite_url = f"sqlite:///{tmp_path / 'sw.db'}"
    inputs = [str(tmp_path / "staged"), str(tmp_path / "pcaps"), str(tmp_path / "telemetry")]
    for url in (sqlite_url, pg_url):
        scan = ["-q", "scan", *inputs, "--db", url, "--config", str(cfg), "--flows", str(tmp_path / "flows.jsonl")]
        scan += ["--objects", str(tmp_path / "objects.jsonl")]
        assert cli_main([*scan, "--host-from-path", "/staged/([^/]+)/", "--home-net", "10.0.0.0/8,2001:db8::/48"]) == 0
        hostmap = str(tmp_path / "telemetry" / "host-map.csv")
        assert cli_main(["-q", "correlate", "--db", url, "--host-map", hostmap]) == 0
    lite, pg = _rows(sqlite_url), _rows(pg_url)
    for table in (*[t.name for t in KEYS], "incidents"):
        assert lite[table].keys() == pg[table].keys(), table
        assert lite[table] == pg[table], table
    assert len(lite["findings"]) > 10 and len(lite["incidents"]) == 2 and len(lite["host_events"]) >= 3
    assert len(lite["objects"]) >= 5
    # the query commands' filters read the same on both databases
    some = next(json.loads(r)["record"] for r in lite["findings"].values() if "source" in json.loads(r)["record"])
    queries = [
        ("findings", Query()),
        ("findings", Query(kind="alert", sort="severity", limit=3)),
        ("findings", Query(ip=some["source"]["ip"])),
        ("findings", Query(host="ws-01", min_severity=50)),
        ("findings", Query(format="zip", sha256=some["file"]["hash"]["sha256"].upper())),
        ("findings", Query(community_id=some["network"]["community_id"], protocol=some["network"].get("protocol"))),
        ("host_findings", Query(host="lnx-12")),
        ("flows", Query(ip="2001:db8::10")),
        ("objects", Query(protocol="smtp")),
    ]
    with FindingStore(sqlite_url, create=False) as a, FindingStore(pg_url, create=False) as b:
        for table, q in queries:
            got_a = [r["event"]["id"] for r in a.query(table, q)]
            got_b = [r["event"]["id"] for r in b.query(table, q)]
            assert got_a == got_b, (table, q)
        assert a.query("flows", Query(ip="2001:db8::10"))
    # re-scans and correlations replace on PostgreSQL as on SQLite
    for url in (sqlite_url, pg_url):
        rescan = ["-q", "scan", *inputs, "--db", url, "--config", str(cfg), "--home-net", "10.1.2.0/24"]
        assert cli_main([*rescan, "--host-from-path", "/staged/([^/]+)/"]) == 0
        assert cli_main(["-q", "correlate", "--db", url, "--window", "10s"]) == 0
    lite, pg = _rows(sqlite_url), _rows(pg_url)
    for table in ("findings", "incidents"):
        assert lite[table] == pg[table], table
