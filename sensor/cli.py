"""The `stagewatch` command: parses arguments, wires the pipeline, renders; exit codes mapped here."""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loguru import logger

from sensor import __version__
from sensor.capture.plan import parse_size, plan
from sensor.config import Settings, load_settings
from sensor.correlate.engine import Correlator
from sensor.correlate.hosts import HostMap
from sensor.correlate.load import load
from sensor.detect.engines import engines
from sensor.errors import ConfigError, InputError, RuleError, StoreError
from sensor.flow.direction import HomeNet
from sensor.hostrules.export import add_rules_parser, run_rules
from sensor.model import Finding, FlowRecord, HostEvent, HostFinding, ObjectRecord, SegmentDone
from sensor.output import console, report
from sensor.output.console import TABLE_ROWS
from sensor.output.ecs import (
    finding_record,
    flow_record,
    host_finding_record,
    incident_record,
    object_record,
    observer_fields,
)
from sensor.output.explain import explain
from sensor.output.extract import MemberFiles
from sensor.output.jsonl import JsonlSink, dumps
from sensor.output.store_sink import StoreSink, row_of
from sensor.output.syslog import SyslogSink
from sensor.pipeline import (
    Job,
    LiveJob,
    WorkerStats,
    check_rules,
    live_inputs,
    scan_inputs,
    scan_parallel,
    scan_segments,
    scan_segments_dask,
    watch_inputs,
    zone,
)
from sensor.stats import RunStats
from sensor.store.db import FindingStore, parse_since
from sensor.store.retention import RetentionTimer
from sensor.tuning.tuner import Tuner

EXIT_OK, EXIT_NOTHING, EXIT_USAGE = 0, 1, 2
EPILOG = """examples:
  stagewatch scan /cases/ws01/Users/bob/AppData/Local/Temp --jsonl -
  stagewatch scan evidence/ --host-from-path '^evidence/([^/]+)/' --db cases.db
  stagewatch findings --since 1h --jsonl -
"""


def _sensor_options(p: argparse.ArgumentParser) -> None:
    """What scan, live and watch share: the sensor's identity, the analyst's rules and tuning."""
    p.add_argument("--observer", metavar="NAME", help="observer.name of this sensor (default: this machine)")
    p.add_argument("--observer-ip", metavar="IP,...", help="observer.ip (default: this machine's source addresses)")
    p.add_argument("--rules", type=Path, metavar="DIR", help="your YARA (detection, content) and Sigma rules")
    p.add_argument("--suppress", type=Path, metavar="FILE", help="suppression entries and thresholds (YAML)")


def _sensor_settings(a: argparse.Namespace) -> dict[str, Any]:
    """The load_settings overrides of _sensor_options' flags."""
    return {"observer": a.observer, "observer_ip": a.observer_ip, "user_rules": a.rules, "suppress": a.suppress}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stagewatch",
        description="Find data compressed by libraries before exfiltration (MITRE ATT&CK T1560.002).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"stagewatch {__version__}")
    p.add_argument("--debug", action="store_true", help="log debug lines and tracebacks")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr; no tables")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "scan",
        help="scan staged files and folders",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to scan")
    s.add_argument("--jsonl", metavar="FILE|-", help="also write findings as ECS JSON lines (- for stdout)")
    s.add_argument("--db", default="stagewatch.db", metavar="URL|FILE", help="findings store (default ./stagewatch.db)")
    s.add_argument("--no-db", action="store_true", help="do not write the store")
    s.add_argument("--config", type=Path, metavar="FILE", help="TOML settings ([limits] table, sensitive_names...)")
    s.add_argument("--engine", choices=engines.names(), help="rule engine (default yara-x)")
    host = s.add_mutually_exclusive_group()
    host.add_argument("--host", metavar="NAME", help="host.name for every file (default: this machine)")
    host.add_argument("--host-from-path", metavar="REGEX", help="host.name from a capturing group of the path")
    _sensor_options(s)
    s.add_argument("--home-net", metavar="CIDR,...", help="protected networks (default: RFC 1918, 100.64/10, fc00::/7)")
    s.add_argument("--flows", metavar="FILE|-", help="write one conn.log-like JSON line per flow")
    s.add_argument(
        "--objects", metavar="FILE|-", help="write one files.log-like JSON line per application object (HTTP body...)"
    )
    s.add_argument("--extract", type=Path, metavar="DIR", help="write carved members to DIR/<sha256[:2]>/<sha256>")
    s.add_argument("--tz", metavar="ZONE", help="zone of host-event times that carry none (default UTC)")
    s.add_argument("--syslog", metavar="URL", help="also send findings as syslog: udp://, tcp:// or tls://HOST[:PORT]")
    s.add_argument("--syslog-format", default="json", choices=("json", "leef"), help="syslog payload (default json)")
    s.add_argument("--syslog-ca", metavar="FILE", help="CA bundle that signs the tls:// syslog server's certificate")
    s.add_argument("--segment-size", metavar="2G", help="plan captures into segments of this size (see `plan`)")
    s.add_argument("--group-by", metavar="sensor:REGEX|dir|file", help="how captures form per-sensor chains")
    s.add_argument("--read-ahead", type=int, metavar="N", help="files a segment reads ahead for its flows (1)")
    s.add_argument("--dask", metavar="ADDRESS", help="run the planned segments on a Dask scheduler (tcp://HOST:8786)")
    s.add_argument("--raw-only", action="store_true", help="no application layer: scan every TCP stream as raw bytes")
    s.add_argument("--workers", type=int, default=1, metavar="N", help="processes, flows split by IP pair")
    s.add_argument("--as", dest="as_kind", choices=("file",), help="scan captures as staged files")

    f = sub.add_parser("findings", help="query the findings store")
    f.add_argument("--db", default="stagewatch.db", metavar="URL|FILE")
    f.add_argument("--since", metavar="15m|1h|2d|ISO", help="only findings at or after this time")
    f.add_argument("--kind", choices=("alert", "event"))
    f.add_argument("--limit", type=int)
    f.add_argument("--jsonl", metavar="FILE|-", help="write JSON lines instead of a table")

    lv = sub.add_parser("live", help="capture from a SPAN/TAP interface (AF_PACKET) until SIGTERM")
    lv.add_argument("--interface", "-i", required=True, metavar="IFACE")
    lv.add_argument("--bpf", metavar="EXPR", help="capture filter (tcpdump syntax, compiled by tcpdump)")
    lv.add_argument("--workers", type=int, default=1, metavar="N", help="processes sharing the interface by IP pair")
    lv.add_argument(
        "--stats-interval", default="60s", metavar="60s", help="how often each worker's counters are logged"
    )
    lv.add_argument("--jsonl", metavar="FILE|-", help="also write findings as ECS JSON lines (SIGHUP reopens)")
    lv.add_argument("--flows", metavar="FILE", help="write one conn.log-like JSON line per flow (SIGHUP reopens)")
    lv.add_argument(
        "--db", default="stagewatch.db", metavar="URL|FILE", help="findings store (default ./stagewatch.db)"
    )
    lv.add_argument("--no-db", action="store_true", help="do not write the store")
    lv.add_argument("--config", type=Path, metavar="FILE", help="TOML settings")
    lv.add_argument(
        "--home-net", metavar="CIDR,...", help="protected networks (default: RFC 1918, 100.64/10, fc00::/7)"
    )
    _sensor_options(lv)

    w = sub.add_parser("watch", help="watch staging folders; scan each file once it is complete")
    w.add_argument("folders", nargs="+", metavar="FOLDER")
    w.add_argument("--settle", default="2s", metavar="2s", help="quiet time before a file still open is scanned")
    w.add_argument("--scan-existing", action="store_true", help="scan what the folders hold before watching")
    w.add_argument("--jsonl", metavar="FILE|-", help="also append findings as ECS JSON lines (- for stdout)")
    w.add_argument("--db", default="stagewatch.db", metavar="URL|FILE", help="findings store (default ./stagewatch.db)")
    w.add_argument("--no-db", action="store_true", help="do not write the store")
    w.add_argument("--config", type=Path, metavar="FILE", help="TOML settings")
    w.add_argument("--host", metavar="NAME", help="host.name for every file (default: this machine)")
    w.add_argument("--host-from-path", metavar="REGEX", help="host.name from a capturing group of the path")
    _sensor_options(w)

    pl = sub.add_parser("plan", help="show how captures are chained and cut into segments")
    pl.add_argument("paths", nargs="+", metavar="PATH")
    pl.add_argument("--group-by", default="dir", metavar="sensor:REGEX|dir|file")
    pl.add_argument("--segment-size", default="2G", metavar="2G")
    pl.add_argument("--read-ahead", type=int, default=1, metavar="N")
    pl.add_argument("--jsonl", metavar="FILE|-", help="write the segments as JSON lines instead of a table")

    c = sub.add_parser("correlate", help="join the store's findings and host telemetry into incidents")
    c.add_argument("--db", default="stagewatch.db", metavar="URL|FILE")
    c.add_argument("--window", default="15m", metavar="15m|1h|900", help="time either side of an anchor")
    c.add_argument("--host-map", type=Path, metavar="FILE", help="CSV name,ip[,ip...] or JSON {name: [ips]}")
    c.add_argument("--jsonl", metavar="FILE|-", help="also write the incidents as JSON lines")
    c.add_argument("--syslog", metavar="URL", help="also send the new incidents as syslog (udp://, tcp://, tls://)")
    c.add_argument("--syslog-format", default="json", choices=("json", "leef"))
    c.add_argument("--syslog-ca", metavar="FILE")

    i = sub.add_parser("incidents", help="query the stored incidents")
    i.add_argument("--db", default="stagewatch.db", metavar="URL|FILE")
    i.add_argument("--since", metavar="15m|1h|2d|ISO", help="only incidents starting at or after this time")
    i.add_argument("--host", metavar="NAME", help="only incidents on this host")
    i.add_argument("--jsonl", metavar="FILE|-", help="write JSON lines instead of a table")

    pr = sub.add_parser("prune", help="delete what is older than a span; kept incidents keep their evidence")
    pr.add_argument("--older-than", required=True, metavar="30d", help="event-time age to delete (30d, 12h, 15m, s)")
    pr.add_argument("--db", default="stagewatch.db", metavar="URL|FILE")
    pr.add_argument("--dry-run", action="store_true", help="count what would go; change nothing")
    pr.add_argument("--no-vacuum", action="store_true", help="do not reclaim space (SQLite VACUUM rewrites the file)")

    rp = sub.add_parser("report", help="write the store's incidents and findings as one self-contained HTML file")
    rp.add_argument("--html", required=True, metavar="FILE", help="the report to write (nothing in it is fetched)")
    rp.add_argument("--since", metavar="15m|1h|7d|ISO", help="only what was seen at or after this time")
    rp.add_argument("--db", default="stagewatch.db", metavar="URL|FILE")

    ex = sub.add_parser("explain", help="one finding or incident: score, reasons and its evidence chain")
    ex.add_argument("id", metavar="ID", help="event.id of a finding or host finding, or an incident id (8+ chars)")
    ex.add_argument("--db", default="stagewatch.db", metavar="URL|FILE")
    add_rules_parser(sub)
    return p


def setup_logging(debug: bool, quiet: bool) -> None:
    logger.remove()
    logger.enable("sensor")
    level = "DEBUG" if debug else "ERROR" if quiet else "WARNING"
    logger.add(sys.stderr, level=level, format="<level>{level: <7}</level> {message}", backtrace=debug, diagnose=False)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM ends a scan like Ctrl-C: sinks are closed and the run is recorded before exit."""
    raise KeyboardInterrupt


def _record_of(
    item: Finding | FlowRecord | HostFinding | HostEvent | ObjectRecord, observer: dict[str, Any]
) -> dict[str, Any]:
    """The ECS record the sinks write for one pipeline result, stamped with this sensor's observer.*."""
    if isinstance(item, HostEvent):
        return {}  # host events go to the store only (the correlator reads them there)
    if isinstance(item, Finding):
        record = finding_record(item)
    elif isinstance(item, FlowRecord):
        record = flow_record(item)
    elif isinstance(item, HostFinding):
        record = host_finding_record(item)
    else:
        record = object_record(item)
    record["observer"] = observer
    return record


def _start(settings: Settings, stats: RunStats) -> tuple[dict[str, Any], Tuner]:
    """Before any input: the analyst's rules checked (one line naming file and line), the tuning loaded and
    its expired entries counted, and the observer.* block every record gets."""
    check_rules(settings)
    tuner = Tuner.load(settings.suppress)
    tuner.count_expired(stats)
    return observer_fields(settings.observer, settings.observer_ip), tuner


def _end_run(
    store: FindingStore | None, run_id: int | None, tuner: Tuner, stats: RunStats, final: dict, status: str
) -> None:
    """After the sinks closed: the folded alerts' counts, the run's end and statistics, the store closed."""
    if store is None or run_id is None:
        return
    store.set_threshold_counts(tuner.take_counts(stats))
    store.end_run(run_id, final, status)
    store.close()


def cmd_scan(a: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    if a.workers < 1:
        raise ValueError("--workers must be at least 1")
    home_net = tuple(a.home_net.split(",")) if a.home_net else None
    settings = load_settings(
        a.config,
        engine=a.engine,
        host=a.host,
        host_from_path=a.host_from_path,
        **_sensor_settings(a),
        home_net=home_net,
        app_layer=False if a.raw_only else None,
        objects=True if a.objects else None,
        extract_dir=a.extract,
        tz=a.tz,
    )
    zone(settings.tz)  # an unknown zone is a usage error before anything runs
    HomeNet(settings.home_net)  # a bad CIDR is a usage error before anything runs
    stats = RunStats()
    observer, tuner = _start(settings, stats)
    if settings.extract_dir is not None:
        MemberFiles(settings.extract_dir, stats)  # an unusable folder is a one-line error before the scan
    sinks: list[Any] = []
    store = None
    if a.jsonl:
        sinks.append(JsonlSink(a.jsonl, (Finding, HostFinding)))
    if a.flows:
        sinks.append(JsonlSink(a.flows, FlowRecord))
    if a.objects:
        sinks.append(JsonlSink(a.objects, ObjectRecord))
    if a.syslog:
        sinks.append(SyslogSink(a.syslog, a.syslog_format, settings.observer, a.syslog_ca))
    run_id = None
    if not a.no_db:
        store = FindingStore(a.db)
        run_id = store.begin_run(settings.observer, sys.argv)
        sinks.append(StoreSink(store, run_id, settings.observer))
    shown: list[dict[str, Any]] = []
    started = time.monotonic()
    status = "ok"
    try:
        planned = any(v is not None for v in (a.segment_size, a.group_by, a.read_ahead, a.dask))
        job = Job(tuple(a.paths), settings, a.as_kind, skip_captures=planned and a.as_kind != "file")
        with console.ScanProgress(enabled=None if not a.quiet and a.workers == 1 else False) as progress:
            if job.skip_captures:
                ahead = 1 if a.read_ahead is None else a.read_ahead
                segments = plan(list(a.paths), a.group_by or "dir", parse_size(a.segment_size or "2G"), ahead)
                if store is not None:  # resume: what an earlier, interrupted run finished is not redone
                    done = store.done_segments()
                    stats.net["segments_skipped"] += sum(1 for seg in segments if seg.key in done)
                    segments = [seg for seg in segments if seg.key not in done]
                run = (
                    scan_segments_dask(segments, settings, stats, a.dask)
                    if a.dask
                    else scan_segments(segments, settings, stats, a.workers)
                )
                results = itertools.chain(scan_inputs(job, stats, progress), run)
            elif a.workers > 1:
                results = scan_parallel(job, a.workers, stats)
            else:
                results = scan_inputs(job, stats, progress)
            for item in results:
                if isinstance(item, SegmentDone):
                    for sink in sinks:
                        if isinstance(sink, StoreSink) and store is not None and run_id is not None:
                            sink.flush()  # the segment's results are stored before it counts as done
                            store.segment_done(run_id, item.key, item.chain, item.index)
                    continue
                if isinstance(item, Finding | HostFinding):
                    item = tuner.apply(item, stats)
                record = _record_of(item, observer)
                for sink in sinks:
                    sink.write(item, record)
                if isinstance(item, Finding) and not a.quiet and a.jsonl != "-" and len(shown) < 4 * TABLE_ROWS:
                    shown.append(record)  # the table shows the first alerts; all of them are in the sinks
    except KeyboardInterrupt:
        status = "interrupted"
        logger.warning("interrupted: writing what was found so far")
    finally:
        for sink in sinks:
            sink.close()
        _end_run(store, run_id, tuner, stats, stats.as_dict(), status)
    elapsed = time.monotonic() - started
    if not a.quiet:
        if shown:
            console.out.print(console.findings_table(shown))
        stored = next((s.inserted for s in sinks if isinstance(s, StoreSink)), None)
        console.err.print(console.summary_table(stats, elapsed, stored))
    if stats.files == 0 and stats.packets == 0 and not stats.host["files"]:
        logger.error("nothing could be processed")
        return EXIT_NOTHING
    return EXIT_OK


def cmd_findings(a: argparse.Namespace) -> int:
    since = parse_since(a.since, time.time()) if a.since else None
    with FindingStore(a.db) as store:
        records = store.findings(since=since, kind=a.kind, limit=a.limit)
        if a.jsonl:
            sink = sys.stdout if a.jsonl == "-" else open(a.jsonl, "a", encoding="utf-8")  # noqa: SIM115
            try:
                for r in records:
                    sink.write(dumps(r) + "\n")
            finally:
                if sink is not sys.stdout:
                    sink.close()
        else:
            console.out.print(console.findings_table(records))
    return EXIT_OK


def _duration(text: str, flag: str = "--window") -> float:
    """15m, 1h, 30s or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    try:
        return float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise ValueError(f"{flag} {text!r}: expected 15m, 1h, 30s or seconds") from None


def _write_lines(target: str, records: list[dict[str, Any]]) -> None:
    sink = sys.stdout if target == "-" else open(target, "w", encoding="utf-8")  # noqa: SIM115
    try:
        for r in records:
            sink.write(dumps(r) + "\n")
    finally:
        if sink is not sys.stdout:
            sink.close()


def cmd_plan(a: argparse.Namespace) -> int:
    segments = plan(a.paths, a.group_by, parse_size(a.segment_size), a.read_ahead)
    records = [asdict(seg) for seg in segments]
    if a.jsonl:
        _write_lines(a.jsonl, records)
    else:
        for r in records:
            console.out.print(
                f"{r['chain']} #{r['index']}: {len(r['files'])} files, {r['size'] / 1e6:,.1f} MB; read back "
                f"{len(r['read_back'])}, read ahead {len(r['read_ahead'])}"
            )
    if not segments:
        logger.error("no capture found under {}", ", ".join(a.paths))
        return EXIT_NOTHING
    return EXIT_OK


def cmd_correlate(a: argparse.Namespace) -> int:
    hosts = HostMap()
    if a.host_map:
        hosts.load(a.host_map)
    window = _duration(a.window)
    with FindingStore(a.db) as store:
        loaded = load(store, hosts)
        found = Correlator(hosts, window).run(loaded.transfers, loaded.staged, loaded.hits, loaded.events, loaded.flows)
        records = [incident_record(i) for i in found]
        new = store.add_incidents(
            (i.incident_id, i.start, i.end, i.host, i.score, dumps(r)) for i, r in zip(found, records, strict=True)
        )
    if a.jsonl:
        _write_lines(a.jsonl, records)
    if a.syslog:
        sink = SyslogSink(a.syslog, a.syslog_format, "", a.syslog_ca)
        for inc, rec in zip(found, records, strict=True):
            sink.write(inc, rec)
        sink.close()
    if not a.quiet:
        console.out.print(console.incidents_table(records))
        console.err.print(
            f"{len(found)} incidents ({new} new) from {len(loaded.transfers)} network and {len(loaded.staged)} file "
            f"findings, {len(loaded.hits)} host findings, {len(loaded.events)} host events, {len(loaded.flows)} flows"
        )
    return EXIT_OK


def _reload_tuning(tuner: Tuner, path: Path | None, stats: RunStats) -> Tuner:
    """SIGHUP: read the tuning file again; a broken file is logged and the tuning in use stays."""
    try:
        fresh = Tuner.load(path)
    except ConfigError as e:
        logger.error("{} (the previous tuning stays in use)", e)
        return tuner
    fresh.count_expired(stats)
    fresh.carried = tuner.take_counts(stats)  # counts not yet written to the store survive the reload
    if tuner.folders:
        logger.info("tuning reloaded; threshold windows restart")
    return fresh


def cmd_live(a: argparse.Namespace) -> int:
    """Capture until SIGTERM/SIGINT, then flush every open flow; SIGHUP reopens the output files."""
    if a.workers < 1:
        raise ValueError("--workers must be at least 1")
    home_net = tuple(a.home_net.split(",")) if a.home_net else None
    settings = load_settings(
        a.config,
        home_net=home_net,
        **_sensor_settings(a),
    )
    HomeNet(settings.home_net)
    stats = RunStats()
    observer, tuner = _start(settings, stats)
    job = LiveJob(a.interface, settings, a.bpf, a.workers, _duration(a.stats_interval, "--stats-interval"))
    ctx = mp.get_context("fork")
    stop, reloads = ctx.Event(), ctx.Value("i", 0)
    hup = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def on_hup(*_: object) -> None:
        hup.set()  # the JSON lines files are reopened by this process
        with reloads.get_lock():
            reloads.value += 1  # the workers recompile the rules at their next frame

    signal.signal(signal.SIGHUP, on_hup)
    sinks: list[Any] = []
    if a.jsonl:
        sinks.append(JsonlSink(a.jsonl, (Finding, HostFinding)))
    if a.flows:
        sinks.append(JsonlSink(a.flows, FlowRecord))
    store, run_id = None, None
    if not a.no_db:
        store = FindingStore(a.db)
        run_id = store.begin_run(settings.observer, sys.argv)
        sinks.append(StoreSink(store, run_id, settings.observer))
    prune_due = _retention(store, settings.retention, a.quiet)  # on this thread, the StoreSink's: never beside it
    prune_due()
    latest: dict[int, WorkerStats] = {}

    def on_stats(ws: WorkerStats) -> None:
        latest[ws.worker] = ws
        if not a.quiet:
            console.err.print(
                f"stats worker {ws.worker}: {ws.packets} packets, kernel {ws.kernel_packets} seen "
                f"{ws.kernel_drops} dropped, {ws.flows} flows, {ws.findings} findings"
            )
        if store is not None and run_id is not None:
            store.update_run_stats(run_id, {"workers": {str(k): asdict(v) for k, v in sorted(latest.items())}})
        prune_due()  # the stats come even when no traffic does

    def on_ready() -> None:
        if not a.quiet:
            console.err.print(f"capturing on {a.interface} with {a.workers} worker(s)")

    status = "ok"
    try:
        for item in live_inputs(job, stats, stop, on_stats, on_ready, reloads):
            if isinstance(item, Finding | HostFinding):
                item = tuner.apply(item, stats)
            record = _record_of(item, observer)
            for sink in sinks:
                sink.write(item, record)
            prune_due()
            if hup.is_set():
                hup.clear()
                for sink in sinks:
                    if isinstance(sink, JsonlSink):
                        sink.reopen()
                tuner = _reload_tuning(tuner, settings.suppress, stats)
    finally:
        for sink in sinks:
            sink.close()
        final = stats.as_dict() | {"workers": {str(k): asdict(v) for k, v in sorted(latest.items())}}
        _end_run(store, run_id, tuner, stats, final, status if not stats.errors["worker"] else "failed")
    if stats.errors["worker"]:
        return EXIT_NOTHING
    return EXIT_OK


def cmd_watch(a: argparse.Namespace) -> int:
    """Until SIGTERM/SIGINT: each complete file scanned, its findings replacing the file's earlier ones."""
    settings = load_settings(
        a.config,
        host=a.host,
        host_from_path=a.host_from_path,
        **_sensor_settings(a),
    )
    settle = _duration(a.settle, "--settle")
    stats = RunStats()
    observer, tuner = _start(settings, stats)
    stop, hup = threading.Event(), threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: hup.set())  # log rotation: reopen --jsonl
    store = None if a.no_db else FindingStore(a.db)
    run_id = store.begin_run(settings.observer, sys.argv) if store is not None else None
    prune_due = _retention(store, settings.retention, a.quiet)  # at start, then after a file once a day is up
    prune_due()
    out = None
    if a.jsonl:
        out = sys.stdout if a.jsonl == "-" else open(a.jsonl, "a", encoding="utf-8")  # noqa: SIM115
    status = "ok"
    try:
        for path, found in watch_inputs(a.folders, settings, stats, stop, settle, a.scan_existing):
            found = [tuner.apply(f, stats) for f in found]
            records = [_record_of(f, observer) for f in found]
            if store is not None and run_id is not None:
                store.replace_file(run_id, path, [row_of(f, r) for f, r in zip(found, records, strict=True)])
            prune_due()
            if hup.is_set() and out is not None and out is not sys.stdout:
                hup.clear()
                out.close()
                out = open(a.jsonl, "a", encoding="utf-8")  # noqa: SIM115
            for f, r in zip(found, records, strict=True):
                if out is not None:
                    out.write(dumps(r) + "\n")
                    out.flush()
                logger.warning("{} {} {} ({} bytes) in {}", f.kind.value, f.member.format, f.member.sha256[:16],
                               f.member.length, path)  # fmt: skip
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        if out is not None and out is not sys.stdout:
            out.close()
        _end_run(store, run_id, tuner, stats, stats.as_dict(), status)
    return EXIT_OK


def cmd_incidents(a: argparse.Namespace) -> int:
    since = parse_since(a.since, time.time()) if a.since else None
    with FindingStore(a.db) as store:
        records = store.incident_records(since=since, host=a.host)
    if a.jsonl:
        _write_lines(a.jsonl, records)
    else:
        console.out.print(console.incidents_table(records))
    return EXIT_OK


def cmd_prune(a: argparse.Namespace) -> int:
    """Delete rows older than --older-than (event time) in one transaction, then reclaim the space."""
    age = _duration(a.older_than, "--older-than")
    if not 0 < age < float("inf"):  # a negative span would put the cutoff in the future: delete everything
        raise ValueError(f"--older-than {a.older_than!r}: expected a positive span such as 30d, 12h or seconds")
    with FindingStore(a.db) as store:
        size = store.file_size()
        result = store.prune(time.time() - age, dry_run=a.dry_run)
        if not (a.dry_run or a.no_vacuum):
            store.reclaim_space()
        after = store.file_size()
    if not a.quiet:
        cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.before))
        lines = [f"{store.where}: rows older than {cutoff}", f"{'table':<14}{'deleted':>10}{'kept':>10}"]
        lines += [f"{name:<14}{c.deleted:>10,}{c.kept:>10,}" for name, c in result.tables()]
        lines.append("kept: older rows a kept incident cites as evidence, or runs rows still refer to")
        if a.dry_run:
            lines.append("dry run: nothing was deleted")
        elif size is not None and after is not None and not a.no_vacuum:
            lines.append(f"reclaimed {size - after:,} bytes ({size:,} -> {after:,}, WAL included)")
        console.out.print("\n".join(lines), highlight=False)
    return EXIT_OK


def _retention(store: FindingStore | None, keep: float | None, quiet: bool) -> Callable[[], None]:
    """The `retention` setting for live/watch: call it between records; it prunes at once, then daily."""
    if store is None or keep is None:
        return lambda: None
    timer = RetentionTimer(store, keep)

    def tick() -> None:
        result = timer.tick(time.time())
        if result is not None and not quiet:
            console.err.print(result.summary(), highlight=False)

    return tick


def cmd_report(a: argparse.Namespace) -> int:
    now = time.time()
    since = parse_since(a.since, now) if a.since else None
    with FindingStore(a.db) as store:
        data = report.collect(store, since, now)
    report.write_report(a.html, report.render(data))
    if not a.quiet:
        console.err.print(
            f"{a.html}: {len(data.incidents)} incidents, {len(data.findings)} findings, "
            f"{len(data.host_findings)} host findings",
            highlight=False,
        )
    return EXIT_OK


def cmd_explain(a: argparse.Namespace) -> int:
    with FindingStore(a.db) as store:
        console.out.print(explain(store, a.id))
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "scan": cmd_scan,
    "rules": run_rules,
    "correlate": cmd_correlate,
    "plan": cmd_plan,
    "watch": cmd_watch,
    "live": cmd_live,
    "incidents": cmd_incidents,
    "prune": cmd_prune,
    "report": cmd_report,
    "explain": cmd_explain,
}  # `findings` and anything else: the findings query


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    setup_logging(a.debug, a.quiet)
    try:
        return COMMANDS.get(a.command, cmd_findings)(a)
    except (ConfigError, RuleError, StoreError, InputError) as e:
        logger.error("{}", e)
        return EXIT_NOTHING
    except ValueError as e:  # bad flag values (--since, --host-from-path)
        logger.error("{}", e)
        return EXIT_USAGE
