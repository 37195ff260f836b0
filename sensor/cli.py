"""The `stagewatch` command: parses arguments, wires the pipeline, renders; exit codes mapped here."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from sensor import __version__, native
from sensor.errors import ConfigError, InputError, RuleError, StoreError
from sensor.hostrules.export import add_rules_parser, run_rules
from sensor.model import Finding, FlowRecord, HostEvent, HostFinding, Identity, ObjectRecord, OpaqueFile, SegmentDone
from sensor.output import console
from sensor.output.ecs import (
    finding_record,
    flow_record,
    host_finding_record,
    identity_record,
    object_record,
    observer_fields,
    opaque_record,
)
from sensor.output.jsonl import JsonlSink, dumps, open_lines, write_lines
from sensor.output.store_sink import StoreSink, flow_id_of, object_ids
from sensor.stats import RunStats

if TYPE_CHECKING:
    from sensor.config import Settings
    from sensor.store.db import FindingStore
    from sensor.store.query import Query
    from sensor.tuning.tuner import Tuner

# Each command imports what only it needs, inside it: a start pays for the parser and the scan path, not for
# SQLAlchemy under --no-db, pySigma before a host event, the report, the correlator or rich under -q.

EXIT_OK, EXIT_NOTHING, EXIT_USAGE = 0, 1, 2
EXIT_INPUT = EXIT_NOTHING  # any input error: a script must not take a partial scan for a whole one
EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM  # interrupted, after everything was written
_terminated = False  # the KeyboardInterrupt in flight came from SIGTERM
EPILOG = """examples:
  stagewatch scan /cases/ws01/Users/bob/AppData/Local/Temp --jsonl -
  stagewatch scan evidence/ --host-from-path '(?:^|/)evidence/([^/]+)/' --db cases.db
  stagewatch findings --since 1h --kind alert --jsonl -
  stagewatch explain 3f2a9c1e
"""
STORE_HELP = "findings store: a SQLite file or a postgresql+psycopg:// URL (default ./stagewatch.db)"


class _EngineNames:
    """--engine's choices, read from the engine registry only when a value is checked or the help is shown:
    importing the engines (yara-x, yara-python) is a scan's cost, not every command's."""

    def _names(self) -> list[str]:
        from sensor.detect.engines import engines

        return engines.names()

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


def _common(p: argparse.ArgumentParser) -> None:
    """-q and --debug after the subcommand too (SUPPRESS: given before it, the top-level value stays)."""
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="log debug lines and tracebacks")
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="only errors; no tables")


def _store_option(p: argparse.ArgumentParser, writes: bool) -> None:
    p.add_argument("--db", default="stagewatch.db", metavar="URL|FILE", help=STORE_HELP)
    if writes:
        p.add_argument("--no-db", action="store_true", help="do not write the store")


def _jsonl_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--jsonl", metavar="FILE|-", help=f"write {what} as ECS JSON lines, appended to FILE (- stdout)")
    p.add_argument("--truncate", action="store_true", help="empty the output files first instead of appending")


def _sensor_options(p: argparse.ArgumentParser) -> None:
    """What scan, live and watch share: the sensor's identity, the analyst's rules and tuning, the settings."""
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML settings ([limits], home_net, observer...)")
    p.add_argument("--observer", metavar="NAME", help="observer.name of this sensor (default: this machine)")
    p.add_argument("--observer-ip", metavar="IP,...", help="observer.ip (default: this machine's source addresses)")
    p.add_argument("--rules", type=Path, metavar="DIR", help="your YARA (detection, content) and Sigma rules")
    p.add_argument("--suppress", type=Path, metavar="FILE", help="suppression entries and thresholds (YAML)")


def _sensor_settings(a: argparse.Namespace) -> dict[str, Any]:
    """The load_settings overrides of _sensor_options' flags."""
    return {"observer": a.observer, "observer_ip": a.observer_ip, "user_rules": a.rules, "suppress": a.suppress}


def _host_options(p: argparse.ArgumentParser) -> None:
    """How staged files (and host-event files without a host) are named: scan and watch."""
    host = p.add_mutually_exclusive_group()
    host.add_argument("--host-name", metavar="NAME", help="host.name for every file (default: this machine)")
    host.add_argument("--host", dest="host_name_old", metavar="NAME", help=argparse.SUPPRESS)  # before 0.2
    host.add_argument(
        "--host-from-path",
        metavar="REGEX",
        help="host.name from a capturing group of the path, e.g. '(?:^|/)cases/([^/]+)/' "
        "(absolute and relative paths); a path it misses is named 'unknown' and warned about",
    )


def _host_name(a: argparse.Namespace) -> str | None:
    if getattr(a, "host_name_old", None):
        logger.warning("--host is now --host-name on scan and watch (--host filters the query commands)")
        return str(a.host_name_old)
    return a.host_name


def _home_domains(a: argparse.Namespace) -> tuple[str, ...] | None:
    return tuple(d.strip() for d in a.home_domains.split(",") if d.strip()) if a.home_domains else None


def _network_outputs(p: argparse.ArgumentParser) -> None:
    """What scan and live write beside the findings."""
    p.add_argument("--home-net", metavar="CIDR,...", help="protected networks (default: RFC 1918, 100.64/10, fc00::/7)")
    p.add_argument(
        "--home-domains",
        metavar="ZONE,...",
        help="the site's own DNS zones: a DNS tunnel to any other zone is outbound, even through an internal resolver",
    )
    p.add_argument("--flows", metavar="FILE|-", help="append one conn.log-like JSON line per flow")
    p.add_argument(
        "--objects", metavar="FILE|-", help="append one files.log-like JSON line per application object (also stored)"
    )
    p.add_argument("--extract", type=Path, metavar="DIR", help="write carved members to DIR/<sha256[:2]>/<sha256>")
    p.add_argument("--raw-only", action="store_true", help="no application layer: scan every TCP stream as raw bytes")
    p.add_argument("--syslog", metavar="URL", help="also send findings as syslog: udp://, tcp:// or tls://HOST[:PORT]")
    p.add_argument("--syslog-format", default="json", choices=("json", "leef"), help="syslog payload (default json)")
    p.add_argument("--syslog-ca", metavar="FILE", help="CA bundle that signs the tls:// syslog server's certificate")


def _query_options(p: argparse.ArgumentParser, table: str) -> None:
    """The filters of the query commands; each applies where the records have the field."""
    _store_option(p, writes=False)
    p.add_argument("--since", metavar="15m|1h|2d|ISO", help="only records at or after this time (event time)")
    p.add_argument("--until", metavar="15m|1h|2d|ISO", help="only records at or before this time")
    p.add_argument("--host", metavar="NAME", help="only this host.name (the domain part is ignored)")
    p.add_argument("--ip", metavar="ADDR", help="only records with this source, destination or host address")
    p.add_argument("--community-id", metavar="1:...", help="only this flow (network.community_id)")
    if table in ("findings", "flows", "objects"):
        p.add_argument("--protocol", metavar="NAME", help="only this network.protocol (http, smtp, ftp) or transport")
    if table in ("findings", "objects"):
        p.add_argument("--sha256", metavar="HEX", help="only this member's (or its container's) SHA-256")
    if table == "findings":
        p.add_argument("--format", metavar="NAME", help="only this stagewatch.format (gzip, zip, xz...)")
        p.add_argument("--kind", choices=("alert", "event"), help="only alerts or only events")
    if table in ("findings", "host_findings"):
        p.add_argument("--min-severity", type=int, metavar="N", help="only severity N or above")
    if table == "objects":
        p.add_argument("--flow", metavar="ID", help="only the objects of this stored flow (flow id or its prefix)")
    sorts = ("time", "severity") if table in ("findings", "host_findings") else ("time",)
    p.add_argument("--limit", type=int, metavar="N", help="only the newest N (the most severe N with --sort severity)")
    p.add_argument("--sort", default="time", choices=sorts, help="row order (default time, oldest first)")
    _jsonl_option(p, "the records instead of a table")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stagewatch",
        description="Find data compressed by libraries before exfiltration (MITRE ATT&CK T1560.002).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"stagewatch {__version__}, {native.name()}")
    p.add_argument("--debug", action="store_true", help="log debug lines and tracebacks")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr; no tables")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do (COMMAND --help)")

    s = sub.add_parser(
        "scan",
        help="scan captures, host-event files, Zeek/Suricata outputs and staged files or folders",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="captures, host-event files, Zeek logs and extract_files, Suricata eve.json and filestore, "
        "staged files or folders; - for stdin",
    )
    _jsonl_option(s, "findings and host findings")
    _store_option(s, writes=True)
    engine = s.add_argument("--engine", help="rule engine (default yara-x)")
    engine.choices = _EngineNames()  # after add_argument, which iterates choices (imports every engine) to check them
    _host_options(s)
    _sensor_options(s)
    _network_outputs(s)
    s.add_argument("--tz", metavar="ZONE", help="zone of host-event times that carry none (default UTC)")
    s.add_argument("--segment-size", metavar="2G", help="plan captures into segments of this size (see `plan`)")
    s.add_argument("--group-by", metavar="sensor:REGEX|dir|file", help="how captures form per-sensor chains")
    s.add_argument("--read-ahead", type=int, metavar="N", help="files a segment reads ahead for its flows (1)")
    s.add_argument("--dask", metavar="ADDRESS", help="run the planned segments on a Dask scheduler (tcp://HOST:8786)")
    s.add_argument("--workers", type=int, default=1, metavar="N", help="processes, flows split by IP pair")
    s.add_argument("--as", dest="as_kind", choices=("file",), help="scan captures and logs as staged files")

    for name, table, what in (
        ("findings", "findings", "query the stored findings (--host-findings: the host findings)"),
        ("host-findings", "host_findings", "query the stored host findings (host-rule hits)"),
        ("flows", "flows", "query the stored flows (conn.log-like)"),
        ("objects", "objects", "query the stored application objects (files.log-like)"),
    ):
        q = sub.add_parser(name, help=what)
        _query_options(q, table)
        if name == "findings":
            q.add_argument("--host-findings", action="store_true", help="the host findings instead")

    lv = sub.add_parser("live", help="capture from a SPAN/TAP interface (AF_PACKET) until SIGTERM")
    lv.add_argument("--interface", "-i", required=True, metavar="IFACE", help="the interface to capture on")
    lv.add_argument("--bpf", metavar="EXPR", help="capture filter (tcpdump syntax, compiled by tcpdump)")
    lv.add_argument("--workers", type=int, default=1, metavar="N", help="processes sharing the interface by IP pair")
    lv.add_argument(
        "--stats-interval", default="60s", metavar="60s", help="how often each worker's counters are logged"
    )
    _jsonl_option(lv, "findings (SIGHUP reopens every output file)")
    _store_option(lv, writes=True)
    _sensor_options(lv)
    _network_outputs(lv)

    w = sub.add_parser("watch", help="watch staging folders; scan each file once it is complete")
    w.add_argument("folders", nargs="+", metavar="FOLDER", help="folders to watch (sub-folders included)")
    w.add_argument("--settle", default="2s", metavar="2s", help="quiet time before a file still open is scanned")
    w.add_argument("--scan-existing", action="store_true", help="scan what the folders hold before watching")
    _jsonl_option(w, "findings")
    _store_option(w, writes=True)
    _host_options(w)
    _sensor_options(w)

    pl = sub.add_parser("plan", help="show how captures are chained and cut into segments")
    pl.add_argument("paths", nargs="+", metavar="PATH", help="captures or folders of captures")
    pl.add_argument("--group-by", default="dir", metavar="sensor:REGEX|dir|file", help="how captures form chains")
    pl.add_argument("--segment-size", default="2G", metavar="2G", help="bytes of captures per segment")
    pl.add_argument("--read-ahead", type=int, default=1, metavar="N", help="files a segment reads ahead for its flows")
    _jsonl_option(pl, "the segments instead of a table")

    c = sub.add_parser("correlate", help="join the store's findings and host telemetry into incidents")
    _store_option(c, writes=False)
    c.add_argument("--window", default="15m", metavar="15m|1h|900", help="time either side of an anchor")
    c.add_argument("--config", type=Path, metavar="FILE", help="TOML settings ([correlate] hash_link_min_size)")
    c.add_argument("--host-map", type=Path, metavar="FILE|-", help="CSV name,ip[,ip...] or JSON {name: [ips]}")
    _jsonl_option(c, "the incidents")
    c.add_argument("--syslog", metavar="URL", help="also send the new incidents as syslog (udp://, tcp://, tls://)")
    c.add_argument("--syslog-format", default="json", choices=("json", "leef"), help="syslog payload (default json)")
    c.add_argument("--syslog-ca", metavar="FILE", help="CA bundle that signs the tls:// syslog server's certificate")

    i = sub.add_parser("incidents", help="query the stored incidents")
    _store_option(i, writes=False)
    i.add_argument("--since", metavar="15m|1h|2d|ISO", help="only incidents starting at or after this time")
    i.add_argument("--host", metavar="NAME", help="only incidents on this host")
    _jsonl_option(i, "the incidents instead of a table")

    h = sub.add_parser("hosts", help="the host names the captures gave addresses (DHCP, NetBIOS, Kerberos...)")
    _store_option(h, writes=False)
    h.add_argument("--at", metavar="ISO|EPOCH", help="only the name each address had then (by trust and lease)")
    _jsonl_option(h, "the identities instead of a table")

    pr = sub.add_parser("prune", help="delete what is older than a span; kept incidents keep their evidence")
    pr.add_argument("--older-than", required=True, metavar="30d", help="event-time age to delete (30d, 12h, 15m, s)")
    _store_option(pr, writes=False)
    pr.add_argument("--dry-run", action="store_true", help="count what would go; change nothing")
    pr.add_argument("--no-vacuum", action="store_true", help="do not reclaim space (SQLite VACUUM rewrites the file)")

    rp = sub.add_parser("report", help="write the store's incidents and findings as one self-contained HTML file")
    out = rp.add_mutually_exclusive_group(required=True)
    out.add_argument("--output", "-o", metavar="FILE|-", help="the HTML report to write (nothing in it is fetched)")
    out.add_argument("--html", dest="output", metavar="FILE", help=argparse.SUPPRESS)  # before 0.2
    rp.add_argument("--since", metavar="15m|1h|7d|ISO", help="only what was seen at or after this time")
    _store_option(rp, writes=False)

    ex = sub.add_parser("explain", help="one finding, host finding, host event, flow or incident, and its evidence")
    ex.add_argument(
        "id",
        metavar="ID",
        help="an id as the tables and JSON lines show it, whole or its first 8+ characters: a finding, host finding, "
        "incident, flow, object, host event key or an incident's evidence id",
    )
    _store_option(ex, writes=False)
    ex.add_argument("--jsonl", metavar="FILE|-", help="write it as one JSON line instead of a tree")
    add_rules_parser(sub)
    for parser in _all_subparsers(p):
        _common(parser)
    return p


def _all_subparsers(p: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subcommand's parser, nested ones (rules export) included."""
    found: list[argparse.ArgumentParser] = []
    for action in p._subparsers._group_actions if p._subparsers else ():  # noqa: SLF001
        for child in dict.fromkeys(action.choices.values()):  # type: ignore[union-attr]
            found.append(child)
            found.extend(_all_subparsers(child))
    return found


def setup_logging(debug: bool, quiet: bool) -> None:
    logger.remove()
    logger.enable("sensor")
    level = "DEBUG" if debug else "ERROR" if quiet else "WARNING"
    logger.add(sys.stderr, level=level, format="<level>{level: <7}</level> {message}", backtrace=debug, diagnose=False)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM ends a scan like Ctrl-C: sinks are closed and the run is recorded before exit (status 143)."""
    global _terminated
    _terminated = True
    raise KeyboardInterrupt


def _record_of(
    item: Finding | FlowRecord | HostFinding | HostEvent | ObjectRecord | Identity | OpaqueFile,
    observer: dict[str, Any],
) -> dict[str, Any]:
    """The ECS record the sinks write for one pipeline result, stamped with this sensor's observer.*."""
    if isinstance(item, HostEvent):
        return {}  # host events go to the store only (the correlator reads them there)
    if isinstance(item, Identity):
        return identity_record(item)  # the store's hosts table (`stagewatch hosts`)
    if isinstance(item, OpaqueFile):
        record = opaque_record(item)
        record["observer"] = observer
        return record
    if isinstance(item, Finding):
        record = finding_record(item)
    elif isinstance(item, FlowRecord):
        record = flow_record(item)
        record["event"]["id"] = flow_id_of(observer["name"], item.community_id, item.start)  # the store's id
    elif isinstance(item, HostFinding):
        record = host_finding_record(item)
    else:
        record = object_record(item)
        record["event"]["id"], record["stagewatch"]["flow"]["id"] = object_ids(observer["name"], item)
    record["observer"] = observer
    return record


def _start(settings: Settings, stats: RunStats) -> tuple[dict[str, Any], Tuner]:
    """Before any input: the analyst's rules checked (one line naming file and line), the tuning loaded and
    its expired entries counted, and the observer.* block every record gets."""
    from sensor.pipeline import check_rules
    from sensor.tuning.tuner import Tuner

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
    from sensor.config import load_settings
    from sensor.flow.direction import HomeNet
    from sensor.output.extract import MemberFiles
    from sensor.pipeline import tune_gc, zone
    from sensor.staging.stdin import default_spool_dir, spool

    tune_gc()
    signal.signal(signal.SIGTERM, _terminate)
    if a.workers < 1:
        raise ValueError("--workers must be at least 1")
    home_net = tuple(a.home_net.split(",")) if a.home_net else None
    settings = load_settings(
        a.config,
        home_domains=_home_domains(a),
        engine=a.engine,
        host=_host_name(a),
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
    folder = settings.cache_dir / "stdin" if settings.cache_dir else default_spool_dir()
    piped = spool(folder) if "-" in a.paths else None
    if piped is not None:
        a.paths = [str(piped) if p == "-" else p for p in a.paths]
        logger.info("standard input spooled to {} ({:,} bytes)", piped, piped.stat().st_size)
    try:
        return _scan(a, settings, stats, observer, tuner)
    finally:
        if piped is not None:
            piped.unlink(missing_ok=True)


def _scan(a: argparse.Namespace, settings: Settings, stats: RunStats, observer: dict[str, Any], tuner: Tuner) -> int:
    import itertools

    from sensor.capture.plan import parse_size, plan
    from sensor.pipeline import Job, scan_inputs, scan_parallel, scan_segments, scan_segments_dask

    sinks = _sinks(a, settings)
    store, run_id = _open_run(a, settings, sinks)
    wanted = (Finding, *(k for sink in sinks for k in sink.kinds))  # findings feed the console table too
    directions: Counter[str] = Counter()
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
                            with store.batch():  # the segment's results and its done mark: one transaction
                                sink.flush()
                                store.segment_done(run_id, item.key, item.chain, item.index)
                    continue
                if isinstance(item, Finding | HostFinding):
                    item = tuner.apply(item, stats)
                elif isinstance(item, FlowRecord):
                    directions[item.direction] += 1
                if not isinstance(item, wanted):
                    continue  # no sink writes it (flow records without --flows or a store): no record built
                record = _record_of(item, observer)
                for sink in sinks:
                    sink.write(item, record)
                if isinstance(item, Finding) and not a.quiet and a.jsonl != "-" and len(shown) < 4 * console.TABLE_ROWS:
                    shown.append(record)  # the table shows the first alerts; all of them are in the sinks
    except KeyboardInterrupt:
        status = "interrupted"
        logger.warning("interrupted: writing what was found so far")
    finally:
        for sink in sinks:
            sink.close()
        _end_run(store, run_id, tuner, stats, stats.as_dict(), status)
    elapsed = time.monotonic() - started
    _no_home_net(directions, settings)
    if not a.quiet:
        if shown:
            console.out.print(console.findings_table(shown))
        sink = next((s for s in sinks if isinstance(s, StoreSink)), None)
        stored, updated = (sink.inserted, sink.updated) if sink is not None else (None, 0)
        console.err.print(console.summary_table(stats, elapsed, stored, updated))
    if status == "interrupted":
        return EXIT_SIGTERM if _terminated else EXIT_SIGINT
    if stats.files == 0 and stats.packets == 0 and not stats.host["files"]:
        logger.error("nothing could be processed")
        return EXIT_NOTHING
    return EXIT_INPUT if stats.input_errors() else EXIT_OK


def _query(a: argparse.Namespace) -> Query:
    from sensor.store.db import parse_since
    from sensor.store.query import Query

    now = time.time()
    return Query(
        since=parse_since(a.since, now) if a.since else None,
        until=parse_since(a.until, now, "--until") if a.until else None,
        kind=getattr(a, "kind", None),
        host=a.host,
        ip=a.ip,
        format=getattr(a, "format", None),
        sha256=getattr(a, "sha256", None),
        community_id=a.community_id,
        protocol=getattr(a, "protocol", None),
        min_severity=getattr(a, "min_severity", None),
        flow=getattr(a, "flow", None),
        limit=a.limit,
        sort=a.sort,
    )


QUERY_TABLES: dict[str, tuple[str, Callable[[list[dict[str, Any]]], Any]]] = {
    "findings": ("findings", lambda rs: console.findings_table(rs, sort=False)),
    "host-findings": ("host_findings", console.host_findings_table),
    "flows": ("flows", console.flows_table),
    "objects": ("objects", console.objects_table),
}


def cmd_query(a: argparse.Namespace) -> int:
    """`findings`, `host-findings`, `flows`, `objects`: the stored records that pass the filters."""
    from sensor.store.db import FindingStore

    command = "host-findings" if getattr(a, "host_findings", False) else a.command
    table, render = QUERY_TABLES[command]
    q = _query(a)
    with FindingStore(a.db, create=False) as store:
        records = store.query(table, q)
    if a.jsonl:
        write_lines(a.jsonl, records, a.truncate)
    elif not a.quiet:
        console.out.print(render(records))
        if not records:
            console.err.print(f"no {command.replace('-', ' ')} in {store.where} pass these filters", highlight=False)
    return EXIT_OK


def _duration(text: str, flag: str = "--window") -> float:
    """15m, 1h, 30s or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    try:
        return float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise ValueError(f"{flag} {text!r}: expected 15m, 1h, 30s or seconds") from None


def _sinks(a: argparse.Namespace, settings: Settings) -> list[Any]:
    """The file and syslog sinks scan and live share: JSON lines append unless --truncate."""
    sinks: list[Any] = []
    for target, kind in (
        (a.jsonl, (Finding, HostFinding, OpaqueFile)),
        (a.flows, FlowRecord),
        (a.objects, ObjectRecord),
    ):
        if target:
            sinks.append(JsonlSink(target, kind, a.truncate))
    if a.syslog:
        from sensor.output.syslog import SyslogSink

        sinks.append(SyslogSink(a.syslog, a.syslog_format, settings.observer, a.syslog_ca))
    return sinks


def _open_run(a: argparse.Namespace, settings: Settings, sinks: list[Any]) -> tuple[FindingStore | None, int | None]:
    """The store and this run's row (unless --no-db); its sink joins `sinks`."""
    if a.no_db:
        return None, None
    from sensor.store.db import FindingStore

    store = FindingStore(a.db)
    run_id = store.begin_run(settings.observer, sys.argv)
    sinks.append(StoreSink(store, run_id, settings.observer))
    return store, run_id


def _no_home_net(directions: Counter[str], settings: Settings) -> None:
    """Said once: when no flow touched home_net, every network finding is an event by construction."""
    if directions and set(directions) == {"external"}:
        logger.warning(
            "none of the {} flows has an end in home_net ({}): nothing is outbound, so every network finding is "
            "an event; give --home-net the capture's internal ranges",
            sum(directions.values()),
            ", ".join(settings.home_net),
        )


def cmd_plan(a: argparse.Namespace) -> int:
    from sensor.capture.plan import parse_size, plan

    segments = plan(a.paths, a.group_by, parse_size(a.segment_size), a.read_ahead)
    records = [asdict(seg) for seg in segments]
    if a.jsonl:
        write_lines(a.jsonl, records, a.truncate)
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
    from sensor.config import load_settings
    from sensor.correlate.engine import Correlator
    from sensor.correlate.hosts import HostMap
    from sensor.correlate.load import load
    from sensor.output.ecs import incident_record
    from sensor.output.syslog import SyslogSink
    from sensor.store.db import FindingStore

    hosts = HostMap()
    if a.host_map:
        hosts.load(a.host_map)
    window = _duration(a.window)
    joins = load_settings(a.config).correlate
    with FindingStore(a.db, create=False) as store:
        loaded = load(store, hosts)
        found = Correlator(hosts, window, joins.hash_link_min_size).run(
            loaded.transfers, loaded.staged, loaded.hits, loaded.events, loaded.flows, loaded.seen
        )
        records = [incident_record(i) for i in found]
        done = store.replace_incidents(
            (i.incident_id, i.start, i.end, i.host, i.score, dumps(r)) for i, r in zip(found, records, strict=True)
        )
    if a.jsonl:
        write_lines(a.jsonl, records, a.truncate)
    if a.syslog:
        sink = SyslogSink(a.syslog, a.syslog_format, "", a.syslog_ca)
        for inc, rec in zip(found, records, strict=True):
            sink.write(inc, rec)
        sink.close()
    if not a.quiet:
        console.out.print(console.incidents_table(records))
        changed = f", {done.updated} changed, {done.withdrawn} withdrawn" if done.updated or done.withdrawn else ""
        console.err.print(
            f"{len(found)} incidents ({done.new} new{changed}) from {len(loaded.transfers)} network and "
            f"{len(loaded.staged)} file "
            f"findings, {len(loaded.hits)} host findings, {len(loaded.events)} host events, {len(loaded.flows)} flows"
        )
    return EXIT_OK


def _reload_tuning(tuner: Tuner, path: Path | None, stats: RunStats) -> Tuner:
    """SIGHUP: read the tuning file again; a broken file is logged and the tuning in use stays."""
    from sensor.tuning.tuner import Tuner

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
    import multiprocessing as mp

    from sensor.config import load_settings
    from sensor.flow.direction import HomeNet
    from sensor.output.extract import MemberFiles
    from sensor.pipeline import LiveJob, WorkerStats, live_inputs, tune_gc

    tune_gc()
    if a.workers < 1:
        raise ValueError("--workers must be at least 1")
    home_net = tuple(a.home_net.split(",")) if a.home_net else None
    settings = load_settings(
        a.config,
        home_net=home_net,
        home_domains=_home_domains(a),
        **_sensor_settings(a),
        app_layer=False if a.raw_only else None,
        objects=True if a.objects else None,
        extract_dir=a.extract,
    )
    HomeNet(settings.home_net)
    stats = RunStats()
    observer, tuner = _start(settings, stats)
    if settings.extract_dir is not None:
        MemberFiles(settings.extract_dir, stats)  # an unusable folder is a one-line error before capture
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
    sinks = _sinks(a, settings)
    store, run_id = _open_run(a, settings, sinks)
    wanted = tuple(k for sink in sinks for k in sink.kinds)
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
            if isinstance(item, wanted):
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
    from sensor.config import load_settings
    from sensor.output.store_sink import row_of
    from sensor.pipeline import watch_inputs
    from sensor.store.db import FindingStore

    settings = load_settings(
        a.config,
        host=_host_name(a),
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
    out = open_lines(a.jsonl, a.truncate) if a.jsonl else None
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
                out = open_lines(a.jsonl)
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
    from sensor.store.db import FindingStore, parse_since

    since = parse_since(a.since, time.time()) if a.since else None
    with FindingStore(a.db, create=False) as store:
        records = store.incident_records(since=since, host=a.host)
    if a.jsonl:
        write_lines(a.jsonl, records, a.truncate)
    else:
        console.out.print(console.incidents_table(records))
    return EXIT_OK


def cmd_hosts(a: argparse.Namespace) -> int:
    """Every identity the captures stated, or with --at the one in force for each address at that time."""
    from sensor.correlate.identities import Claims
    from sensor.correlate.inputs import identity_of
    from sensor.store.db import FindingStore, parse_since

    with FindingStore(a.db, create=False) as store:
        records = store.identity_records()
    if a.at:
        at = float(a.at) if a.at.replace(".", "", 1).isdigit() else parse_since(a.at, time.time(), "--at")
        claims = Claims(identity_of(r) for r in records)
        current = {id(c) for c in (claims.at(addr, at) for addr in claims.addresses()) if c is not None}
        chosen = [i for i in claims.all() if id(i) in current]
        records = [identity_record(i) for i in chosen]
    if a.jsonl:
        write_lines(a.jsonl, records, a.truncate)
    else:
        console.out.print(console.hosts_table(records))
    return EXIT_OK


def cmd_prune(a: argparse.Namespace) -> int:
    """Delete rows older than --older-than (event time) in one transaction, then reclaim the space."""
    from sensor.store.db import FindingStore

    age = _duration(a.older_than, "--older-than")
    if not 0 < age < float("inf"):  # a negative span would put the cutoff in the future: delete everything
        raise ValueError(f"--older-than {a.older_than!r}: expected a positive span such as 30d, 12h or seconds")
    with FindingStore(a.db, create=False) as store:
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
    from sensor.store.retention import RetentionTimer

    timer = RetentionTimer(store, keep)

    def tick() -> None:
        result = timer.tick(time.time())
        if result is not None and not quiet:
            console.err.print(result.summary(), highlight=False)

    return tick


def cmd_report(a: argparse.Namespace) -> int:
    from sensor.output import report
    from sensor.store.db import FindingStore, parse_since

    now = time.time()
    since = parse_since(a.since, now) if a.since else None
    with FindingStore(a.db, create=False) as store:
        data = report.collect(store, since, now, a.since)
    html = report.render(data)
    if a.output == "-":
        sys.stdout.write(html)
    else:
        report.write_report(a.output, html)
    if not a.quiet:
        console.err.print(
            f"{a.output}: {len(data.incidents)} incidents, {len(data.findings)} findings, "
            f"{len(data.host_findings)} host findings",
            highlight=False,
        )
    return EXIT_OK


def cmd_explain(a: argparse.Namespace) -> int:
    from sensor.output import explain as explaining
    from sensor.store.db import FindingStore

    with FindingStore(a.db, create=False) as store:
        if a.jsonl:
            write_lines(a.jsonl, [explaining.explain_record(store, a.id)])
        else:
            console.out.print(explaining.explain(store, a.id))
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "scan": cmd_scan,
    "rules": run_rules,
    "correlate": cmd_correlate,
    "plan": cmd_plan,
    "watch": cmd_watch,
    "live": cmd_live,
    "incidents": cmd_incidents,
    "hosts": cmd_hosts,
    "prune": cmd_prune,
    "report": cmd_report,
    "explain": cmd_explain,
    "findings": cmd_query,
    "host-findings": cmd_query,
    "flows": cmd_query,
    "objects": cmd_query,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    setup_logging(a.debug, a.quiet)
    try:
        return COMMANDS[a.command](a)
    except ConfigError as e:  # a flag's value is a usage error; a config file's is an input error
        logger.error("{}", e)
        return EXIT_USAGE if e.where.startswith("--") else EXIT_NOTHING
    except (RuleError, StoreError, InputError) as e:
        logger.error("{}", e)
        return EXIT_NOTHING
    except ValueError as e:  # bad flag values (--since, --host-from-path)
        logger.error("{}", e)
        return EXIT_USAGE
    except KeyboardInterrupt:  # before or after a command's own handling (startup, the summary)
        return EXIT_SIGTERM if _terminated else EXIT_SIGINT
