"""Composition root: builds sources, detector and scanners from Settings; shared by the CLI and the API.

Each PATH (or file found under a folder) is classified by its first bytes: a capture (pcap,
pcapng, or either gzip-compressed) goes to the network scanner, anything else is a staged file,
unless `as_kind="file"` says to scan captures as files too.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import itertools
import mmap
import multiprocessing as mp
import os
import signal
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from queue import Empty
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loguru import logger

from sensor.bridges.base import SeenFile, read_extracted
from sensor.bridges.inputs import Bridges
from sensor.capture.pcapfile import HEAD_BYTES, is_capture
from sensor.config import Settings
from sensor.detect import inner, opaque
from sensor.detect.content_rules import UserRules, load_user_rules
from sensor.detect.detector import Detector
from sensor.errors import InputError, RuleError
from sensor.hostevents.base import HEAD_BYTES as TELEMETRY_HEAD
from sensor.hostevents.sniff import Telemetry, read, which
from sensor.hostrules.engine import HostRules
from sensor.model import (
    Buffer,
    ContentObject,
    FileOrigin,
    Finding,
    FlowRecord,
    HostEvent,
    HostFinding,
    ObjectRecord,
    OpaqueFile,
    Packet,
    SegmentDone,
)
from sensor.output.extract import MemberFiles
from sensor.policy import is_staging_path
from sensor.staging.reader import HostNamer, read_file
from sensor.staging.walk import walk
from sensor.stats import RunStats

if TYPE_CHECKING:
    from sensor.capture.plan import Segment as PlannedSegment
    from sensor.netscan import NetScanner, Result

# Imported where they are used, so that scanning a staged file does not load them: the network path
# (netscan: dpkt, reassembly, protocol extractors), live capture, the folder watcher (watchdog).

Progress = Callable[[str, int], None]
BATCH = 64  # results per message from a worker process


@dataclass(frozen=True, slots=True)
class Job:
    """What one process scans: the inputs, how, and which share of flows and files is its own."""

    paths: tuple[str, ...]
    settings: Settings
    as_kind: str | None = None  # "file": captures are scanned as staged files
    shard: tuple[int, int] = (0, 1)
    skip_captures: bool = False  # captures run as planned segments instead (scan_segments)


def host_rules(settings: Settings) -> HostRules:
    """The bundled Sigma host rules and the analyst's (--rules DIR)."""
    extra = UserRules.scan(settings.user_rules).sigma if settings.user_rules is not None else ()
    return HostRules(settings.observer, settings.host_rules_dir, extra)


def check_rules(settings: Settings) -> UserRules | None:
    """Validate the analyst's rule folder before any input is read: a mistake is one RuleError naming file and line."""
    user, _ = load_user_rules(settings.user_rules)
    if user is not None:
        host_rules(settings)
    return user


def _head(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(HEAD_BYTES)  # a gzip-compressed capture needs a few KB to show its magic
    except OSError:
        return b""  # read_file reports the problem in its own words


def scan_inputs(
    job: Job, stats: RunStats, progress: Progress | None = None
) -> Iterator[Result | HostEvent | HostFinding]:
    """Findings, ended flows, application objects and host events from every input of the job, as they come."""
    settings = job.settings
    tz = zone(settings.tz)
    detector = _detector(settings, stats)
    namer = HostNamer(settings.host, settings.host_from_path, stats)
    net: NetScanner | None = None
    rules: HostRules | None = None
    mine, shards = job.shard
    bridges = Bridges(settings.home_net, stats if mine == 0 else RunStats())  # every process claims; one reads
    try:
        for root in job.paths:
            for path, st in walk(root, stats):
                head = _head(path) if job.as_kind != "file" else b""
                if job.as_kind != "file" and is_capture(head):
                    if job.skip_captures:
                        continue
                    if net is None:
                        from sensor.netscan import NetScanner

                        net = NetScanner(settings, detector, stats, job.shard)
                    try:
                        yield from net.scan(path)
                    except InputError as e:
                        stats.errors["capture"] += 1
                        logger.error("{}", e)
                    if progress is not None:
                        progress(path, st.st_size)
                    continue
                if job.as_kind != "file" and bridges.claim(path, head):
                    if progress is not None:
                        progress(path, st.st_size)
                    continue  # read once every input was seen: logs and the files they describe meet
                if shards > 1 and zlib.crc32(path.encode("utf-8", "surrogateescape")) % shards != mine:
                    continue
                telemetry = None if job.as_kind == "file" else _telemetry(path)
                if telemetry is not None:
                    rules = rules or host_rules(settings)
                    yield from _read_telemetry(path, telemetry, stats, tz, rules, namer.given(path))
                else:
                    yield from _scan_file(path, root, namer(path), detector, stats, opaque=True)
                if progress is not None:
                    progress(path, st.st_size)
        if mine == 0:  # another sensor's outputs are read in one process: logs join across files
            yield from _bridged(bridges, settings, detector, namer, stats)
        if net is not None:
            yield from net.finish()
    finally:
        detector.close()


def _bridged(
    bridges: Bridges, settings: Settings, detector: Detector, namer: HostNamer, stats: RunStats
) -> Iterator[Finding | FlowRecord | ObjectRecord | OpaqueFile]:
    """Zeek's and Suricata's flows, and the files they logged: scanned with what the logs say where the sensor
    kept their bytes, recorded (size and hashes) where it did not, scanned as plain files where no log says."""
    for item in bridges.results():
        if isinstance(item, str):
            yield from _scan_file(item, os.path.dirname(item), namer(item), detector, stats)
        elif isinstance(item, FlowRecord):
            yield item
        else:
            yield from _scan_seen(item, settings, detector, stats)


def _scan_seen(
    seen: SeenFile, settings: Settings, detector: Detector, stats: RunStats
) -> Iterator[Finding | ObjectRecord]:
    ref = seen.app.sensor
    path = ref.extracted if ref is not None else None
    if path is None:
        stats.bridge["files_not_kept"] += 1
        yield ObjectRecord(
            seen.origin, 0, seen.name, seen.size or 0, (ref.sha256 if ref else None) or "",
            ref.mime_type if ref else None, (), seen.truncated, seen.app, scanned=False,
        )  # fmt: skip
        return
    try:
        data = read_extracted(path)
    except OSError as e:
        stats.errors["bridge_file"] += 1
        logger.error("{}: cannot read: {}", path, e.strerror or e)
        return
    stats.files += 1
    stats.bytes += len(data)
    stats.bridge["files_scanned"] += 1
    obj = ContentObject(seen.origin, data, seen.name, seen.truncated, app=seen.app)
    try:
        yield from detector.scan(obj)
        if settings.objects:
            mime = inner.mime_of(bytes(data[: inner.MAGIC_BYTES]))
            yield ObjectRecord(seen.origin, 0, seen.name, len(data), _sha256(data), mime, (), seen.truncated, seen.app)
    except Exception as e:  # the boundary for one file: log where, count, go on
        stats.errors["scan"] += 1
        logger.opt(exception=e).debug("traceback")
        logger.error("{}: internal error while scanning: {}: {}", path, type(e).__name__, e)
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


def _keeper(settings: Settings, stats: RunStats) -> Callable[[str, Buffer], None] | None:
    """--extract: where carved members go (DIR/<sha256[:2]>/<sha256>), counted in `stats`."""
    return MemberFiles(settings.extract_dir, stats).put if settings.extract_dir else None


def _detector(settings: Settings, stats: RunStats) -> Detector:
    """A detector for scan, watch and live alike: --extract applies wherever members are carved."""
    return Detector(settings, stats, keep_member=_keeper(settings, stats))


def tune_gc() -> None:
    """Fewer, larger cyclic collections for scan and live: an open flow table is tens of thousands of
    long-lived objects the collector would walk again and again (27% of the wall of a scan of 30,000
    connections that never close, bench/bench_flood.py). Nothing is frozen: a long-lived process embedding
    the API keeps collecting its own garbage."""
    gc.set_threshold(50_000, 20, 100)


def zone(name: str) -> dt.tzinfo:
    """A --tz value to a zone; an unknown name is a usage error naming it."""
    if name.upper() == "UTC":
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--tz {name!r}: unknown time zone (use an IANA name such as Europe/Berlin)") from None


def _telemetry(path: str) -> Telemetry | None:
    try:
        with open(path, "rb") as f:
            head = f.read(TELEMETRY_HEAD)
    except OSError:
        return None  # read_file reports the problem in its own words
    return which(path, head)


def _read_telemetry(
    path: str, telemetry: Telemetry, stats: RunStats, tz: dt.tzinfo, rules: HostRules, host: str | None = None
) -> Iterator[HostEvent | HostFinding]:
    """The file's host events, each followed by the host findings the rules make of it. A record that names no
    host (auditd's name_format = NONE, an export without a computer field) takes `host` (--host-name or
    --host-from-path); without one it is counted, and the file named in one warning."""
    unnamed = 0
    try:
        for event in read(path, telemetry, stats, tz):
            if event.host is None:
                if host is not None:
                    event = replace(event, host=host)
                else:
                    unnamed += 1
            yield event
            for hit in rules.check(event):
                stats.host["findings"] += 1
                yield hit
    except InputError as e:
        stats.errors["host_events"] += 1
        logger.error("{}", e)
    if unnamed:
        stats.host["unnamed_events"] += unnamed
        logger.warning(
            "{}: {} host events name no host, and none was given (--host-name NAME or --host-from-path REGEX): "
            "they join incidents only through their addresses",
            path,
            unnamed,
        )


def _scan_file(
    path: str, root: str, host: str, detector: Detector, stats: RunStats, opaque: bool = False
) -> Iterator[Finding | OpaqueFile]:
    """The file's findings; with `opaque`, a staged file without any and of no known type whose bytes are
    near-uniform gives an OpaqueFile record instead (scan; watch keeps to findings)."""
    try:
        obj = read_file(path, root, host)
    except InputError as e:
        stats.skipped[e.reason] += 1
        logger.warning("{}", e)
        return
    stats.files += 1
    stats.bytes += obj.origin.size
    try:
        found = False
        for f in detector.scan(obj):
            found = True
            yield f
        if opaque and not found:
            blob = _opaque(obj)
            if blob is not None:
                stats.opaque += 1
                yield blob
    except Exception as e:  # the boundary for one file: log where, count, go on
        stats.errors["scan"] += 1
        logger.opt(exception=e).debug("traceback")
        logger.error("{}: internal error while scanning: {}: {}", path, type(e).__name__, e)
    finally:
        if isinstance(obj.data, mmap.mmap):
            obj.data.close()


def _sha256(data: Buffer) -> str:
    digest = hashlib.sha256()
    for i in range(0, len(data), 1 << 20):
        digest.update(data[i : i + (1 << 20)])
    return digest.hexdigest()


def _opaque(obj: ContentObject) -> OpaqueFile | None:
    """An OpaqueFile for a staged file of at least 64 KiB that libmagic cannot name and whose bytes are
    near-uniform (sensor/detect/opaque.py)."""
    origin = obj.origin
    if not isinstance(origin, FileOrigin) or origin.size < opaque.MIN_SIZE or not is_staging_path(origin.path):
        return None
    mime = inner.mime_of(bytes(obj.data[: inner.MAGIC_BYTES]))
    if mime not in (None, "application/octet-stream"):
        return None
    stat = opaque.measure(obj.data)
    if stat is None:
        return None
    return OpaqueFile(origin, _sha256(obj.data), mime, stat.sample, stat.entropy, stat.chi_square, stat.verdict)


def _worker(job: Job, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    stats = RunStats()
    batch: list[Result] = []
    try:
        for result in scan_inputs(job, stats):
            batch.append(result)
            if len(batch) >= BATCH:
                queue.put(("results", batch))
                batch = []
        queue.put(("results", batch))
        queue.put(("done", stats))
    except BaseException as e:  # reported to the parent, which owns the one-line error
        queue.put(("results", batch))
        queue.put(("failed", f"worker {job.shard[0]}: {type(e).__name__}: {e}", stats))


def scan_parallel(job: Job, workers: int, stats: RunStats, progress: Progress | None = None) -> Iterator[Result]:
    """`workers` processes, each reading every input and keeping its share of IP pairs and files.

    The set of findings equals a one-process run's: a flow lives wholly in the process its IP pair
    hashes to, and event.id does not depend on which process found it.
    """
    # fork: the children start with the modules already imported (spawn re-imports: ~0.4 s each);
    # the children never touch the parent's store connection; they end with os._exit, closing nothing of it
    ctx = mp.get_context("fork")
    queue = ctx.Queue(maxsize=256)
    procs = [
        ctx.Process(target=_worker, args=(Job(job.paths, job.settings, job.as_kind, (i, workers)), queue), daemon=True)
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    running = workers
    try:
        while running:
            kind, *payload = queue.get()
            if kind == "results":
                yield from payload[0]
                continue
            running -= 1
            stats.merge(payload[-1])
            if kind == "failed":
                stats.errors["worker"] += 1
                logger.error("{}", payload[0])
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()


def scan_paths(
    paths: Iterable[str],
    settings: Settings | None = None,
    stats: RunStats | None = None,
    progress: Progress | None = None,
    workers: int = 1,
    as_kind: str | None = None,
) -> Iterator[Finding]:
    """Scan captures, staged files and folders; yields findings as they are verified.

    Bad inputs are logged in one line each and counted in `stats`; the scan goes on.
    """
    job = Job(tuple(paths), settings or Settings(), as_kind)
    stats = stats if stats is not None else RunStats()
    results = scan_parallel(job, workers, stats) if workers > 1 else scan_inputs(job, stats, progress)
    for r in results:
        if isinstance(r, Finding):
            yield r


def watch_inputs(
    folders: Iterable[str],
    settings: Settings,
    stats: RunStats,
    stop: threading.Event,
    settle: float = 2.0,
    existing: bool = False,
) -> Iterator[tuple[str, list[Finding]]]:
    """(path, its findings) each time a watched file is complete; the list replaces that file's earlier findings.

    `existing`: scan what the folders already hold first. Returns once `stop` is set.
    """
    from sensor.staging.watch import Watcher

    detector = _detector(settings, stats)
    namer = HostNamer(settings.host, settings.host_from_path, stats)
    watcher = Watcher(folders, settle)  # validates the folders before anything is scanned
    try:
        if existing:
            for root in watcher.folders:
                for path, _ in walk(root, stats):
                    yield path, list(_scan_file(path, root, namer(path), detector, stats))
        for path in watcher.ready(stop):
            root = next((f for f in watcher.folders if path.startswith(f + os.sep)), os.path.dirname(path))
            yield path, list(_scan_file(path, root, namer(path), detector, stats))
    finally:
        detector.close()


@dataclass(frozen=True, slots=True)
class LiveJob:
    """What `stagewatch live` captures, and how many workers share the interface."""

    iface: str
    settings: Settings
    bpf: str | None = None
    workers: int = 1
    stats_interval: float = 60.0


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """One worker's counters at a stats interval (also the final ones)."""

    worker: int
    packets: int
    kernel_packets: int
    kernel_drops: int
    flows: int
    findings: int


def _live_worker(job: LiveJob, worker: int, group: int, stop: Any, queue: Any, reloads: Any) -> None:  # noqa: ANN401
    from sensor.capture.live import LiveCapture
    from sensor.netscan import NetScanner

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (the `stop` event)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stats = RunStats()
    batch: list[Result] = []
    try:
        cap = LiveCapture(job.iface, job.bpf, (group, job.workers) if job.workers > 1 else None)
    except InputError as e:
        queue.put(("failed", str(e), stats))
        return
    except Exception as e:  # noqa: BLE001 - the parent must hear of any failure, or it waits for ever
        queue.put(("failed", f"worker {worker}: {type(e).__name__}: {e}", stats))
        return
    queue.put(("ready", worker))
    detector = _detector(job.settings, stats)
    net = NetScanner(job.settings, detector, stats)
    last = time.monotonic()
    generation = reloads.value

    def report() -> WorkerStats:
        k = cap.drops()
        return WorkerStats(worker, cap.received, k.packets, k.drops, stats.net["flows"], stats.findings)

    def frames() -> Iterator[list[Packet] | None]:
        nonlocal last, generation
        for batch in cap.packets(stop):
            if reloads.value != generation:  # SIGHUP: new rules, same flows
                generation = reloads.value
                try:
                    detector.reload()
                    queue.put(("reloaded", worker))
                except RuleError as e:
                    queue.put(("reload_failed", f"worker {worker}: {e}; the previous rules stay"))
            if batch is not None:
                stats.packets += len(batch)
                stats.packet_bytes += sum(len(frame.data) for frame in batch)
            now = time.monotonic()
            if now - last >= job.stats_interval:
                last = now
                queue.put(("stats", report()))
            yield batch

    try:
        for result in itertools.chain(net.feed(frames(), cap.source), net.finish()):
            batch.append(result)
            if len(batch) >= BATCH:
                queue.put(("results", batch))
                batch = []
        queue.put(("results", batch))
        queue.put(("stats", report()))
        queue.put(("done", stats))
    except BaseException as e:  # reported to the parent, which owns the one-line error
        queue.put(("results", batch))
        queue.put(("failed", f"worker {worker}: {type(e).__name__}: {e}", stats))
    finally:
        cap.close()
        detector.close()


def live_inputs(
    job: LiveJob,
    stats: RunStats,
    stop: Any,  # noqa: ANN401 - a multiprocessing Event: set it to end the capture
    on_stats: Callable[[WorkerStats], None] | None = None,
    on_ready: Callable[[], None] | None = None,
    reloads: Any = None,  # noqa: ANN401 - a multiprocessing Value("i"): bump it to reload the rules
) -> Iterator[Result]:
    """Results of `job.workers` capture processes on one interface until `stop` is set, then every open flow.

    Each worker owns a PACKET_FANOUT share chosen by IP pair, so every flow lives in one worker.
    """
    ctx = mp.get_context("fork")
    queue = ctx.Queue(maxsize=1024)
    reloads = reloads if reloads is not None else ctx.Value("i", 0)
    group = os.getpid() & 0xFFFF
    procs = [
        ctx.Process(target=_live_worker, args=(job, i, group, stop, queue, reloads), daemon=True)
        for i in range(job.workers)
    ]
    for p in procs:
        p.start()
    running, ready = job.workers, 0
    try:
        while running:
            try:
                kind, *payload = queue.get(timeout=2.0)
            except Empty:
                dead = [p for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
                if dead and queue.empty():  # killed without a word (OOM killer, a signal)
                    logger.error("{} capture worker(s) died (exit codes {})", len(dead), [p.exitcode for p in dead])
                    stats.errors["worker"] += len(dead)
                    stop.set()
                    running -= len(dead)
                    procs = [p for p in procs if p not in dead]
                continue
            if kind == "results":
                yield from payload[0]
            elif kind == "stats":
                if on_stats is not None:
                    on_stats(payload[0])
            elif kind == "reloaded":
                logger.warning("worker {}: rules reloaded", payload[0])
            elif kind == "reload_failed":
                logger.error("{}", payload[0])
            elif kind == "ready":
                ready += 1
                if ready == job.workers and on_ready is not None:
                    on_ready()
            else:
                running -= 1
                stats.merge(payload[-1])
                if kind == "failed":
                    stats.errors["worker"] += 1
                    stop.set()  # one worker cannot capture: the others stop too, their flows flushed
                    logger.error("{}", payload[0])
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()


_DETECTORS: dict[Settings, Detector] = {}  # per process and settings: rules compiled once, whatever the segments
MAX_DETECTORS = 4  # a long-lived Dask worker may serve runs with different settings


def segment_task(seg: PlannedSegment, settings: Settings) -> tuple[list[Result], RunStats]:
    """One planned segment, start to end, in this process: its results and its counters (small records)."""
    from sensor.netscan import NetScanner

    stats = RunStats()
    # keyed by every setting: observer, limits, user rules and tuning all shape what a detector finds
    detector = _DETECTORS.get(settings)
    if detector is None:
        while len(_DETECTORS) >= MAX_DETECTORS:
            _DETECTORS.pop(next(iter(_DETECTORS))).close()
        detector = _DETECTORS[settings] = Detector(settings, stats)
    detector.stats = stats
    detector.keep_member = _keeper(settings, stats)
    for path in (*seg.files, *seg.read_back, *seg.read_ahead):
        if not os.path.exists(path):
            raise InputError(path, "missing: every worker must see the same paths (a shared file system)")
    net = NetScanner(settings, detector, stats)
    results: list[Result] = []
    try:
        results.extend(net.run_segment(seg))
    except InputError as e:
        stats.errors["capture"] += 1
        logger.error("{}", e)
    return results, stats


def scan_segments(
    segments: list[PlannedSegment], settings: Settings, stats: RunStats, workers: int = 1
) -> Iterator[Result | SegmentDone]:
    """Planned segments in this process, or on `workers` forked processes; each segment's results, then its
    SegmentDone marker, as segments finish."""
    if workers <= 1:
        for seg in segments:
            results, seg_stats = segment_task(seg, settings)
            stats.merge(seg_stats)
            yield from results
            yield SegmentDone(seg.key, seg.chain, seg.index)
        return
    ctx = mp.get_context("fork")
    pool = ctx.Pool(workers)
    finished = False
    try:
        tasks = [(seg, settings) for seg in segments]
        for seg, (results, seg_stats) in pool.imap_unordered(_segment_keyed, tasks):
            stats.merge(seg_stats)
            yield from results
            yield SegmentDone(seg.key, seg.chain, seg.index)
        finished = True
    finally:
        # close + join lets idle workers take their stop sentinel; Pool.terminate (what `with` does)
        # can deadlock joining a worker blocked on the task queue's lock
        if finished:
            pool.close()
        else:
            pool.terminate()
        pool.join()


def _segment_keyed(args: tuple[PlannedSegment, Settings]) -> tuple[PlannedSegment, tuple[list[Result], RunStats]]:
    return args[0], segment_task(*args)


def scan_segments_dask(
    segments: list[PlannedSegment], settings: Settings, stats: RunStats, address: str
) -> Iterator[Result | SegmentDone]:
    """Planned segments as tasks on a Dask distributed cluster (`stagewatch[dask]`); results as tasks finish.

    Tasks carry paths, not bytes: every worker must see the same paths. Each worker process compiles
    the rules once (`yara` rules do not pickle). A failed task is one line naming it; the rest go on.
    """
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ValueError("--dask needs the dask extra: pip install 'stagewatch[dask]'") from None
    if not segments:
        return
    # yara-x scanners must be freed on the thread that made them; the Dask client runs an event-loop
    # thread where a later garbage collection could otherwise drop an old detector's scanner
    gc.collect()
    try:
        client = Client(address, timeout="20s")
    except OSError as e:
        raise InputError(address, f"cannot reach the Dask scheduler: {e}") from None
    try:
        futures = {
            client.submit(segment_task, seg, settings, key=f"stagewatch-{abs(hash(seg))}-{seg.index}", pure=False): seg
            for seg in segments
        }
        for fut in as_completed(futures):
            seg = futures[fut]
            try:
                results, seg_stats = fut.result()
            except Exception as e:  # noqa: BLE001 - a remote failure arrives as whatever the task raised
                stats.errors["segment"] += 1
                logger.error("segment {} #{} ({}): {}: {}", seg.chain, seg.index, seg.files[0], type(e).__name__, e)
                continue
            stats.merge(seg_stats)
            yield from results
            yield SegmentDone(seg.key, seg.chain, seg.index)
    finally:
        client.close()
