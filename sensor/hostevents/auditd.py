"""Linux audit logs (auditd `audit.log`, RAW or ENRICHED format, with or without a `node=` prefix).

One audit event is several records (SYSCALL, EXECVE, CWD, PATH..., PROCTITLE) that share the id
`msg=audit(SECONDS.MILLIS:SERIAL)`. Records are grouped by that id; a successful execve gives a
`process` HostEvent, and PATH records with nametype CREATE / DELETE give `file_create` /
`file_delete` events carrying the acting process of the event's SYSCALL record.

The file is streamed line by line; only a bounded window of open events is kept, so a multi-GB log
costs little memory. What a parser must know about real logs (hostevents MANIFEST.md, section 3):
- argv comes from EXECVE, never PROCTITLE: the kernel caches proctitle per task, so after an
  execve it may still show the previous program's command line (and it is cut at 128 bytes);
- any string the kernel prints is either double-quoted or, when it holds a space, a quote or a
  non-printable byte, unquoted hex;
- ENRICHED logs append a 0x1d byte and `KEY="value"` translations (user names, syscall names):
  split lines on `\\n` only.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import BinaryIO, ClassVar

from sensor.errors import InputError
from sensor.hostevents.base import BadRecords, parsers
from sensor.model import HostEvent
from sensor.names import from_bytes
from sensor.stats import RunStats

HEADER = re.compile(
    r"(?:node=(?P<node>\S+) )?type=(?P<type>[A-Z0-9_]+) "
    r"msg=audit\((?P<sec>\d+)\.(?P<ms>\d{3}):(?P<serial>\d+)\):(?P<body>.*)",
    re.S,
)
SNIFF = re.compile(rb"(?:node=\S+ )?type=[A-Z0-9_]+ msg=audit\(\d+\.\d{3}:\d+\): ")
FIELD = re.compile(r"""([\w\[\]-]+)=("[^"]*"|'[^']*'|\S*)""")
HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
# printable ASCII and UTF-8 text, tab, and the ENRICHED separator; anything else is a damaged line
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1c\x1e\x1f\x7f]")

WINDOW = 64  # open events: records of one event may come a few events late, never far
FLUSHED_MEMORY = 4096  # closed event ids remembered, so a straggler is not taken for a new event
MAX_LINE = 64 * 1024  # a kernel record is at most ~9 KB (MAX_AUDIT_MESSAGE_LENGTH) plus enrichment
MAX_RECORDS = 4096  # records of one event (a 2 MB argv is ~500 EXECVE records)
MAX_ARGS = 1 << 17  # arguments of one execve kept (a 2 MB argv of one-byte arguments is ~1M; far beyond real use)

# execve/execveat by audit arch, for RAW logs that have no SYSCALL= translation
EXECVE_CALLS = {
    "c000003e": {"59", "322"},  # x86_64
    "40000003": {"11", "358"},  # i386
    "c00000b7": {"221", "281"},  # aarch64
}


def unquote(value: str) -> bytes | None:
    """A kernel-printed string: `"text"` as is, unquoted hex decoded; None for `(null)` and the like."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].encode("utf-8", "surrogateescape")
    if HEX.fullmatch(value):
        return bytes.fromhex(value)
    return None


def text(value: str | None) -> str | None:
    """`unquote` as a name kept exactly (sensor.names: bytes that are not UTF-8 ride as surrogates)."""
    raw = unquote(value) if value is not None else None
    return None if raw is None else from_bytes(raw)


def fields_of(body: str) -> dict[str, str]:
    """`key=value` pairs of a record body; a quoted value must be closed (else the line was cut)."""
    out: dict[str, str] = {}
    for m in FIELD.finditer(body):
        key, value = m.group(1), m.group(2)
        if value[:1] in ('"', "'") and (len(value) < 2 or value[-1] != value[0]):
            raise ValueError(f"unterminated quoted value of {key}")
        out.setdefault(key, value)  # a repeated key is damage, not an update: keep the first
    return out


def command_line(argv: list[str]) -> str:
    """argv joined for display: an argument with white space (or an empty one) goes in double quotes."""
    return " ".join(f'"{a}"' if not a or any(c.isspace() for c in a) else a for a in argv)


def argv_of(execve: dict[str, str]) -> list[str]:
    """argv from the EXECVE fields of one event (merged over its records), long arguments re-joined.

    An argument over the kernel's record size is written as `aN_len=SIZE aN[0]=... aN[1]=...`.
    """
    nums = {int(m.group(1)) for k in execve if (m := re.fullmatch(r"a(\d{1,9})(?:_len|\[\d+\])?", k))}
    present = max(nums) + 1 if nums else 0
    # argc from the record when it has one (a lost record leaves its arguments empty), else the arguments there;
    # never past the last argument present, nor MAX_ARGS: a forged argc or index must not cost its value in time
    argc = int(execve["argc"]) if execve.get("argc", "").isdigit() else present
    argc = min(argc, present, MAX_ARGS)
    argv: list[str] = []
    for i in range(argc):
        if f"a{i}" in execve:
            raw = unquote(execve[f"a{i}"]) or b""
        else:
            chunks, n = [], 0
            while (part := execve.get(f"a{i}[{n}]")) is not None:
                chunks.append(unquote(part) or b"")
                n += 1
            raw = b"".join(chunks)
        argv.append(from_bytes(raw))
    return argv


@dataclass
class _Event:
    """What the parser keeps of one audit event while its records come in."""

    node: str | None
    ts: float
    serial: str
    syscall: dict[str, str] | None = None
    enriched: dict[str, str] = field(default_factory=dict)  # the SYSCALL record's translations
    execve: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    paths: list[dict[str, str]] = field(default_factory=list)
    proctitle: str | None = None
    records: int = 0

    def add(self, rtype: str, fields: dict[str, str], enriched: dict[str, str]) -> None:
        self.records += 1
        if rtype == "SYSCALL" and self.syscall is None:
            self.syscall, self.enriched = fields, enriched
        elif rtype == "EXECVE":
            for key, value in fields.items():
                self.execve.setdefault(key, value)
        elif rtype == "CWD":
            self.cwd = text(fields.get("cwd"))
        elif rtype == "PATH" and fields.get("nametype") in ("CREATE", "DELETE"):
            self.paths.append(fields)
        elif rtype == "PROCTITLE":
            self.proctitle = fields.get("proctitle")


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _enriched(value: str | None) -> str | None:
    return value[1:-1] if value and len(value) >= 2 and value[0] == value[-1] == '"' else value


def events_of(ev: _Event, path: str) -> Iterator[HostEvent]:
    """The HostEvents of one complete audit event: its process start, then its file creations/deletions."""
    sc = ev.syscall or {}
    success = sc.get("success")
    if success == "no" or (success is None and sc.get("exit", "").startswith("-")):
        return  # a failed execve started nothing; a failed open created nothing
    key = text(sc.get("key"))
    proto = HostEvent(
        ts=ev.ts,
        source=path,
        record_id=ev.serial,
        provider="auditd",
        code="EXECVE",
        action="process",
        host=ev.node,
        image=text(sc.get("exe")),
        user=_enriched(ev.enriched.get("UID")) or sc.get("uid"),
        pid=_int(sc.get("pid")),
        ppid=_int(sc.get("ppid")),
        # the audit rule's key (-k): several keys on one rule are hex-encoded and joined by 0x01
        label=key.replace("\x01", ",") if key else None,
    )
    argv: list[str] | None = None
    if ev.execve:
        argv = argv_of(ev.execve)
    elif ev.proctitle is not None and _is_execve(sc, ev.enriched):
        # no EXECVE record (lost or filtered): the proctitle is the new program's, at most 128 bytes
        title = unquote(ev.proctitle) or b""
        argv = [from_bytes(a) for a in title.rstrip(b"\x00").split(b"\x00")]
    if argv is not None:
        yield replace(proto, command_line=command_line(argv))
    for p in ev.paths:
        name = text(p.get("name"))
        if not name or p.get("mode", "").startswith("040"):
            continue  # no name, or a directory (mkdir): Sysmon 11 does not report those either
        if not name.startswith("/") and ev.cwd:
            # relative to the cwd (an openat from another directory fd cannot be resolved here)
            name = posixpath.normpath(posixpath.join(ev.cwd, name))
        action = "file_create" if p["nametype"] == "CREATE" else "file_delete"
        yield replace(proto, code=p["nametype"], action=action, target_file=name)


def _is_execve(sc: dict[str, str], enriched: dict[str, str]) -> bool:
    if "SYSCALL" in enriched:
        return enriched["SYSCALL"] in ("execve", "execveat")
    return sc.get("syscall") in EXECVE_CALLS.get(sc.get("arch", ""), set())


def _lines(f: BinaryIO, bad: BadRecords) -> Iterator[tuple[int, bytes]]:
    """Numbered lines split on b"\\n" only, each at most MAX_LINE bytes; cut or overlong lines are bad."""
    n = 0
    while chunk := f.readline(MAX_LINE):
        n += 1
        if not chunk.endswith(b"\n"):
            if len(chunk) < MAX_LINE:
                bad(f"line {n}", "truncated last line (no newline at the end of the file)")
                return
            while (rest := f.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                pass  # skip the remainder of a line no audit record can be
            bad(f"line {n}", f"line longer than {MAX_LINE} bytes")
            continue
        yield n, chunk[:-1].removesuffix(b"\r")


@parsers.register("auditd")
class Auditd:
    """Linux audit logs: execve process starts and file creations/deletions (PATH CREATE/DELETE)."""

    name: ClassVar[str] = "auditd"

    @staticmethod
    def sniff(head: bytes, path: str) -> bool:
        """Most of the first lines are `[node=HOST ]type=TYPE msg=audit(EPOCH.MS:SERIAL): ...` records."""
        lines = [line for line in head.split(b"\n")[:50] if line.strip()][:10]
        hits = sum(1 for line in lines if SNIFF.match(line))
        return hits > 0 and hits * 2 >= len(lines)

    def parse(self, path: str, stats: RunStats, tz: dt.tzinfo) -> Iterator[HostEvent]:
        """Every event of the file; audit timestamps are UTC epoch seconds, so `tz` is not used."""
        bad = BadRecords(path, stats, "auditd")
        try:
            with open(path, "rb") as f:
                yield from self._events(f, path, stats, bad)
        except OSError as e:
            raise InputError(path, f"cannot read the audit log: {e.strerror or e}") from None
        finally:
            bad.close()

    def _events(self, f: BinaryIO, path: str, stats: RunStats, bad: BadRecords) -> Iterator[HostEvent]:
        open_events: OrderedDict[tuple[str | None, str], _Event] = OrderedDict()
        flushed: deque[tuple[str | None, str]] = deque(maxlen=FLUSHED_MEMORY)
        flushed_set: set[tuple[str | None, str]] = set()

        def close(key: tuple[str | None, str]) -> Iterator[HostEvent]:
            ev = open_events.pop(key)
            if len(flushed) == flushed.maxlen:
                flushed_set.discard(flushed[0])
            flushed.append(key)
            flushed_set.add(key)
            for event in events_of(ev, path):
                stats.host["events"] += 1
                yield event

        for n, raw in _lines(f, bad):
            if not raw.strip():
                continue  # blank line: no record
            stats.host["records"] += 1
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                bad(f"line {n}", "not UTF-8 text")
                continue
            m = HEADER.match(line)
            if m is None or CONTROL.search(line):
                bad(f"line {n}", "no type=... msg=audit(TIME:SERIAL): header" if m is None else "control bytes")
                continue
            body, _, tail = m["body"].partition("\x1d")
            try:
                fields, enriched = fields_of(body), fields_of(tail)
            except ValueError as e:
                bad(f"line {n}", str(e))
                continue
            # the id is time + serial (serials restart at boot), per node in an aggregated log
            key = (m["node"], f"{m['sec']}.{m['ms']}:{m['serial']}")
            if key in flushed_set:
                bad(f"line {n}", f"record of event {key[1]} came more than {WINDOW} events late")
                continue
            ev = open_events.get(key)
            if ev is None:
                ev = open_events[key] = _Event(m["node"], float(f"{m['sec']}.{m['ms']}"), m["serial"])
            if ev.records >= MAX_RECORDS:
                bad(f"line {n}", f"event {key[1]} has more than {MAX_RECORDS} records")
                continue
            ev.add(m["type"], fields, enriched)
            if m["type"] == "EOE":  # end of event: nothing more will come for it
                yield from close(key)
            elif len(open_events) > WINDOW:
                yield from close(next(iter(open_events)))
        while open_events:
            yield from close(next(iter(open_events)))


__all__ = ["Auditd", "argv_of", "command_line", "events_of", "fields_of", "unquote"]
