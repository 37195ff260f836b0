"""The tuning file (`suppress:` entries, `thresholds:`) and the one call that applies it to each result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from loguru import logger

from sensor.config import parse_duration
from sensor.errors import ConfigError
from sensor.model import Finding, HostFinding, Kind, Tuned
from sensor.stats import RunStats
from sensor.tuning.facts import facts_of
from sensor.tuning.index import EntryIndex
from sensor.tuning.loader import expiry, read_yaml
from sensor.tuning.suppress import MATCH_KEYS, Entry, Matcher
from sensor.tuning.threshold import TRACK_KEYS, Folder, Threshold

ENTRY_KEYS = {"name", "reason", "author", "expires", "__line__", *MATCH_KEYS}
THRESHOLD_KEYS = {"name", "reason", "window", "track", "__line__", *MATCH_KEYS}
EXPIRY_WARNING = 7 * 86400  # entries expiring this soon are named at start, so someone reviews them

T = TypeVar("T", Finding, HostFinding)


def _where(path: Path, raw: dict[str, Any]) -> str:
    return f"{path}:{raw.get('__line__', 1)}"


def _text(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if value is None or not str(value).strip():
        raise ConfigError(where, f"`{key}` is required")
    return str(value).strip()


def _list(data: dict[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    items = data.get(key) or []
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise ConfigError(_where(path, data), f"`{key}` must be a list of mappings")
    return items


def _entry(raw: dict[str, Any], path: Path) -> Entry:
    where = _where(path, raw)
    unknown = set(raw) - ENTRY_KEYS
    if unknown:
        keys = ", ".join(sorted(map(str, unknown)))  # YAML keys may be numbers or null
        raise ConfigError(where, f"unknown keys: {keys} (match keys: {', '.join(MATCH_KEYS)})")
    match = Matcher.parse(raw, where)
    if match.empty():
        raise ConfigError(where, f"an entry needs at least one match key ({', '.join(MATCH_KEYS)})")
    return Entry(
        _text(raw, "name", where),
        _text(raw, "reason", where),
        _text(raw, "author", where),
        expiry(raw.get("expires"), where),
        match,
        where,
    )


def _threshold(raw: dict[str, Any], path: Path) -> Threshold:
    where = _where(path, raw)
    unknown = set(raw) - THRESHOLD_KEYS
    if unknown:
        raise ConfigError(where, f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    track = tuple(str(k) for k in (raw.get("track") or ("host", "rule", "destination")))
    bad = [k for k in track if k not in TRACK_KEYS]
    if bad:
        raise ConfigError(where, f"track: {', '.join(bad)} (one of {', '.join(TRACK_KEYS)})")
    if "window" not in raw:
        raise ConfigError(where, "`window` is required (e.g. 10m)")
    name = _text(raw, "name", where)
    reason = str(raw.get("reason") or f"repeats within {raw['window']} fold into the first alert")
    return Threshold(
        name, reason, parse_duration(raw["window"], where, "window"), track, Matcher.parse(raw, where), where
    )


class Tuner:
    """Suppression entries and thresholds of one tuning file; `apply` is called once per result, in order."""

    def __init__(
        self, entries: list[Entry], thresholds: list[Threshold], clock: Callable[[], float] = time.time
    ) -> None:
        self.entries = entries
        self.index = EntryIndex(entries)
        self.folders = [Folder(t) for t in thresholds]
        self.clock = clock
        self.carried: dict[str, tuple[str, int]] = {}  # an earlier tuner's counts not yet taken (SIGHUP)

    @classmethod
    def load(cls, path: Path | None, clock: Callable[[], float] = time.time) -> Tuner:
        """The tuning in `path` (none: a tuner that changes nothing); expired or expiring entries are logged."""
        if path is None:
            return cls([], [], clock)
        data = read_yaml(path)
        unknown = set(data) - {"suppress", "thresholds", "__line__"}
        if unknown:
            names = ", ".join(sorted(map(str, unknown)))
            raise ConfigError(f"{path}:1", f"unknown sections: {names} (suppress, thresholds)")
        entries = [_entry(raw, path) for raw in _list(data, "suppress", path)]
        thresholds = [_threshold(raw, path) for raw in _list(data, "thresholds", path)]
        for kind, names in (("entry", [e.name for e in entries]), ("threshold", [t.name for t in thresholds])):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ConfigError(str(path), f"{kind} names used twice: {', '.join(twice)}")
        now = clock()
        for e in entries:
            if e.expires is not None and e.expires < now:
                logger.warning("{}: suppression entry {!r} expired {}; it no longer matches", e.where, e.name,
                               time.strftime("%Y-%m-%d", time.gmtime(e.expires)))  # fmt: skip
            elif e.expires is not None and e.expires < now + EXPIRY_WARNING:
                logger.warning("{}: suppression entry {!r} expires {}", e.where, e.name,
                               time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(e.expires)))  # fmt: skip
        return cls(entries, thresholds, clock)

    def count_expired(self, stats: RunStats) -> None:
        """Name each expired entry in the run's statistics (they were logged at load)."""
        now = self.clock()
        for e in self.entries:
            if not e.active(now):
                stats.tuning[f"expired:{e.name}"] = 1

    def apply(self, item: T, stats: RunStats) -> T:
        """The result as it is to be written: suppressed or folded ones become events naming why."""
        if not self.entries and not self.folders:
            return item
        facts = facts_of(item)
        now = self.clock()
        for i in self.index.candidates(facts):
            e = self.entries[i]
            if e.active(now) and e.match.matches(facts):
                stats.tuning[f"suppressed:{e.name}"] += 1
                return self._demote(item, Tuned("suppressed", e.name, e.reason, e.author), stats)
        if not isinstance(item, Finding) or item.kind is not Kind.ALERT:
            return item  # thresholds fold alerts; events already page no one
        for folder in self.folders:
            t = folder.t
            key = t.key(facts)
            if key is None or (not t.match.empty() and not t.match.matches(facts)):
                continue  # not this threshold's: it names no value for a tracked key, or its match keys fail
            window = folder.see(key, item.event_id, item.timestamp)
            if window is None:
                return item
            stats.tuning[f"threshold:{t.name}"] += 1
            return self._demote(item, Tuned("threshold", t.name, t.reason, None, window.first, window.count), stats)
        return item

    def _demote(self, item: T, tuned: Tuned, stats: RunStats) -> T:
        if isinstance(item, Finding):
            if item.kind is Kind.ALERT:
                stats.alerts -= 1
            return replace(item, kind=Kind.EVENT, tuned=tuned)
        return replace(item, tuned=tuned)

    def take_counts(self, stats: RunStats) -> dict[str, tuple[str, int]]:
        """Kept alerts whose repeat count grew since the last call: event.id -> (threshold name, count)."""
        out, self.carried = self.carried, {}
        for folder in self.folders:
            out.update({k: (folder.t.name, n) for k, n in folder.take().items()})
            if folder.evicted:
                stats.tuning[f"threshold_windows_closed_early:{folder.t.name}"] += folder.evicted
                logger.warning("threshold {!r}: {} windows closed early (over {} open)", folder.t.name,
                               folder.evicted, len(folder.open))  # fmt: skip
                folder.evicted = 0
        return out


__all__ = ["Tuner"]
