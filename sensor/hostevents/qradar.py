"""IBM QRadar AQL result exports (CSV, JSON list, Ariel API `{"events": [...]}`, NDJSON) of the T1560.002 query.

The query (seed 000, "Detect Archive via Library") selects Sysmon events 1, 7 and 11 and names
its columns EventTime, LogSource, UserName, HostIP, ProcessPath, CmdLine, Artifact, ParentProcess
and DetectionSource. Artifact is `COALESCE(ImageLoaded, TargetFilename, '')`: its meaning depends on
the event, which only DetectionSource tells (the query's CASE over EventCode), so the label decides
whether Artifact is a loaded module or a created file. Column names are matched without regard to
case, spaces, underscores or hyphens; column order does not matter.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from loguru import logger

from sensor.errors import InputError
from sensor.hostevents.base import BadRecords, parse_time, parsers
from sensor.model import HostEvent
from sensor.stats import RunStats


def norm(name: str) -> str:
    """A column name reduced for matching: "Event Time", "event_time" and "EventTime" are one name."""
    return re.sub(r"[\s_\-]+", "", name).lower()


# the seed query's output columns (its AS aliases), by normalized name
COLUMNS = {
    norm(c): c
    for c in (
        "EventTime",
        "LogSource",
        "UserName",
        "HostIP",
        "ProcessPath",
        "CmdLine",
        "Artifact",
        "ParentProcess",
        "DetectionSource",
    )
}
# aliases the query invented: generic names (EventTime, UserName, LogSource) also occur in NXLog or
# Mordor JSON, so a file is only claimed when at least one of these is among its columns
DISTINCTIVE = {norm(c) for c in ("HostIP", "ProcessPath", "CmdLine", "Artifact", "ParentProcess", "DetectionSource")}
# the query has no host name column; an export that adds one is used, not reported as unknown
HOST_COLUMNS = {norm(c): "Host" for c in ("HostName", "Host", "Computer", "ComputerName")}
KNOWN = COLUMNS | HOST_COLUMNS
MIN_COLUMNS = 3  # sniff: how many of the query's column names make a QRadar export

# DetectionSource (the query's CASE labels) -> Sysmon event id, action, which field Artifact fills
DETECTIONS: dict[str, tuple[str, str, str | None]] = {
    "compressiondllload": ("7", "image_load", "loaded_image"),  # Artifact = ImageLoaded
    "powershelllibrarycompression": ("1", "process", None),  # Artifact = '' (COALESCE of two nulls)
    "pythonlibrarycompression": ("1", "process", None),
    "stagedcompressedfilecreation": ("11", "file_create", "target_file"),  # Artifact = TargetFilename
}
OTHER = ("qradar", "other", None)  # 'Unknown' or a label of an edited query: Artifact's meaning is unknown

KEY = re.compile(rb'"([^"\\\r\n]{1,64})"\s*:')  # a JSON object key, as sniff sees it in the head
BAD = object()  # _json_rows's stand-in for a row it could not decode (a JSON null is a row, a bad one)
EPOCH_MS_FLOOR = 1e11  # 1e11 s is the year 5138, so a larger number is milliseconds (QRadar's starttime)


def _score(names: Iterable[str]) -> bool:
    found = {norm(n) for n in names} & COLUMNS.keys()
    return len(found) >= MIN_COLUMNS and bool(found & DISTINCTIVE)


def _ts(value: object, tz: dt.tzinfo) -> float:
    """EventTime to epoch seconds: text in `tz` unless it carries a zone, or epoch seconds/milliseconds."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"bad EventTime {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        if not re.fullmatch(r"\d+(\.\d+)?", text):
            return parse_time(text, tz)
        number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"bad EventTime {value!r}")
    return number / 1000.0 if number >= EPOCH_MS_FLOOR else number


def _text(value: object) -> str | None:
    """A cell as text; empty and null are None (the query's COALESCE writes '' for no artifact)."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def event_of(row: Mapping[str, object], path: str, record_id: str, tz: dt.tzinfo) -> HostEvent:
    """One row, keyed by the query's column names (KNOWN values), to a HostEvent; ValueError on a bad EventTime."""
    if row.get("EventTime") in (None, ""):
        raise ValueError("no EventTime")
    ts = _ts(row["EventTime"], tz)
    label = _text(row.get("DetectionSource"))
    code, action, slot = DETECTIONS.get(norm(label or ""), OTHER)
    artifact = _text(row.get("Artifact"))
    ip = _text(row.get("HostIP"))
    return HostEvent(
        ts=ts,
        source=path,
        record_id=record_id,
        provider="qradar",
        code=code,
        action=action,
        host=_text(row.get("Host")),
        host_ips=(ip,) if ip else (),
        image=_text(row.get("ProcessPath")),
        command_line=_text(row.get("CmdLine")),
        parent_image=_text(row.get("ParentProcess")),
        user=_text(row.get("UserName")),
        target_file=artifact if slot == "target_file" else None,
        loaded_image=artifact if slot == "loaded_image" else None,
        label=label,
    )


def _json_rows(text: str, path: str, bad: BadRecords) -> Iterator[object]:
    """The row objects of a JSON list, an Ariel `{"events": [...]}` or NDJSON; a damaged tail counts as bad."""
    body = text.strip()
    try:
        whole = json.loads(body)
    except ValueError as e:
        error = e
    else:
        if isinstance(whole, list):
            yield from whole
            return
        if isinstance(whole, dict):
            events = whole.get("events")
            yield from events if isinstance(events, list) else [whole]  # a one-line NDJSON file is one row
            return
        raise InputError(path, "JSON holds neither rows nor an Ariel result object", "format")
    start = re.match(r'\[|\{\s*"events"\s*:\s*\[', body)
    if start is None or body.split("\n", 1)[0].strip().endswith("}"):
        # NDJSON (one row object per line): a bad line is one bad record, the other lines still count
        lines: list[tuple[int, object, ValueError | None]] = []
        for n, line in enumerate(body.splitlines(), 1):
            if line.strip():
                try:
                    lines.append((n, json.loads(line), None))
                except ValueError as e:
                    lines.append((n, None, e))
        if all(e for _, _, e in lines):
            raise InputError(path, f"not valid JSON: {error}", "format")
        for n, obj, e in lines:
            if e:
                bad(f"line {n}", f"not JSON: {e}")
            yield BAD if e else obj  # a bad line keeps its row number and counts as a record
        return
    # a list cut off or damaged part way: decode element by element and keep every row before the damage
    decoder = json.JSONDecoder()
    i = start.end()
    n = 0
    while True:
        while i < len(body) and body[i] in " \t\r\n,":
            i += 1
        if i >= len(body) or body[i] == "]":
            if i >= len(body):
                bad(f"after row {n}", "the JSON list is cut off")
            return
        try:
            row, i = decoder.raw_decode(body, i)
        except ValueError as e:
            bad(f"row {n + 1}", f"not JSON, the rest of the list is lost: {e}")
            yield BAD
            return
        n += 1
        yield row


@parsers.register("qradar")
class QRadar:
    """QRadar AQL result exports of the T1560.002 query, CSV or JSON, recognised by their column names."""

    name: ClassVar[str] = "qradar"

    @staticmethod
    def sniff(head: bytes, path: str) -> bool:
        """A CSV header or JSON keys naming at least 3 of the query's columns, one of them query-specific."""
        body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
        if body[:1] in (b"[", b"{"):
            return _score(k.decode("utf-8", "replace") for k in KEY.findall(body))
        if b"\x00" in body[:4096]:
            return False  # binary (pcap, EVTX...): never a text export
        line = body.split(b"\n", 1)[0].decode("utf-8", "replace")
        try:
            header = next(csv.reader([line]))
        except (csv.Error, StopIteration):
            return False
        return _score(header)

    def parse(self, path: str, stats: RunStats, tz: dt.tzinfo) -> Iterator[HostEvent]:
        """Every row with a readable EventTime; bad rows are counted and skipped."""
        try:
            with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
                text = f.read()
        except OSError as e:
            raise InputError(path, f"cannot read the QRadar export: {e.strerror or e}") from None
        is_json = text.lstrip()[:1] in ("[", "{")
        bad = BadRecords(path, stats, "QRadar " + ("JSON" if is_json else "CSV"))
        yield from (self._json if is_json else self._csv)(text, path, stats, tz, bad)
        bad.close()

    def _csv(self, text: str, path: str, stats: RunStats, tz: dt.tzinfo, bad: BadRecords) -> Iterator[HostEvent]:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next((r for r in reader if any(c.strip() for c in r)), None)
        if header is None:
            raise InputError(path, "empty QRadar CSV export (no header line)", "empty")
        names = [KNOWN.get(norm(h)) for h in header]
        if "EventTime" not in names:
            what = "none of the QRadar query's columns" if not any(names) else "no EventTime column"
            raise InputError(path, f"{what} in the CSV header ({', '.join(header)[:200]})", "format")
        _warn_unknown(path, [h for h, n in zip(header, names, strict=True) if n is None])
        n = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as e:  # e.g. a field over csv.field_size_limit(): one row lost, the reader goes on
                n += 1
                stats.host["records"] += 1
                bad(f"row {n} (line {reader.line_num})", str(e))
                continue
            if not any(c.strip() for c in cells):
                continue  # blank line: no record
            n += 1
            stats.host["records"] += 1
            if len(cells) != len(header):
                bad(f"row {n} (line {reader.line_num})", f"{len(cells)} fields where the header has {len(header)}")
                continue
            row = {name: cell for name, cell in zip(names, cells, strict=True) if name}
            try:
                event = event_of(row, path, str(n), tz)
            except ValueError as e:
                bad(f"row {n} (line {reader.line_num})", str(e))
                continue
            stats.host["events"] += 1
            yield event

    def _json(self, text: str, path: str, stats: RunStats, tz: dt.tzinfo, bad: BadRecords) -> Iterator[HostEvent]:
        unknown: set[str] = set()
        n = 0
        for obj in _json_rows(text, path, bad):
            n += 1
            stats.host["records"] += 1
            if obj is BAD:
                continue  # already counted as bad by _json_rows
            if not isinstance(obj, dict):
                bad(f"row {n}", f"a JSON {'null' if obj is None else type(obj).__name__}, not a row object")
                continue
            row: dict[str, Any] = {}
            for key, value in obj.items():
                name = KNOWN.get(norm(str(key)))
                if name:
                    row[name] = value
                else:
                    unknown.add(str(key))
            if n == 1 and not row:
                raise InputError(path, "the JSON rows carry none of the QRadar query's columns", "format")
            try:
                event = event_of(row, path, str(n), tz)
            except ValueError as e:
                bad(f"row {n}", str(e))
                continue
            stats.host["events"] += 1
            yield event
        _warn_unknown(path, sorted(unknown))


def _warn_unknown(path: str, names: list[str]) -> None:
    # said once per file: a renamed column would otherwise go missing without a word
    if names:
        logger.warning("{}: {} unknown QRadar column(s) ignored: {}", path, len(names), ", ".join(names))


__all__ = ["COLUMNS", "DETECTIONS", "QRadar", "event_of", "norm"]
