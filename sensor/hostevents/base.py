"""The host-event parser seam: one class per telemetry format, recognised by content.

A parser reads one file and yields normalized HostEvents. A record it cannot read is counted
(`stats.host["bad_records"]`) and logged once per file with its position, and parsing goes on:
every good record of a damaged file still counts. A file a parser cannot open at all raises
InputError naming it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import ClassVar, Protocol

from loguru import logger

from sensor.model import HostEvent
from sensor.registry import Registry
from sensor.stats import RunStats

HEAD_BYTES = 64 * 1024  # what sniffers see of a file


class Parser(Protocol):
    """Reads one telemetry format."""

    name: ClassVar[str]

    @staticmethod
    def sniff(head: bytes, path: str) -> bool:
        """True when `head` (the file's first HEAD_BYTES) is this format."""
        ...

    def parse(self, path: str, stats: RunStats, tz: dt.tzinfo) -> Iterator[HostEvent]:
        """Every readable record of the file; `tz` is the zone of timestamps that carry none."""
        ...


parsers: Registry[type] = Registry("host-event parser")


# temporary file -> the name a user knows it by ("export.zip!events.json"), while a zip member is parsed
ALIASES: dict[str, str] = {}


def shown(path: str) -> str:
    """The name to print for `path`."""
    return ALIASES.get(path, path)


class BadRecords:
    """Counts unreadable records of one file and logs the first one (the rest are summed at the end)."""

    def __init__(self, path: str, stats: RunStats, fmt: str) -> None:
        self.path, self.stats, self.fmt = shown(path), stats, fmt
        self.count = 0

    def __call__(self, where: str, what: str) -> None:
        self.count += 1
        self.stats.host["bad_records"] += 1
        if self.count == 1:
            logger.warning("{}: {}: {} record unreadable: {}", self.path, where, self.fmt, what)

    def close(self) -> None:
        if self.count > 1:
            logger.warning("{}: {} {} records unreadable in all (the rest were read)", self.path, self.count, self.fmt)


def parse_time(text: str, tz: dt.tzinfo) -> float:
    """ISO 8601 / Windows SystemTime / "YYYY-MM-DD HH:MM:SS(.f)" to epoch seconds; no zone means `tz`."""
    try:
        when = dt.datetime.fromisoformat(text)  # 3.11 reads "Z", a space and 7 fractional digits itself
    except ValueError:
        when = _slow_time(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.timestamp()


def _slow_time(text: str) -> dt.datetime:
    """What fromisoformat refuses: surrounding blanks, more than 7 fractional digits, a lowercase z."""
    t = text.strip()
    t = t if "T" in t else t.replace(" ", "T", 1)
    if t[-1:] in ("Z", "z"):
        t = t[:-1] + "+00:00"
    head, dot, frac = t.partition(".")
    if dot:
        digits = "".join(c for c in frac if c.isdigit())
        t = f"{head}.{digits[:6]}{frac[len(digits) :]}"
    return dt.datetime.fromisoformat(t)


__all__ = ["ALIASES", "HEAD_BYTES", "BadRecords", "Parser", "parse_time", "parsers", "shown"]
