"""Windows events as JSON: winlogbeat (ECS), NXLog / OTRF Mordor flat records, Splunk exports, evtx dumps,
and syslog rows that carry a Sysmon for Linux XML record. NDJSON (one record a line) or one JSON array.

Each line is its own record: a broken line is counted and skipped, the rest still count.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from sensor.errors import InputError
from sensor.hostevents.base import BadRecords, parsers
from sensor.hostevents.evtx import record_of
from sensor.hostevents.fields import WinRecord, event_of
from sensor.hostevents.winxml import events_in
from sensor.model import HostEvent
from sensor.stats import RunStats

MAX_ARRAY = 512 << 20  # a whole-file JSON array is loaded at once; NDJSON streams
KEYS = (b'"winlog"', b'"EventID"', b'"Event"', b'"SyslogMessage"', b'"EventCode"', b'"event_id"')
NOT_OURS = (b'"DetectionSource"', b'"CmdLine"')  # QRadar exports have their own parser


def _first(d: Mapping[str, Any], *names: str) -> Any:
    for n in names:
        v = d.get(n)
        if v not in (None, ""):
            return v
    return None


def _ips(v: Any) -> tuple[str, ...]:
    if isinstance(v, list):
        return tuple(str(x) for x in v if x)
    return (str(v),) if v else ()


def winlog_record(row: Mapping[str, Any], n: int) -> WinRecord:
    """winlogbeat / Elastic Agent: `winlog.*`, `host.*`, `@timestamp`."""
    w = row["winlog"]
    host = row.get("host") if isinstance(row.get("host"), dict) else {}
    data = dict(w.get("event_data") or {})
    data.update(w.get("user_data") or {})
    return WinRecord(
        provider=str(_first(w, "provider_name", "channel") or ""),
        code=str(_first(w, "event_id") or (row.get("event") or {}).get("code") or ""),
        time=_first(row, "@timestamp"),
        host=_first(w, "computer_name") or host.get("name") or host.get("hostname"),
        record_id=str(_first(w, "record_id") or n),
        data=data,
        host_ips=_ips(host.get("ip")),
    )


def flat_record(row: Mapping[str, Any], n: int) -> WinRecord:
    """NXLog / Mordor / Splunk flat fields: EventID or EventCode, Channel or SourceName, Hostname."""
    utc = row.get("UtcTime")
    time = _first(row, "@timestamp", "TimeCreated", "SystemTime") or (None if utc else _first(row, "EventTime"))
    return WinRecord(
        provider=str(_first(row, "SourceName", "Channel", "ProviderName", "source") or ""),
        code=str(_first(row, "EventID", "EventCode", "event_id") or ""),
        time=str(time) if time else None,
        host=_first(row, "Hostname", "ComputerName", "Computer", "host"),
        record_id=str(_first(row, "RecordNumber", "EventRecordID", "RecordNumber") or n),
        data=row,
    )


@parsers.register("winjson")
class WinJson:
    """Windows event JSON in its common shapes."""

    name: ClassVar[str] = "winjson"

    @staticmethod
    def sniff(head: bytes, path: str) -> bool:
        text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if text[:1] not in (b"{", b"["):
            return False
        return any(k in head for k in KEYS) and not any(k in head for k in NOT_OURS)

    def parse(self, path: str, stats: RunStats, tz: dt.tzinfo) -> Iterator[HostEvent]:
        bad = BadRecords(path, stats, "JSON")
        try:
            f = open(path, "rb")  # noqa: SIM115 - streamed below
        except OSError as e:
            raise InputError(path, f"cannot read the JSON file: {e.strerror or e}") from None
        with f:
            first = f.read(1 << 16)
            if first.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"[":
                rows = self._array(first + f.read(MAX_ARRAY), path)
            else:
                f.seek(0)
                rows = self._lines(f, bad)
            for n, row in enumerate(rows, 1):
                yield from self._row(row, n, path, tz, stats, bad)
        bad.close()

    @staticmethod
    def _array(data: bytes, path: str) -> list[Any]:
        try:
            rows = json.loads(data)
        except ValueError as e:
            raise InputError(path, f"not a valid JSON array: {e}") from None
        return rows if isinstance(rows, list) else [rows]

    @staticmethod
    def _lines(f: Any, bad: BadRecords) -> Iterator[Any]:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as e:
                bad(f"line {n}", f"not JSON: {e}")

    def _row(self, row: Any, n: int, path: str, tz: dt.tzinfo, stats: RunStats, bad: BadRecords) -> Iterator[HostEvent]:
        if not isinstance(row, dict):
            bad(f"record {n}", "not a JSON object")
            return
        if isinstance(row.get("result"), dict):  # Splunk export rows
            row = row["result"]
        raw = row.get("SyslogMessage") or row.get("_raw")
        if isinstance(raw, str) and "<Event" in raw:  # Sysmon for Linux over syslog, Splunk XML events
            yield from events_in(raw, path, tz, stats, bad, n - 1)
            return
        stats.host["records"] += 1
        try:
            if isinstance(row.get("winlog"), dict):
                rec = winlog_record(row, n)
            elif isinstance(row.get("Event"), dict):
                rec = record_of(row["Event"], str(n))
            else:
                rec = flat_record(row, n)
            he = event_of(rec, path, tz)
        except (ValueError, KeyError, TypeError) as e:
            bad(f"record {n}", str(e))
            return
        if he is not None:
            stats.host["events"] += 1
            yield he


__all__ = ["WinJson", "flat_record", "winlog_record"]
