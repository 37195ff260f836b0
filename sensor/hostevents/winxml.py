"""Windows events as XML: Event Viewer "Save as XML", `wevtutil qe /f:xml` (bare <Event> elements with no
root), Sysmon for Linux. UTF-8 or UTF-16 (Event Viewer writes a BOM).

The file is cut at each `</Event>` and every record parsed on its own, so one broken record is
counted and skipped instead of ending the file, and memory stays at one record.
"""

from __future__ import annotations

import codecs
import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import ClassVar

from sensor.errors import InputError
from sensor.hostevents.base import BadRecords, parsers
from sensor.hostevents.fields import WinRecord, event_of
from sensor.model import HostEvent
from sensor.stats import RunStats

NS = "{http://schemas.microsoft.com/win/2004/08/events/event}"
CHUNK = 1 << 20
MAX_RECORD = 16 << 20  # a record longer than this is not an event: counted, skipped


def _decoder(head: bytes) -> tuple[codecs.IncrementalDecoder, int]:
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return codecs.getincrementaldecoder("utf-16")(errors="replace"), 0
    skip = 3 if head.startswith(codecs.BOM_UTF8) else 0
    return codecs.getincrementaldecoder("utf-8")(errors="replace"), skip


def _head_text(head: bytes) -> str:
    dec, skip = _decoder(head)
    return dec.decode(head[skip:])


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def record_of_xml(elem: ET.Element, record_id: str) -> WinRecord:
    """One parsed <Event> element to a WinRecord."""
    system = next((c for c in elem if _local(c.tag) == "System"), None)
    fields: dict[str, str] = {}
    texts: list[str] = []
    provider = code = time = host = rid = None
    if system is not None:
        for c in system:
            tag = _local(c.tag)
            if tag == "Provider":
                provider = c.get("Name")
            elif tag == "EventID":
                code = (c.text or "").strip()
            elif tag == "TimeCreated":
                time = c.get("SystemTime")
            elif tag == "Computer":
                host = (c.text or "").strip() or None
            elif tag == "EventRecordID":
                rid = (c.text or "").strip()
            elif tag == "Channel" and not provider:
                provider = (c.text or "").strip()
    for part in elem:
        tag = _local(part.tag)
        if tag == "EventData":
            for d in part:
                name = d.get("Name")
                if name:
                    fields[name] = d.text or ""
                elif d.text:
                    texts.append(d.text)
        elif tag == "UserData":
            for block in part:
                for d in block:
                    fields[_local(d.tag)] = d.text or ""
    return WinRecord(provider or "", code or "", time, host, rid or record_id, fields, tuple(texts))


def events_in(
    text: str, path: str, tz: dt.tzinfo, stats: RunStats, bad: BadRecords, first: int = 0
) -> Iterator[HostEvent]:
    """HostEvents of the complete <Event> records in `text` (used for syslog-wrapped XML too)."""
    n = first
    pos = 0
    while True:
        start = text.find("<Event", pos)
        if start < 0:
            return
        if text[start + 6 : start + 7] not in (" ", ">"):  # <Events> or <EventData>
            pos = start + 6
            continue
        end = text.find("</Event>", start)
        if end < 0:
            return
        pos = end + 8
        n += 1
        stats.host["records"] += 1
        # Sysmon for Linux writes "&lt unknown process&gt " (no semicolons): repaired, not dropped
        record = text[start:pos].replace("&lt ", "&lt; ").replace("&gt ", "&gt; ")
        try:
            he = event_of(record_of_xml(ET.fromstring(record), str(n)), path, tz)
        except (ET.ParseError, ValueError) as e:
            bad(f"record {n}", str(e))
            continue
        if he is not None:
            stats.host["events"] += 1
            yield he


@parsers.register("winxml")
class WinXml:
    """Windows event XML exports (and Sysmon for Linux records as XML)."""

    name: ClassVar[str] = "winxml"

    @staticmethod
    def sniff(head: bytes, path: str) -> bool:
        text = _head_text(head[:8192]).lstrip()
        return text.startswith("<") and "<Event" in text and (NS[1:-1] in text or "<System>" in text)

    def parse(self, path: str, stats: RunStats, tz: dt.tzinfo) -> Iterator[HostEvent]:
        bad = BadRecords(path, stats, "XML")
        try:
            f = open(path, "rb")  # noqa: SIM115 - read in chunks below
        except OSError as e:
            raise InputError(path, f"cannot read the XML file: {e.strerror or e}") from None
        with f:
            head = f.read(4)
            dec, skip = _decoder(head)
            buf = dec.decode(head[skip:])
            n = 0
            while True:
                chunk = f.read(CHUNK)
                buf += dec.decode(chunk, final=not chunk)
                cut = buf.rfind("</Event>")
                if cut >= 0:
                    done, buf = buf[: cut + 8], buf[cut + 8 :]
                    before = stats.host["records"]
                    yield from events_in(done, path, tz, stats, bad, n)
                    n += stats.host["records"] - before
                elif len(buf) > MAX_RECORD:
                    bad(f"after record {n}", f"no </Event> in {MAX_RECORD} characters")
                    buf = buf[-8:]
                if not chunk:
                    break
            if "<Event " in buf or "<Event>" in buf:
                bad(f"after record {n}", "the file ends inside a record")
        bad.close()


__all__ = ["WinXml", "events_in", "record_of_xml"]
