"""Host-event parsing speed: stagewatch's parsers against the bare minimum any consumer of the format does.

    python bench/bench_host.py DATA_DIR [--quick] [--runs 3] [--cases evtx,json,auditd,correlation]

Builds its corpora in DATA_DIR from the real files in /work/shared/hostevents/real (--real; a case
whose source is missing is skipped with a message), then times each reader in this process with
time.perf_counter, 1 warm-up then the median of --runs timed runs, the two readers of a case taking
turns (bare, stagewatch, bare, stagewatch...). Files are read from the page cache; which parser a
file gets (`sniff.which`) is decided once, outside the timing.

- evtx: the real *.evtx files copied to DATA_DIR/evtx/, read in turn (the list looped over) until
  >= 200,000 records (30,000 with --quick). Bare: `evtx.PyEvtxParser(path).records_json()` and
  json.loads of each record's data. stagewatch: `sniff.read` (the same library, then the mapping to
  HostEvents).
- json: DATA_DIR/winjson-<N>.ndjson, N = 1,000,000 lines (100,000 with --quick), generated with seed
  --seed from the member of otrf__empire_persistence_run_keys_standard_user.zip (Mordor/NXLog flat
  records): line i is source line i mod 40,569 with RecordNumber = i + 1, its @timestamp, EventTime,
  EventReceivedTime and UtcTime moved on by one source span per copy, and about a quarter of the lines
  (seeded choice) rewritten in winlogbeat's shape (winlog.event_data, winlog.event_id...). Bare: read
  the lines, json.loads each. stagewatch: `sniff.read` (winjson).
- auditd: DATA_DIR/auditd-<N>.log, N = 1,000,000 lines (100,000 with --quick): the lines of
  local__auditd_atomic-T1560.002_debian12.log repeated, each copy's audit(SECONDS...:SERIAL) ids moved
  on (seconds by the log's span, serials by its largest serial + 1) so events stay distinct. Bare:
  read the lines, decode, split on spaces and on the first `=` into a dict. That baseline is WEAK: it
  does not handle quoting or hex, does not check the header and does not group the records of an event;
  any real audit reader costs more. stagewatch: `sniff.read` (auditd).
- correlation: placeholder (not built yet); see correlation_case.

records/s counts the records read (evtx records, JSON lines, audit lines); stagewatch's count is its
`stats.host["records"]`. ratio = bare records/s / stagewatch records/s (1.0: as fast as the bare
reader); goal: ratio <= 2.0. A case over its goal is run once more under cProfile (stagewatch side,
on at most 100,000 records) and its top functions by own time are printed.
Details go to DATA_DIR/report-host[-quick].json.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import hashlib
import json
import os
import pstats
import random
import re
import shutil
import statistics
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO)]

import evtx as pyevtx  # noqa: E402
from benchkit import goal, print_table, sha256_file, warm, where  # noqa: E402
from loguru import logger  # noqa: E402

from sensor.correlate.engine import Correlator  # noqa: E402
from sensor.correlate.hosts import HostMap  # noqa: E402
from sensor.correlate.inputs import RuleHit, Staged, Transfer  # noqa: E402
from sensor.hostevents import sniff  # noqa: E402
from sensor.hostevents.base import HEAD_BYTES  # noqa: E402
from sensor.model import HostEvent, NetTuple  # noqa: E402
from sensor.stats import RunStats  # noqa: E402

REAL = Path("/work/shared/hostevents/real")
OTRF_ZIP = "otrf__empire_persistence_run_keys_standard_user.zip"
AUDIT_LOG = "local__auditd_atomic-T1560.002_debian12.log"
MB = 1e6
GOAL_RATIO = 2.0
PROFILE_RECORDS = 100_000
PROFILE_TOP = 5
# (full, --quick)
EVTX_RECORDS = (200_000, 30_000)
JSON_LINES = (1_000_000, 100_000)
AUDIT_LINES = (1_000_000, 100_000)
WINLOGBEAT_SHARE = 0.25  # of the synthetic NDJSON lines
JSON_TIME_FIELDS = ("@timestamp", "EventTime", "EventReceivedTime", "UtcTime")
# what the cases import from sensor/ (a change elsewhere in sensor/ does not touch what is measured);
# the correlation case adds its package here
DIGEST_PATHS = ("sensor/hostevents", "sensor/model.py", "sensor/stats.py", "sensor/errors.py", "sensor/registry.py")


@dataclass(frozen=True)
class Options:
    """What every case gets from the command line."""

    data_dir: Path
    real: Path
    quick: bool
    runs: int
    seed: int
    profile: bool

    def size(self, sizes: tuple[int, int]) -> int:
        return sizes[1] if self.quick else sizes[0]


# -- timing ----------------------------------------------------------------------------------------
@dataclass
class Side:
    """One reader of a case: wall times of the timed runs and what one run read."""

    name: str
    walls: list[float] = field(default_factory=list)
    records: int = 0  # records read by one run
    events: int | None = None  # HostEvents yielded by one run (stagewatch only)
    bad: int = 0  # records stagewatch counted unreadable

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def rate(self) -> float:
        return self.records / self.wall


@dataclass
class CaseResult:
    """A measured case: its corpus, both readers, and the goal on their ratio."""

    name: str
    corpus: str
    bytes: int
    bare: Side
    stagewatch: Side
    goal: float | None = GOAL_RATIO  # ratio (bare rate / stagewatch rate) at most this
    goal_note: str = ""
    notes: list[str] = field(default_factory=list)
    profile: list[dict[str, Any]] | None = None

    @property
    def ratio(self) -> float:
        return self.bare.rate / self.stagewatch.rate


# a reader's run: (records read, HostEvents yielded or None, unreadable records); `limit` stops it early
Run = Callable[[int | None], tuple[int, int | None, int]]


def race(bare: tuple[str, Run], stagewatch: tuple[str, Run], runs: int) -> tuple[Side, Side]:
    """1 warm-up then `runs` timed runs of each reader, taking turns; the counts must agree run to run."""
    sides = (Side(bare[0]), Side(stagewatch[0]))
    fns = (bare[1], stagewatch[1])
    for i in range(runs + 1):
        for side, fn in zip(sides, fns, strict=True):
            t0 = time.perf_counter()
            records, events, bad = fn(None)
            wall = time.perf_counter() - t0
            if i == 0:
                side.records, side.events, side.bad = records, events, bad
            elif (records, events, bad) != (side.records, side.events, side.bad):
                raise SystemExit(f"{side.name}: run {i} read {records} records, the warm-up {side.records}")
            else:
                side.walls.append(wall)
    print(
        "  " + "; ".join(f"{s.name}: {', '.join(f'{w:.3f}' for w in s.walls)} s" for s in sides),
        flush=True,
    )
    return sides


def stagewatch_run(items: list[tuple[str, sniff.Telemetry]]) -> Run:
    """Every HostEvent of `items` through sniff.read, as a consumer of stagewatch's parsers gets them."""

    def run(limit: int | None) -> tuple[int, int | None, int]:
        stats = RunStats()
        events = 0
        for path, what in items:
            for _ in sniff.read(path, what, stats, dt.UTC):
                events += 1
                if limit is not None and stats.host["records"] >= limit:
                    return stats.host["records"], events, stats.host["bad_records"]
        return stats.host["records"], events, stats.host["bad_records"]

    return run


def claim(path: Path, expected: str) -> sniff.Telemetry:
    """sniff.which for `path`; it must pick the `expected` parser."""
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
    what = sniff.which(str(path), head)
    if what is None or what.parser != expected or what.member is not None:
        raise SystemExit(f"{path}: sniff.which gives {what}, expected the {expected} parser")
    return what


def write_atomic(target: Path, lines: Iterable[bytes]) -> None:
    """`lines` into target.part, renamed to `target` once complete (an interrupted run leaves no corpus)."""
    part = target.with_name(target.name + ".part")
    with open(part, "wb") as f:
        for line in lines:
            f.write(line)
    part.replace(target)


# -- evtx ------------------------------------------------------------------------------------------
def evtx_records(path: str) -> int:
    return sum(1 for _ in pyevtx.PyEvtxParser(path).records_json())


def evtx_case(o: Options) -> CaseResult | None:
    """Real EVTX files, looped over: bare pyevtx-rs records_json + json.loads against sniff.read."""
    sources = sorted(o.real.glob("*.evtx"))
    if not sources:
        print(f"\n== evtx: SKIPPED, no *.evtx in {o.real}")
        return None
    d = o.data_dir / "evtx"
    d.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for src in sources:
        dst = d / src.name
        if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
            shutil.copyfile(src, dst)
        files.append(dst)
    counts = {p: evtx_records(str(p)) for p in files}
    target = o.size(EVTX_RECORDS)
    plan: list[Path] = []
    planned = 0
    while planned < target:
        for p in files:
            plan.append(p)
            planned += counts[p]
            if planned >= target:
                break
    nbytes = sum(p.stat().st_size for p in plan)
    corpus = (
        f"{len(files)} real files ({sum(counts.values()):,} records, {sum(p.stat().st_size for p in files):,} B) "
        f"read {len(plan):,} times in turn: {planned:,} records, {nbytes / MB:,.1f} MB"
    )
    (d / "plan.json").write_text(
        json.dumps({"files": {p.name: counts[p] for p in files}, "reads": [p.name for p in plan]}, indent=1) + "\n"
    )
    print(f"\n== evtx: {corpus} ({d})", flush=True)
    warm(files)
    whats = {p: claim(p, "evtx") for p in files}

    def bare(limit: int | None) -> tuple[int, int | None, int]:
        n = 0
        for p in plan:
            for rec in pyevtx.PyEvtxParser(str(p)).records_json():
                json.loads(rec["data"])
                n += 1
        return n, None, 0

    sw = stagewatch_run([(str(p), whats[p]) for p in plan])
    b, s = race(("bare evtx + json.loads", bare), ("stagewatch sniff.read", sw), o.runs)
    return CaseResult(
        "evtx",
        corpus,
        nbytes,
        b,
        s,
        notes=[f"evtx {pyevtx_version()}, PyEvtxParser default threads (0 = the library decides)"],
        profile=maybe_profile(o, b, s, sw),
    )


def pyevtx_version() -> str:
    from importlib.metadata import version

    return version("evtx")


# -- json ------------------------------------------------------------------------------------------
def shift_time(text: Any, delta: dt.timedelta) -> Any:
    """An ISO-like time string moved on by `delta`, written the way it came (separator, digits, Z)."""
    if not isinstance(text, str) or len(text) < 19:
        return text
    zulu = text.endswith("Z")
    body = text[:-1] if zulu else text
    try:
        t = dt.datetime.fromisoformat(body)
    except ValueError:
        return text
    _, dot, frac = body[19:].partition(".")
    spec = {0: "seconds", 3: "milliseconds", 6: "microseconds"}.get(len(frac) if dot else 0)
    if spec is None:
        return text
    return (t + delta).isoformat(sep=body[10], timespec=spec) + ("Z" if zulu else "")


# Mordor/NXLog envelope fields; the rest of a row is the event's data (winlog.event_data)
ENVELOPE = {
    "@timestamp",
    "@version",
    "Category",
    "Channel",
    "EventID",
    "EventReceivedTime",
    "EventTime",
    "EventType",
    "ExecutionProcessID",
    "Hostname",
    "Keywords",
    "Message",
    "Opcode",
    "OpcodeValue",
    "ProviderGuid",
    "RecordNumber",
    "Severity",
    "SeverityValue",
    "SourceModuleName",
    "SourceModuleType",
    "SourceName",
    "Task",
    "ThreadID",
    "Version",
    "host",
    "port",
    "tags",
}


def winlogbeat(row: dict[str, Any]) -> dict[str, Any]:
    """A Mordor flat row in winlogbeat 8's ECS shape (what `winlogbeat -e` writes to its file output)."""
    computer = str(row.get("Hostname") or "")
    event_data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in row.items() if k not in ENVELOPE}
    out: dict[str, Any] = {
        "@timestamp": row.get("@timestamp"),
        "agent": {"type": "winlogbeat", "version": "8.11.0", "name": computer.split(".")[0]},
        "ecs": {"version": "8.0.0"},
        "event": {
            "code": str(row.get("EventID")),
            "provider": row.get("SourceName"),
            "kind": "event",
            "created": row.get("@timestamp"),
            "action": row.get("Category"),
        },
        "host": {"name": computer.lower(), "hostname": computer.split(".")[0].lower()},
        "log": {"level": str(row.get("Severity") or "").lower()},
        "message": row.get("Message"),
        "winlog": {
            "api": "wineventlog",
            "channel": row.get("Channel"),
            "computer_name": computer,
            "event_id": str(row.get("EventID")),
            "provider_name": row.get("SourceName"),
            "provider_guid": row.get("ProviderGuid"),
            "record_id": row.get("RecordNumber"),
            "process": {"pid": row.get("ExecutionProcessID"), "thread": {"id": row.get("ThreadID")}},
            "task": row.get("Category"),
            "opcode": row.get("Opcode"),
            "event_data": event_data,
        },
    }
    return out


def json_lines(rows: list[dict[str, Any]], n: int, seed: int) -> Iterable[bytes]:
    """`n` NDJSON lines from the source rows (see the module docstring); prefix-stable in `n`."""
    stamps = [dt.datetime.fromisoformat(r["@timestamp"].rstrip("Z")) for r in rows if r.get("@timestamp")]
    period = dt.timedelta(seconds=int((max(stamps) - min(stamps)).total_seconds()) + 1)
    rng = random.Random(seed)
    for i in range(n):
        k, j = divmod(i, len(rows))
        row = dict(rows[j])
        row["RecordNumber"] = i + 1
        if k:
            for name in JSON_TIME_FIELDS:
                if name in row:
                    row[name] = shift_time(row[name], period * k)
        if rng.random() < WINLOGBEAT_SHARE:
            row = winlogbeat(row)
        yield json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def ensure_json(o: Options, n: int) -> Path | None:
    src = o.real / OTRF_ZIP
    out = o.data_dir / f"winjson-{n}-s{o.seed}.ndjson"
    if out.is_file():
        return out
    if not src.is_file():
        return None
    t0 = time.monotonic()
    with zipfile.ZipFile(src) as z:
        rows = [json.loads(line) for line in z.read(z.infolist()[0]).splitlines() if line.strip()]
    write_atomic(out, json_lines(rows, n, o.seed))
    print(
        f"  generated {out} ({out.stat().st_size:,} B) from {len(rows):,} source rows in "
        f"{time.monotonic() - t0:.1f} s, sha256 {sha256_file(out)}",
        flush=True,
    )
    return out


def json_case(o: Options) -> CaseResult | None:
    """Synthetic NDJSON (Mordor flat + winlogbeat shapes): lines + json.loads against sniff.read (winjson)."""
    n = o.size(JSON_LINES)
    path = ensure_json(o, n)
    if path is None:
        print(f"\n== json: SKIPPED, {o.real / OTRF_ZIP} missing")
        return None
    nbytes = path.stat().st_size
    corpus = f"{path.name}: {n:,} lines, {nbytes / MB:,.1f} MB (Mordor flat, ~{WINLOGBEAT_SHARE:.0%} winlogbeat)"
    print(f"\n== json: {corpus}", flush=True)
    warm([path])
    what = claim(path, "winjson")

    def bare(limit: int | None) -> tuple[int, int | None, int]:
        n = 0
        with open(path, "rb") as f:
            for line in f:
                json.loads(line)
                n += 1
        return n, None, 0

    sw = stagewatch_run([(str(path), what)])
    b, s = race(("bare lines + json.loads", bare), ("stagewatch sniff.read", sw), o.runs)
    return CaseResult("json", corpus, nbytes, b, s, profile=maybe_profile(o, b, s, sw))


# -- auditd ----------------------------------------------------------------------------------------
AUDIT_ID = re.compile(rb"msg=audit\((\d+)(\.\d+):(\d+)\)")


def audit_lines(lines: list[bytes], n: int) -> Iterable[bytes]:
    """`n` lines: the source repeated, copy k's ids moved on by k x (the log's span, its largest serial + 1)."""
    ids = [m for line in lines if (m := AUDIT_ID.search(line))]
    secs = [int(m[1]) for m in ids]
    span = max(secs) - min(secs) + 2
    serials = max(int(m[3]) for m in ids) + 1
    for i in range(n):
        k, j = divmod(i, len(lines))
        line = lines[j]
        if k:
            line = AUDIT_ID.sub(
                lambda m, k=k: b"msg=audit(%d%s:%d)" % (int(m[1]) + k * span, m[2], int(m[3]) + k * serials),
                line,
                count=1,
            )
        yield line + b"\n"


def ensure_audit(o: Options, n: int) -> Path | None:
    src = o.real / AUDIT_LOG
    out = o.data_dir / f"auditd-{n}.log"
    if out.is_file():
        return out
    if not src.is_file():
        return None
    t0 = time.monotonic()
    lines = [line for line in src.read_bytes().split(b"\n") if line.strip()]
    write_atomic(out, audit_lines(lines, n))
    print(
        f"  generated {out} ({out.stat().st_size:,} B) from {len(lines)} source lines in "
        f"{time.monotonic() - t0:.1f} s, sha256 {sha256_file(out)}",
        flush=True,
    )
    return out


def auditd_case(o: Options) -> CaseResult | None:
    """A real auditd log repeated: lines split on spaces and `=` (a weak baseline) against sniff.read (auditd)."""
    n = o.size(AUDIT_LINES)
    path = ensure_audit(o, n)
    if path is None:
        print(f"\n== auditd: SKIPPED, {o.real / AUDIT_LOG} missing")
        return None
    nbytes = path.stat().st_size
    corpus = f"{path.name}: {n:,} lines, {nbytes / MB:,.1f} MB ({AUDIT_LOG} repeated, ids shifted)"
    print(f"\n== auditd: {corpus}", flush=True)
    warm([path])
    what = claim(path, "auditd")

    def bare(limit: int | None) -> tuple[int, int | None, int]:
        n = 0
        with open(path, "rb") as f:
            for raw in f:
                if not raw.strip():
                    continue
                dict(tok.partition("=")[::2] for tok in raw.decode("utf-8").split())
                n += 1
        return n, None, 0

    sw = stagewatch_run([(str(path), what)])
    b, s = race(("bare lines + split (weak)", bare), ("stagewatch sniff.read", sw), o.runs)
    return CaseResult(
        "auditd",
        corpus,
        nbytes,
        b,
        s,
        goal=None,  # the issue sets goals for EVTX and JSON; a split-only baseline does not parse auditd
        notes=["no goal: the baseline only splits on spaces (no quoting, hex or event grouping)"],
        profile=maybe_profile(o, b, s, sw),
    )


# -- correlation ------------------------------------------------------------------------------------
CORR_EVENTS = (1_000_000, 100_000)  # full, --quick: the JSON corpus of the same size is parsed
CORR_FINDINGS, CORR_HOSTS = 10_000, 2_000


def correlation_inputs(n_events: int, n_findings: int, seed: int) -> tuple[list, list, list, list[HostEvent], HostMap]:
    """Deterministic synthetic evidence: `n_events` host events on CORR_HOSTS hosts (70% process, 15% network,
    10% image loads, 5% file creations), half of `n_findings` outbound transfers and half staged files (a
    third of them the same member), and a host-rule hit for every 50 events."""
    rng = random.Random(seed)
    hosts = HostMap()
    names = [f"WS-{i:04d}.corp.example" for i in range(CORR_HOSTS)]
    ips = [f"10.{i // 250}.{i % 250}.10" for i in range(CORR_HOSTS)]
    for n, ip in zip(names, ips, strict=True):
        hosts.add(n, [ip])
    t0 = 1_763_800_000.0
    events: list[HostEvent] = []
    for i in range(n_events):
        h = rng.randrange(CORR_HOSTS)
        ts = t0 + rng.random() * 86_400
        r = rng.random()
        base = {"ts": ts, "source": "synthetic.json", "record_id": str(i), "provider": "sysmon", "host": names[h]}
        if r < 0.70:
            events.append(HostEvent(code="1", action="process", image=r"C:\x\p.exe", command_line="p.exe -x", **base))
        elif r < 0.85:
            net = NetTuple(ips[h], 40_000 + i % 20_000, f"198.51.{i % 250}.{i % 200}", 443, "tcp")
            events.append(HostEvent(code="3", action="network", net=net, host_ips=(ips[h],), image="p.exe", **base))
        elif r < 0.95:
            events.append(HostEvent(code="7", action="image_load", loaded_image=r"C:\x\zlib1.dll", **base))
        else:
            target = rf"C:\Users\u\AppData\Local\Temp\f{i}.zip"
            events.append(HostEvent(code="11", action="file_create", target_file=target, image="p.exe", **base))
    transfers, staged = [], []
    for k in range(n_findings // 2):
        h = rng.randrange(CORR_HOSTS)
        ts = t0 + rng.random() * 86_400
        sha = f"{k:064x}"
        transfers.append(
            Transfer(
                f"t{k}",
                ts,
                sha,
                5000,
                f"f{k}.zip",
                ips[h],
                50_000,
                "203.0.113.9",
                80,
                "http",
                "outbound",
                "alert",
                "cap.pcap#1",
            )  # fmt: skip
        )
        same = sha if k % 3 == 0 else f"{k + 10**9:064x}"
        path = rf"C:\Users\u\AppData\Local\Temp\f{k}.zip"
        staged.append(Staged(f"s{k}", ts - 30, same, 5000, names[h], path, "alert"))
    hits = [
        RuleHit(
            f"h{i}",
            e.ts,
            e.host,
            (),
            "PythonLibraryCompression",
            "compress",
            "python.exe",
            "python -c",
            1,
            "u",
            None,
            "synthetic.json#1",
        )  # fmt: skip
        for i, e in enumerate(events[::50])
    ]
    return transfers, staged, hits, events, hosts


def correlation_case(o: Options) -> CaseResult | None:
    """Correlation of 1M host events and 10k findings against parsing 1M host events (goal: correlation takes less).

    The parse side is stagewatch's JSON reader over the json case's corpus (the same number of records);
    the correlation side is `Correlator.run` over synthetic evidence held in memory, as `stagewatch
    correlate` holds it after reading the store.
    """
    n = o.size(CORR_EVENTS)
    path = ensure_json(o, n)
    if path is None:
        print(f"\n== correlation: SKIPPED, {o.real / OTRF_ZIP} missing (the parse side needs the JSON corpus)")
        return None
    findings = CORR_FINDINGS if not o.quick else CORR_FINDINGS // 10
    transfers, staged, hits, events, hosts = correlation_inputs(n, findings, o.seed)
    corpus = f"{n:,} host events, {findings:,} findings, {len(hits):,} host findings on {CORR_HOSTS:,} hosts"
    print(f"\n== correlation: {corpus}", flush=True)
    warm([path])
    parse = stagewatch_run([(str(path), claim(path, "winjson"))])

    def correlate(limit: int | None) -> tuple[int, int | None, int]:
        incidents = Correlator(hosts).run(transfers, staged, hits, events)
        return len(events), len(incidents), 0

    b, s = race((f"parse {n:,} JSON records", parse), ("correlate", correlate), o.runs)
    return CaseResult(
        "correlation",
        corpus,
        path.stat().st_size,
        b,
        s,
        goal=1.0,
        goal_note="correlation wall / parse wall",
        notes=[f"{s.events:,} incidents"],
    )


CASES: dict[str, Callable[[Options], CaseResult | None]] = {
    "evtx": evtx_case,
    "json": json_case,
    "auditd": auditd_case,
    "correlation": correlation_case,
}


# -- profile ---------------------------------------------------------------------------------------
def maybe_profile(o: Options, bare: Side, sw: Side, run: Run) -> list[dict[str, Any]] | None:
    """When the case misses its goal: stagewatch's run under cProfile, top functions by own time."""
    ratio = bare.rate / sw.rate
    if not o.profile or ratio <= GOAL_RATIO:
        return None
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    records, _, _ = run(PROFILE_RECORDS)
    prof.disable()
    wall = time.perf_counter() - t0
    st = pstats.Stats(prof)
    total = st.total_tt  # type: ignore[attr-defined]
    rows = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:PROFILE_TOP]  # type: ignore[attr-defined]
    print(
        f"  ratio {ratio:.2f} > {GOAL_RATIO}: stagewatch under cProfile, {records:,} records, {wall:.2f} s; "
        f"top {PROFILE_TOP} by own time:"
    )
    top = []
    for (path, line, func), (cc, nc, tt, ct, _) in rows:
        loc = f"{where(path)}:{line}({func})" if path != "~" else func
        calls = str(nc) if nc == cc else f"{nc}/{cc}"
        top.append({"function": loc, "ncalls": calls, "tottime_s": tt, "share": tt / total, "cumtime_s": ct})
        print(f"    {100 * tt / total:5.1f}%  {tt:7.3f} s own  {ct:7.3f} s cum  {calls:>10} calls  {loc}")
    return top


# -- report ----------------------------------------------------------------------------------------
def code_digest() -> str:
    """sha256 over the measured modules (DIGEST_PATHS): which product code was measured."""
    h = hashlib.sha256()
    files = [f for d in DIGEST_PATHS for f in ([REPO / d] if d.endswith(".py") else (REPO / d).rglob("*.py"))]
    for p in sorted(files):
        h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def side_dict(s: Side) -> dict[str, Any]:
    return {"name": s.name, "walls": s.walls, "records": s.records, "events": s.events, "bad_records": s.bad}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", type=Path, help="scratch folder for the corpora and the report (outside the repo)")
    ap.add_argument("--quick", action="store_true", help="30k EVTX records, 100k JSON and audit lines")
    ap.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up (median reported)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the synthetic NDJSON (default 1)")
    ap.add_argument("--real", type=Path, default=REAL, help=f"the real host-event files (default {REAL})")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--no-profile", action="store_true", help="no cProfile run for a case over its goal")
    a = ap.parse_args(argv)
    names = [c.strip() for c in a.cases.split(",") if c.strip()]
    if unknown := [c for c in names if c not in CASES]:
        raise SystemExit(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
    if a.runs < 1:
        raise SystemExit("--runs must be at least 1")
    a.data_dir.mkdir(parents=True, exist_ok=True)
    o = Options(a.data_dir, a.real, a.quick, a.runs, a.seed, not a.no_profile)
    logger.remove()
    log_counts: Counter[str] = Counter()

    def sink(msg: object) -> None:
        rec = msg.record  # type: ignore[attr-defined]
        log_counts[rec["level"].name] += 1
        if log_counts[rec["level"].name] <= 3:
            print(f"  [log {rec['level'].name}] {rec['message'][:200]}", file=sys.stderr)

    logger.add(sink, level="WARNING")
    t_start = time.monotonic()
    digest = code_digest()
    print(f"bench_host: {'quick' if a.quick else 'full'}, cases {names}, {a.runs} timed runs after 1 warm-up")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, sensor digest {digest}, real files {a.real}")

    results = [r for name in names if (r := CASES[name](o)) is not None]

    head = ["case", "reader", "records", "median s", "records/s", "MB/s", "HostEvents", "ratio"]
    rows = []
    for r in results:
        for s in (r.bare, r.stagewatch):
            events = "" if s.events is None else f"{s.events:,}"
            ratio = f"{r.ratio:.2f}" if s is r.stagewatch else ""
            rate = f"{s.rate:,.0f}"
            rows.append(
                [r.name, s.name, f"{s.records:,}", f"{s.wall:.3f}", rate, f"{r.bytes / MB / s.wall:.1f}", events, ratio]
            )
    print()
    for r in results:
        print(f"{r.name}: {r.corpus}" + "".join(f"; {n}" for n in r.notes))
    if rows:
        print_table(head, rows, "llrrrrrr")
        print(
            "In-process perf_counter medians, files in the page cache. ratio = bare records/s / stagewatch "
            "records/s (1.00 = as fast as the bare reader). MB = 10^6 B."
        )
    ok = []
    for r in results:
        if r.stagewatch.records != r.bare.records:
            print(
                f"NOTE  {r.name}: stagewatch read {r.stagewatch.records:,} records, the bare reader {r.bare.records:,}"
            )
        if r.stagewatch.bad:
            print(f"NOTE  {r.name}: stagewatch counted {r.stagewatch.bad:,} unreadable records")
        if r.goal is not None:
            note = f" ({r.goal_note})" if r.goal_note else ""
            ok.append(goal(r.ratio <= r.goal, f"{r.name}: within {r.goal:g}x of the bare reader: {r.ratio:.2f}x{note}"))
    report = {
        "quick": a.quick,
        "runs": a.runs,
        "seed": a.seed,
        "digest": digest,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "cases": [
            {
                "name": r.name,
                "corpus": r.corpus,
                "bytes": r.bytes,
                "bare": side_dict(r.bare),
                "stagewatch": side_dict(r.stagewatch),
                "ratio": r.ratio,
                "goal": r.goal,
                "goal_note": r.goal_note,
                "notes": r.notes,
                "profile": r.profile,
            }
            for r in results
        ],
        "goals_passed": sum(ok),
        "goals": len(ok),
        "log_records": dict(log_counts),
    }
    out = a.data_dir / f"report-host{'-quick' if a.quick else ''}.json"
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    if log_counts:
        print(f"log records from the parsers: {dict(log_counts)}")
    if code_digest() != digest:
        print(f"WARNING: the measured sensor/ code changed during the run (digest {digest} -> {code_digest()})")
    print(f"{sum(ok)}/{len(ok)} goals met; report {out}; total bench time {time.monotonic() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
