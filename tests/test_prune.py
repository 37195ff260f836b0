"""Retention: `stagewatch prune` and the live/watch `retention` setting, on real SQLite and PostgreSQL stores.

The store is seeded the way a sensor fills it: captures, staged folders and Sysmon logs of three
attacks at different times scanned by the real CLI in separate runs, then `correlate`. One attack is
long over (60 days), one straddles the 30-day cutoff (its staging is older, its upload newer), one is
from yesterday. After the prune: exact row counts per table, every evidence id of every incident left
resolves to a row, no host finding or row points at a missing host event or run, a second prune
deletes nothing, `--dry-run` changes nothing, and VACUUM shrinks the SQLite file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from sensor.cli import main as cli_main
from sensor.config import load_settings
from sensor.errors import ConfigError
from sensor.store.db import FindingStore, FlowRow
from sensor.store.retention import DAY, RetentionTimer
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
from tests import appbuild as ab
from tests import hostbuild as hb
from tests.builders import gzip_named, sample_text
from tests.netbuild import Conv, write_pcap
from tests.netbuild import segments as packets

TABLES = (incidents, findings, flows, objects, identities, host_findings, host_events, segments, runs)
PY = r"C:\Python312\python.exe"
TEMP = r"C:\Users\bob\AppData\Local\Temp"
BULK = 1500  # old flows of a long-gone sensor run: enough pages that VACUUM visibly shrinks the file


def iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Attack:
    """One Windows host staging a gzip with python.exe and sending it out: what Sysmon, the disk and the wire saw."""

    def __init__(self, n: int, seed: int) -> None:
        self.host, self.ip = f"WS-{n}", f"10.1.2.{n}"
        self.name = f"stage_{n}.gz"
        self.member = gzip_named(sample_text(60_000, seed), f"export_{n}.csv")
        self.pid, self.record = 4000 + n, 100 * n
        self.events: list[hb.WinEvent] = []
        self.pkts: list = []

    def _event(self, e: hb.WinEvent) -> None:
        self.record += 1
        self.events.append(hb.WinEvent(e.event_id, e.time, e.data, computer=f"{self.host}.corp.example",
                                       record_id=self.record))  # fmt: skip

    def stage(self, t: float) -> None:
        """python.exe gzips a file into %TEMP% at `t` (Sysmon 1 and 11)."""
        cmd = f"python.exe -c \"import gzip;gzip.open(r'{TEMP}\\{self.name}','wb').write(open('x','rb').read())\""
        self._event(hb.process(0, iso(t), PY, cmd, r"C:\Windows\explorer.exe", self.pid, "CORP\\bob"))
        self._event(hb.file_create(0, iso(t + 10), PY, f"{TEMP}\\{self.name}", self.pid))
        self.staged_at = t + 10

    def post(self, t: float, sport: int, opened: float | None = None) -> None:
        """The member POSTed raw over HTTP at `t`, and the Sysmon 3 of that connection (logged at `opened`)."""
        req = ab.http_request("POST", "/upload", "drop.example", self.member)
        conv = ab.http_conversation([(req, ab.http_response(200, b"ok"))], client=self.ip, server="203.0.113.9",
                                    client_port=sport, start=t)  # fmt: skip
        self.pkts += packets(conv)
        conn = hb.connection(
            0, iso(t + 0.5 if opened is None else opened), PY, self.pid, (self.ip, sport), ("203.0.113.9", 80)
        )
        conn.data["SourceHostname"] = f"{self.host}.corp.example"  # type: ignore[index]
        self._event(conn)

    def tls_upload(self, t: float, sport: int) -> None:
        """The member sent again over TLS at `t`: no member visible, only a flow whose size fits the file."""
        sends = ab.tls_lookalike([("c2s", len(self.member))], seed=sport)
        self.pkts += packets(Conv(self.ip, sport, "198.51.100.44", 443, sends=sends, start=t))

    def noise(self, t: float) -> None:
        """A gzip web page coming in (an event, never evidence) and an installer starting (no rule hit)."""
        page = gzip_named(sample_text(20_000, 77), "index.html")
        conv = Conv(self.ip, 51_000, "192.0.2.80", 80, start=t, sends=[
            ("c2s", b"GET / HTTP/1.1\r\nHost: news\r\n\r\n"),
            ("s2c", ab.http_response(200, page, [("Content-Encoding", "gzip")])),
        ])  # fmt: skip
        self.pkts += packets(conv)
        msi = r"C:\Windows\System32\msiexec.exe"
        self._event(hb.process(0, iso(t + 1), msi, "msiexec.exe /i setup.msi", r"C:\Windows\explorer.exe", 901, "x"))

    def write(self, root: Path) -> Path:
        """capture, staged file (mtime as Sysmon saw it) and Sysmon XML under root/<host>; returns that folder."""
        base = root / self.host
        staged = base / "staged" / self.host / "Users/bob/AppData/Local/Temp" / self.name
        staged.parent.mkdir(parents=True)
        staged.write_bytes(self.member)
        os.utime(staged, (self.staged_at, self.staged_at))
        (base / "telemetry").mkdir()
        (base / "telemetry" / "sysmon.xml").write_text(hb.events_xml(self.events))
        (base / "capture").mkdir()
        write_pcap(base / "capture" / "day.pcap", sorted(self.pkts, key=lambda p: float(p.time)))
        return base


def seed(tmp: Path, url: str, cache: Path) -> float:
    """Three attacks scanned in three runs, an empty run, then `correlate`; returns the 30-day cutoff they straddle."""
    now = time.time()
    cut = now - 30 * DAY
    old, edge, new = Attack(31, 1), Attack(32, 2), Attack(33, 3)
    old.stage(cut - 30 * DAY)  # long over: the whole incident goes
    old.post(cut - 30 * DAY + 60, 50_031)
    old.noise(cut - 30 * DAY + 120)
    edge.stage(cut - 500)  # staged before the cutoff, a TLS copy before it, the HTTP upload after it
    edge.tls_upload(cut - 300, 50_132)
    edge.post(cut + 200, 50_032, opened=cut - 100)  # a slow upload: Sysmon logged the connection as it opened
    new.stage(now - DAY)
    new.post(now - DAY + 60, 50_033)
    cfg = tmp / "sw.toml"
    cfg.write_text(f'cache_dir = "{cache}"\nobserver = "test"\n')
    common = ["--db", url, "--config", str(cfg), "--home-net", "10.0.0.0/8", "--host-from-path", "/staged/([^/]+)/"]
    for attack in (old, edge, new):
        base = attack.write(tmp / "in")
        inputs = [str(base / d) for d in ("capture", "staged", "telemetry")]
        assert cli_main(["-q", "scan", *inputs, *common]) == 0
    quiet = tmp / "in" / "quiet"
    quiet.mkdir()
    (quiet / "notes.txt").write_text("nothing compressed here\n")
    assert cli_main(["-q", "scan", str(quiet), *common]) == 0  # a recent run that found nothing: it stays
    hostmap = tmp / "hosts.csv"
    hostmap.write_text("name,ip\n" + "".join(f"{a.host},{a.ip}\n" for a in (old, edge, new)))
    assert cli_main(["-q", "correlate", "--db", url, "--host-map", str(hostmap)]) == 0
    with FindingStore(url) as store:  # a live sensor still running, whose old flows have all aged out
        run = store.begin_run("span-01", ["live", "-i", "eth1"])
        store.add_flows(run, (_old_flow(i, cut - 40 * DAY) for i in range(BULK)))
    return cut


def _old_flow(i: int, t: float) -> FlowRow:
    record = json.dumps({"event": {"start": iso(t)}, "padding": "x" * 1500})
    return FlowRow(f"bulk-{i:08d}", f"1:bulk{i}", t, t + 1, "10.9.0.1", "198.51.100.9", 100, 200, record)


def checkpointed_size(db: Path) -> int:
    """The SQLite file's size once its WAL is written back into it and emptied."""
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    with FindingStore(str(db)) as store:
        size = store.file_size()
    assert size is not None and size == db.stat().st_size
    return size


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        out = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES}
    engine.dispose()
    return out


def dump(url: str) -> dict[str, list[str]]:
    """Every row of every pruned table, as text: equal dumps mean nothing changed."""
    engine = create_engine(url)
    with engine.connect() as conn:
        out = {t.name: sorted(repr(tuple(r)) for r in conn.execute(select(t))) for t in TABLES}
    engine.dispose()
    return out


def check_integrity(url: str) -> None:
    """Every evidence id resolves; no host finding without its host event; no row without its run."""
    engine = create_engine(url)
    with engine.connect() as conn:
        ids = {
            "network": {r[0] for r in conn.execute(select(findings.c.event_id))},
            "flow": {r[0] for r in conn.execute(select(flows.c.flow_id))},
            "host_rule": {r[0] for r in conn.execute(select(host_findings.c.finding_id))},
            "host_event": {
                f"{r.source}#{r.record_id}#{r.action}"
                for r in conn.execute(select(host_events.c.source, host_events.c.record_id, host_events.c.action))
            },
        }
        ids["staged_file"] = ids["network"]
        cited = 0
        for (record,) in conn.execute(select(incidents.c.record)):
            for e in json.loads(record)["stagewatch"]["incident"]["evidence"]:
                assert e["id"] in ids[e["kind"]], e
                cited += 1
        assert cited > 0
        event_keys = {r[0] for r in conn.execute(select(host_events.c.event_key))}
        assert {r[0] for r in conn.execute(select(host_findings.c.event_key))} <= event_keys
        run_ids = {r[0] for r in conn.execute(select(runs.c.id))}
        for t in (findings, flows, host_events, host_findings, segments):
            assert {r[0] for r in conn.execute(select(t.c.run_id).distinct())} <= run_ids, t.name
    engine.dispose()


# What the prune at the cutoff must do, per table: (deleted, older but kept).
#   incidents: the 60-day-old one goes; the straddling one stays (its end is after the cutoff).
#   findings: the old attack's upload and staged file, and the gzip page; the straddling staged file stays.
#   flows: the old attack's two, the straddling HTTP upload is new, its TLS copy is cited; the bulk go.
#   host findings: the old attack's python.exe rule hits (process and file creation); the straddling ones
#   are cited. Host events: the old attack's 4 (the installer included); of the straddling attack, the
#   process and file creation stay (the cited host findings flag them) and so does the connection (cited).
#   Runs: the old attack's run, emptied; the live run stays (still running).
EXPECTED = {
    "incidents": (1, 0),
    "findings": (3, 1),
    "flows": (2 + BULK, 1),
    "objects": (0, 0),
    "identities": (0, 0),
    "host_findings": (2, 2),
    "host_events": (4, 3),
    "segments": (0, 0),
    "runs": (1, 1),
}


def _table_lines(out: str) -> dict[str, tuple[int, int]]:
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in EXPECTED:
            rows[parts[0]] = (int(parts[1].replace(",", "")), int(parts[2].replace(",", "")))
    return rows


def test_prune_on_sqlite_keeps_evidence_and_shrinks_the_file(tmp_path, rule_cache, capsys):
    db = tmp_path / "sw.db"
    seed(tmp_path, str(db), rule_cache)
    url = f"sqlite:///{db}"
    before = counts(url)
    assert before["incidents"] == 3 and before["runs"] == 5
    check_integrity(url)
    state = dump(url)
    capsys.readouterr()

    assert cli_main(["prune", "--older-than", "30d", "--db", str(db), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert _table_lines(out) == EXPECTED and "dry run: nothing was deleted" in out
    assert dump(url) == state  # the dry run rolled back

    size = checkpointed_size(db)  # the main file alone: what VACUUM must shrink
    assert cli_main(["prune", "--older-than", "30d", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert _table_lines(out) == EXPECTED, out
    after = counts(url)
    assert {t: before[t] - after[t] for t in before} == {t: d for t, (d, _) in EXPECTED.items()}
    check_integrity(url)
    with FindingStore(str(db)) as store:
        shrunk = store.file_size()
        assert size is not None and shrunk is not None and shrunk < size - BULK * 1500
        assert f"reclaimed {size - shrunk:,} bytes ({size:,} -> {shrunk:,}" in out
        again = store.prune(time.time() - 30 * DAY)
        assert again.deleted == 0
        kept_incidents = store.incident_records()
    assert [r["host"]["name"].split(".")[0] for r in kept_incidents] == ["WS-32", "WS-33"]


def test_prune_on_postgresql(tmp_path, rule_cache, pg_url):
    FindingStore(pg_url).close()  # tables created
    engine = create_engine(pg_url)
    with engine.begin() as conn:  # the session's database may hold another test's rows
        conn.execute(
            text("TRUNCATE findings, flows, objects, identities, host_findings, host_events, incidents, segments, runs")
        )
    engine.dispose()
    seed(tmp_path, pg_url, rule_cache)
    before = counts(pg_url)
    state = dump(pg_url)
    with FindingStore(pg_url) as store:
        dry = store.prune(time.time() - 30 * DAY, dry_run=True)
        assert dump(pg_url) == state and dry.dry_run
        assert {name: (c.deleted, c.kept) for name, c in dry.tables()} == EXPECTED
    assert cli_main(["-q", "prune", "--older-than", "30d", "--db", pg_url]) == 0  # VACUUM (ANALYZE) included
    after = counts(pg_url)
    assert {t: before[t] - after[t] for t in before} == {t: d for t, (d, _) in EXPECTED.items()}
    check_integrity(pg_url)
    with FindingStore(pg_url) as store:
        assert store.prune(time.time() - 30 * DAY).deleted == 0
        assert store.file_size() is None


def test_bad_spans_are_usage_errors(tmp_path):
    db = str(tmp_path / "sw.db")
    for bad in ("30x", "", "0d", "=-3d", "nan", "inf"):
        flag = ["--older-than=" + bad.lstrip("=")] if bad.startswith("=") else ["--older-than", bad]
        assert cli_main(["prune", *flag, "--db", db]) == 2, bad
    with pytest.raises(SystemExit) as exc:
        cli_main(["prune", "--db", db])  # --older-than is required
    assert exc.value.code == 2
    cfg = tmp_path / "c.toml"
    cfg.write_text('retention = "30d"\n')
    assert load_settings(cfg).retention == 30 * DAY and load_settings().retention is None
    cfg.write_text('retention = "soon"\n')
    with pytest.raises(ConfigError, match="retention: 'soon'"):
        load_settings(cfg)


def test_no_vacuum_deletes_but_leaves_the_file_as_large(tmp_path, capsys):
    db = tmp_path / "sw.db"
    with FindingStore(str(db)) as store:
        run = store.begin_run("old-sensor", ["scan"])
        store.add_flows(run, (_old_flow(i, time.time() - 40 * DAY) for i in range(300)))
        store.end_run(run, {})
    size = checkpointed_size(db)
    assert cli_main(["prune", "--older-than", "30d", "--db", str(db), "--no-vacuum"]) == 0
    assert _table_lines(capsys.readouterr().out)["flows"] == (300, 0)
    assert counts(f"sqlite:///{db}")["flows"] == 0 and checkpointed_size(db) == size  # freed pages, kept for reuse


def test_the_retention_timer_prunes_at_start_then_daily(tmp_path):
    """Real clock values: a prune at the first tick, none until a day has passed, then the next."""
    with FindingStore(str(tmp_path / "sw.db")) as store:
        run = store.begin_run("test", ["watch"])
        now = time.time()
        store.add_flows(run, [_old_flow(1, now - 31 * DAY), _old_flow(2, now - 29 * DAY - 60)])
        timer = RetentionTimer(store, 30 * DAY)
        first = timer.tick(now)
        assert first is not None and (first.flows.deleted, first.runs.deleted) == (1, 0)  # the run is running
        assert timer.tick(now + 60) is None and timer.tick(now + DAY - 1) is None
        second = timer.tick(now + DAY)  # a day later the other flow is 31 days old too
        assert second is not None and second.flows.deleted == 1
        assert store.flow_count() == 0 and [r["id"] for r in store.runs()] == [run]
    with pytest.raises(ValueError):
        RetentionTimer(store, 0)


def test_live_applies_retention_at_start(tmp_path, rule_cache):
    """`stagewatch live` on the loopback interface prunes before it captures; its own new run stays."""
    db = tmp_path / "sw.db"
    with FindingStore(str(db)) as store:
        run = store.begin_run("old-sensor", ["live"])
        store.add_flows(run, [_old_flow(1, time.time() - 90 * DAY)])
        store.end_run(run, {})
    cfg = tmp_path / "sw.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "test"\nretention = "30d"\n')
    cmd = [sys.executable, "-m", "sensor", "live", "-i", "lo", "--db", str(db), "--config", str(cfg)]
    err = tmp_path / "live.err"
    with open(err, "w") as sink:
        proc = subprocess.Popen([*cmd, "--stats-interval", "1s"], stderr=sink)
        try:
            deadline = time.monotonic() + 30
            while "capturing on" not in err.read_text() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    text_err = err.read_text()
    if "cannot capture" in text_err or "CAP_NET_RAW" in text_err:
        pytest.skip(f"no packet capture here: {text_err.strip()}")
    assert proc.returncode == 0, text_err
    assert "retention: deleted 1 flows, 1 runs" in text_err
    with FindingStore(str(db)) as store:
        assert [r["argv"][1:4] for r in store.runs()] == [["live", "-i", "lo"]]


def test_watch_applies_retention_at_start(tmp_path, rule_cache):
    """`stagewatch watch` with `retention` in its config prunes a store holding old rows as it starts."""
    db, watched = tmp_path / "sw.db", tmp_path / "Temp"
    watched.mkdir()
    with FindingStore(str(db)) as store:
        run = store.begin_run("old-sensor", ["live"])
        store.add_flows(run, [_old_flow(1, time.time() - 90 * DAY)])
        store.end_run(run, {})
    cfg = tmp_path / "sw.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "test"\nretention = "30d"\n')
    cmd = [sys.executable, "-m", "sensor", "watch", str(watched), "--db", str(db), "--config", str(cfg)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and counts(f"sqlite:///{db}")["flows"]:
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "retention: deleted 1 flows, 1 runs" in err
    with FindingStore(str(db)) as store:
        assert store.flow_count() == 0
        assert [r["argv"][1] for r in store.runs()] == ["watch"]  # the old run went, the watch's own stayed
