"""Thresholds: repeats of one alert (same host, rule and destination within a window) fold into the first,
which carries the count, as Suricata's `threshold type limit` and Zeek's notice suppression interval do.

A threshold folds only what its keys can name: an alert with no value for a tracked key (a staged file has
no source, destination or domain; a connection without an HTTP Host, TLS SNI or mail recipient has no
domain) is never folded by it, since an empty value would make unrelated alerts look alike. And two alerts
are repeats only at the same severity with the same reasons, whatever the track keys: a member that holds
`id_rsa` is never folded into an earlier one that did not."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from sensor.tuning.facts import Facts
from sensor.tuning.suppress import Matcher

TRACK_KEYS = ("host", "rule", "destination", "source", "domain", "format")
NETWORK_KEYS = frozenset({"destination", "source", "domain"})  # a connection's values: none for staged files
MAX_TRACKED = 100_000  # open windows held; the oldest is closed early beyond it (counted)
Key = tuple[int, tuple[str, ...], tuple[str, ...]]  # severity, reasons, the tracked values


@dataclass(frozen=True, slots=True)
class Threshold:
    """One threshold: which alerts it applies to, what makes two of them repeats, and the window."""

    name: str
    reason: str
    window: float  # seconds of capture (or file) time
    track: tuple[str, ...]
    match: Matcher  # empty: every alert
    where: str

    def key(self, f: Facts) -> Key | None:
        """What makes two alerts repeats under this threshold; None when `f` has no value for a tracked key."""
        # a network finding's host is its sender; a staged file's is the machine it sits on
        parts = {
            "host": f.host or f.src,
            "rule": f.rules[0] if f.rules else None,
            "destination": f.dst,
            "source": f.src,
            "domain": f.domains[0] if f.domains else None,
            "format": f.format,
        }
        # source and destination name a connection: a host event without one has only its own address
        values = [parts[k] if f.connection or k not in NETWORK_KEYS else None for k in self.track]
        named = tuple(v for v in values if v)
        if len(named) < len(values):
            return None
        return f.severity, tuple(sorted(f.reasons)), named


@dataclass(slots=True)
class Window:
    """An open window: the alert that opened it and how many alerts it holds so far."""

    first: str  # event.id of the alert kept
    start: float
    count: int


class Folder:
    """The open windows of one threshold; `see` says whether an alert opens a window or repeats one."""

    def __init__(self, threshold: Threshold) -> None:
        self.t = threshold
        self.open: OrderedDict[Key, Window] = OrderedDict()
        self.changed: dict[str, int] = {}  # kept alert's event.id -> its window's count, since the last take
        self.evicted = 0

    def see(self, key: Key, event_id: str, ts: float) -> Window | None:
        """The window `key` repeats (its count raised), or None when this alert opens a new one."""
        w = self.open.get(key)
        if w is not None and w.start <= ts < w.start + self.t.window:
            w.count += 1
            self.changed[w.first] = w.count
            return w
        self.open[key] = Window(event_id, ts, 1)
        self.open.move_to_end(key)
        if len(self.open) > MAX_TRACKED:
            self.open.popitem(last=False)
            self.evicted += 1
        return None

    def take(self) -> dict[str, int]:
        """The kept alerts whose count grew since the last call: event.id -> count."""
        out, self.changed = self.changed, {}
        return out


__all__ = ["MAX_TRACKED", "NETWORK_KEYS", "TRACK_KEYS", "Folder", "Key", "Threshold", "Window"]
