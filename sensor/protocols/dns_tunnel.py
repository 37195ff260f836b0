"""DNS tunnels: the bytes a client spells into query names (and gets back in answers), put back together.

Messages are grouped per client and registered domain (the Public Suffix List's eTLD+1). When a group ends (idle
for `dns_timeout`, a memory cap, the end of input) its parent zones are learned from the names themselves: the
longest suffix under which at least two different labels were asked. Under each zone the varying labels of each
query are joined, ordered by a sequence label when one counts up (decimal or hex, first or last positions),
else by capture order, retries dropped; the text is decoded as hex and base32 case-blind (resolvers randomise
the case of names, DNS 0x20) and as base64 only where its case survived. Each decoding is scanned as an object.

A group no sequence label orders and where no member starts at a query's first byte is scanned in windows of
16 KiB: random-looking names (CDN hashes, telemetry ids) are common, and gluing them into one large object would
find nothing a window does not. A query name already asked by another client shortly before is the resolver's
copy of it: one tunnel, attributed to the client that asked first (a resolver relays within seconds).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import NamedTuple

from sensor.config import Limits
from sensor.content.headers import zlib_header
from sensor.model import AppMeta, ContentObject, DnsMeta, Limit, LimitHit, NetworkOrigin
from sensor.protocols.dns_message import Message
from sensor.stats import RunStats

WINDOW = 16 * 1024  # decoded bytes per object of a group nothing confirms as a tunnel
SWEEP = 10.0  # seconds of capture time between looks for idle groups
MAX_NAMES = 200_000  # query names remembered to recognise a resolver's copy
COPY_WINDOW = 5.0  # seconds within which the same name from another address is a resolver relaying it
MIN_DATA = 16  # decoded bytes below which a group is not worth an object
MAX_PROBES = 4096  # query starts probed for a member's first bytes
SEQ_POSITIONS = (0, -1, 1, -2)  # label indexes a counter is looked for at, among the varying labels
POSITION = {
    0: "first label",
    1: "second label",
    -1: "last label before the zone",
    -2: "second last label before the zone",
}

HEX = b"0123456789abcdef"
B32 = b"abcdefghijklmnopqrstuvwxyz234567="
B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_="
_DECIMAL = re.compile(rb"[0-9]{1,10}\Z")
_HEXNUM = re.compile(rb"[0-9a-fA-F]{1,8}\Z")
# members whose first bytes say so (SIGNATURES.md): a query's chunk starting with one confirms a tunnel
MAGIC = (b"\x1f\x8b\x08", b"\xfd7zXZ\x00", b"PK\x03\x04", b"7z\xbc\xaf\x27\x1c", b"\x28\xb5\x2f\xfd",
         b"\x04\x22\x4d\x18", b"Rar!\x1a\x07", b"MSCF\x00\x00\x00\x00")  # fmt: skip

OnObject = Callable[[ContentObject, bool], None]


class Entry(NamedTuple):
    """One message of a group: its name's labels left of the registered domain and, for an answer, its data."""

    labels: tuple[bytes, ...]
    payload: bytes  # an answer's TXT strings, NULL rdata or target labels; b"" for a query
    binary: bool  # payload is raw bytes (NULL rdata), not text to decode
    origin: NetworkOrigin  # the datagram or TCP message that carried it (its ts, packet, endpoints)


class Group:
    """The messages of one client under one registered domain, queries or answers."""

    __slots__ = ("client", "domain", "answers", "entries", "held", "last")

    def __init__(self, client: str, domain: bytes, answers: bool) -> None:
        self.client = client
        self.domain = domain
        self.answers = answers
        self.entries: list[Entry] = []
        self.held = 0
        self.last = 0.0


class Reading(NamedTuple):
    """The joined text of a run of messages decoded one way; `starts[i]` is where message i's bytes begin."""

    encoding: str
    data: bytes
    starts: list[int]


class Registered:
    """Registered domains (eTLD+1) by the Public Suffix List, cached on the last labels of a name. One per
    process: reading the list takes about 0.1 s."""

    _shared: Registered | None = None

    def __init__(self) -> None:
        from publicsuffixlist import PublicSuffixList

        self.psl = PublicSuffixList()
        self.cache: dict[tuple[bytes, ...], int] = {}

    @classmethod
    def shared(cls) -> Registered:
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def labels(self, lower: tuple[bytes, ...]) -> int:
        """How many labels from the right make the registered domain (the whole name when it is a public suffix)."""
        key = lower[-6:]
        n = self.cache.get(key)
        if n is None:
            text = b".".join(key).decode("latin-1")
            found = self.psl.privatesuffix(text)
            n = found.count(".") + 1 if found else len(key)
            if len(self.cache) > 100_000:
                self.cache.clear()
            self.cache[key] = n
        return n


class DnsTunnels:
    """Every client's DNS messages, grouped and decoded into objects (one per process, in `Wire.shared`)."""

    def __init__(self, limits: Limits, home_domains: Iterable[str], on_object: OnObject, stats: RunStats) -> None:
        self.limits = limits
        self.home = tuple(d.strip(".").lower().encode() for d in home_domains if d.strip("."))
        self.on_object = on_object
        self.stats = stats
        self.groups: dict[tuple[str, bytes, bool], Group] = {}
        self.held = 0
        self.client_held: Counter[str] = Counter()
        self.names: dict[bytes, tuple[str, float]] = {}  # lowercased query name -> (who asked it first, when)
        self._registered: Registered | None = None  # read on the first DNS message: 0.1 s a capture without DNS saves
        self.last_sweep = 0.0
        self.index = 0

    # -- input ----------------------------------------------------------------------------------
    def message(self, msg: Message, origin: NetworkOrigin) -> None:
        """One DNS message seen on the wire (a datagram, or one message of a TCP stream)."""
        count = self.stats.app
        count["dns.responses" if msg.response else "dns.queries"] += 1
        if origin.ts - self.last_sweep >= SWEEP:
            self.sweep(origin.ts)
        if not msg.questions:
            return
        labels = msg.questions[0].labels
        lower = tuple(label.lower() for label in labels)
        if self._registered is None:
            self._registered = Registered.shared()
        n = self._registered.labels(lower) if lower else 0
        if len(lower) <= n:
            return  # a registered domain or public suffix itself: no label can carry data
        name = b".".join(lower)
        client = origin.dst if msg.response else origin.src
        owner = self.names.get(name)
        if owner is not None and owner[0] != client and origin.ts - owner[1] <= COPY_WINDOW:
            count["dns.resolver_copies"] += 1
            return
        if owner is None or (owner[0] != client and not msg.response):
            if len(self.names) >= MAX_NAMES:
                del self.names[next(iter(self.names))]
            self.names[name] = (client, origin.ts)
        payload, binary = b"", False
        if msg.response:
            payload, binary = _answer_data(msg, lower[-n:])
            if not payload:
                return
        domain = b".".join(lower[-n:])
        key = (client, domain, msg.response)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(client, domain, msg.response)
        size = sum(map(len, labels)) + len(payload) + 64
        group.entries.append(Entry(labels[:-n], payload, binary, origin))
        group.held += size
        group.last = origin.ts
        self.held += size
        self.client_held[client] += size
        self._bound(group)

    def _bound(self, group: Group) -> None:
        lim = self.limits
        if group.held >= lim.stream_depth:
            self._limit(group, lim.stream_depth)
            self._end(group)
        elif self.client_held[group.client] > lim.dns_client_bytes:
            biggest = max((g for g in self.groups.values() if g.client == group.client), key=lambda g: g.held)
            self._limit(biggest, lim.dns_client_bytes)
            self._end(biggest)
        if self.held > lim.dns_memcap:
            for g in sorted(self.groups.values(), key=lambda g: g.last):
                if self.held <= lim.dns_memcap * 3 // 4:
                    break
                self._limit(g, lim.dns_memcap)
                self._end(g)

    def _limit(self, group: Group, value: int) -> None:
        where = f"dns {group.client} {group.domain.decode('latin-1')}: decoded early"
        self.stats.limit(LimitHit(Limit.TUNNEL_MEMORY, where, value))

    def sweep(self, now: float) -> None:
        """Decode the groups idle for `dns_timeout` seconds of capture time (or wall time on a quiet live link)."""
        self.last_sweep = now
        idle = now - self.limits.dns_timeout
        for group in [g for g in self.groups.values() if g.last < idle]:
            self._end(group)

    def flush(self) -> None:
        """End of input: decode every group."""
        for group in list(self.groups.values()):
            self._end(group)
        self.names.clear()

    # -- output ---------------------------------------------------------------------------------
    def _end(self, group: Group) -> None:
        del self.groups[(group.client, group.domain, group.answers)]
        self.held -= group.held
        self.client_held[group.client] -= group.held
        if self.client_held[group.client] <= 0:
            del self.client_held[group.client]
        if len(group.entries) < 2:
            return
        by_zone: dict[tuple[bytes, ...], list[tuple[Entry, tuple[bytes, ...]]]] = {}
        for entry, k in zip(
            group.entries, zones([tuple(x.lower() for x in e.labels) for e in group.entries]), strict=True
        ):
            cut = len(entry.labels) - k
            by_zone.setdefault(tuple(x.lower() for x in entry.labels[cut:]), []).append((entry, entry.labels[:cut]))
        for zone, items in by_zone.items():
            if len(items) >= 2:
                self._tunnel(group, zone, items)

    def _tunnel(self, group: Group, zone: tuple[bytes, ...], items: list[tuple[Entry, tuple[bytes, ...]]]) -> None:
        count = self.stats.app
        zone_text = b".".join((*zone, group.domain)).decode("latin-1")
        seq = sequence([v for _, v in items], 1 if group.answers else 2)
        runs: list[list[tuple[bytes, Entry]]] = []
        lost = 0
        if seq is not None:
            at, base = seq
            numbered: dict[int, tuple[bytes, Entry]] = {}
            for entry, varying in items:
                value = _number(varying, at, base)
                if value is None:
                    count["dns.unsequenced"] += 1
                    continue
                if value in numbered:
                    count["dns.retries"] += 1
                    continue
                i = at % len(varying)
                numbered[value] = (entry.payload if group.answers else b"".join(varying[:i] + varying[i + 1 :]), entry)
            previous = None
            for value in sorted(numbered):
                if previous is None or value != previous + 1:
                    if previous is not None:
                        lost += value - previous - 1
                    runs.append([])
                runs[-1].append(numbered[value])
                previous = value
        else:
            seen: set[bytes] = set()
            run: list[tuple[bytes, Entry]] = []
            for entry, varying in items:
                text = entry.payload if group.answers else b"".join(varying)
                key = b".".join(varying).lower() + b"\0" + text if group.answers else text
                if key in seen:
                    count["dns.retries"] += 1
                    continue
                seen.add(key)
                run.append((text, entry))
            runs.append(run)
        count["dns.tunnels"] += 1
        if lost:
            count["dns.lost_queries"] += lost
        for i, run in enumerate(runs):
            ended_by_loss = i + 1 < len(runs)
            for reading in readings([t for t, _ in run], any(e.binary for _, e in run), group.answers):
                if len(reading.data) < MIN_DATA:
                    continue
                self._objects(group, zone_text, run, reading, seq, ended_by_loss, mid=i > 0, lost=lost)

    def _objects(
        self,
        group: Group,
        zone: str,
        run: list[tuple[bytes, Entry]],
        reading: Reading,
        seq: tuple[int, int] | None,
        ended_by_loss: bool,
        mid: bool,
        lost: int,
    ) -> None:
        data, starts = reading.data, reading.starts
        confirmed = seq is not None or any(may_start(data, s) for s in starts[:MAX_PROBES])
        cap = self.limits.stream_depth if confirmed else WINDOW
        first_origin = run[0][1].origin
        direction = self._direction(first_origin, zone, group.answers)
        label = None if seq is None else f"{POSITION[seq[0]]}, {'decimal' if seq[1] == 10 else 'hex'}"
        for lo in range(0, len(data), cap):
            hi = min(lo + cap, len(data))
            a = bisect.bisect_right(starts, lo) - 1
            b = bisect.bisect_left(starts, hi)
            entries = [e for _, e in run[max(a, 0) : max(b, a + 1)]]
            o = entries[0].origin
            origin = replace(
                first_origin, ts=o.ts, packet=o.packet, source=o.source, protocol="dns", direction=direction
            )
            meta = DnsMeta(
                zone=zone,
                registered_domain=group.domain.decode("latin-1"),
                answers=group.answers,
                queries=len(entries),
                first=entries[0].origin.ts,
                last=entries[-1].origin.ts,
                sequence=label,
                lost=lost,
            )
            capped = confirmed and hi < len(data)
            obj = ContentObject(
                origin=origin,
                data=data[lo:hi],
                truncated=ended_by_loss or capped or mid or lo > 0,
                layers=("dns", reading.encoding),
                index=self.index,
                app=AppMeta("dns", dns=meta),
            )
            self.index += 1
            self.stats.app["dns.objects"] += 1
            self.on_object(obj, True)
            if capped:
                self.stats.limit(LimitHit(Limit.TUNNEL_MEMORY, f"dns {group.client} {zone}", cap))
                break

    def _direction(self, origin: NetworkOrigin, zone: str, answers: bool) -> str:
        """The data's direction: a zone outside home_domains is outside, even when an internal resolver relays it."""
        z = zone.lower().encode("latin-1")
        if any(z == d or z.endswith(b"." + d) for d in self.home):
            return origin.direction
        client_inside = origin.direction in (("inbound", "internal") if answers else ("outbound", "internal"))
        if client_inside:
            return "inbound" if answers else "outbound"
        return origin.direction


def _answer_data(msg: Message, domain: tuple[bytes, ...]) -> tuple[bytes, bool]:
    """The data an answer carries back: NULL rdata (binary), else TXT strings and the labels of targets under
    the same registered domain (text)."""
    raw = b"".join(a.raw for a in msg.answers if a.raw)
    if raw:
        return raw, True
    parts: list[bytes] = []
    n = len(domain)
    for a in msg.answers:
        if a.texts:
            parts.extend(a.texts)
        elif a.target and len(a.target) > n and tuple(x.lower() for x in a.target[-n:]) == domain:
            parts.extend(a.target[:-n])
    return b"".join(parts), False


_ZONE_LABEL = re.compile(rb"[a-z0-9_](?:[a-z0-9_-]{0,30}[a-z0-9])?\Z")


def zones(names: list[tuple[bytes, ...]]) -> list[int]:
    """For each name (lowercased labels left of the registered domain), how many of its rightmost labels are
    its zone: the longest proper suffix that is shared by two names or more and under which two different labels
    were asked (data labels vary; a zone's labels do not). A zone is made of host-name labels of at most 32
    characters: iodine's size probes repeat one long data label in names of different depths, and that label
    is no zone."""
    seen: Counter[tuple[bytes, ...]] = Counter()
    under: dict[tuple[bytes, ...], bytes | None] = {}  # suffix -> the one label seen under it, None when several
    for labels in names:
        m = len(labels)
        for k in range(m):
            suffix = labels[m - k :]
            seen[suffix] += 1
            nxt = labels[m - k - 1]
            was = under.get(suffix, nxt)
            under[suffix] = nxt if was == nxt else None
    out = []
    for labels in names:
        m = len(labels)
        best = 0
        for k in range(1, m):
            suffix = labels[m - k :]
            if _ZONE_LABEL.match(suffix[0]) is None:
                break
            if seen[suffix] >= 2 and under[suffix] is None:
                best = k
            elif seen[suffix] < 2:
                break
        out.append(best)
    return out


def _number(varying: tuple[bytes, ...], at: int, base: int) -> int | None:
    if not -len(varying) <= at < len(varying):
        return None
    label = varying[at]
    if (_DECIMAL if base == 10 else _HEXNUM).match(label) is None:
        return None
    return int(label, base)


def sequence(varyings: list[tuple[bytes, ...]], least: int = 2) -> tuple[int, int] | None:
    """(label position, base) of a counter among the varying labels, or None: a label that reads as a decimal
    or hex number in nearly every message, whose values are many and nearly contiguous (losses allowed). A name
    needs `least` varying labels for one to be a counter (2 for queries: the counter and the data)."""
    best: tuple[tuple[float, float], int, int] | None = None
    total = len(varyings)
    for at in SEQ_POSITIONS:
        need = max(least, at + 1 if at >= 0 else -at)
        for base in (10, 16):
            values = [v for v in (_number(x, at, base) for x in varyings if len(x) >= need) if v is not None]
            if len(values) < max(3, total * 0.8):
                continue
            distinct = len(set(values))
            span = max(values) - min(values) + 1
            if distinct < 3 or span > 2 * distinct + 2:
                continue
            score = (len(values) / total, -span / distinct)
            if best is None or score > best[0]:
                best = (score, at, base)
    return None if best is None else (best[1], best[2])


def may_start(data: bytes, off: int) -> bool:
    """A member may begin at `off`: a format's magic, or a zlib header whose deflate data decodes for a while."""
    head = data[off : off + 10]
    if head.startswith(MAGIC) or (head[:3] == b"BZh" and head[4:10] == b"1AY&SY"):
        return True
    if not zlib_header(data, off):
        return False
    d = zlib.decompressobj()
    try:
        d.decompress(data[off : off + 512], 4096)
    except zlib.error:
        return False
    return True


def readings(chunks: list[bytes], binary: bool, answers: bool) -> list[Reading]:
    """The run's text decoded each way it fits: hex and base32 case-blind, base64 where the case is mixed (it
    survived). When a chunk other than the last is not a whole number of the encoding's quanta, each message may
    have been encoded alone, or the whole text split anywhere: both are read."""
    joined = b"".join(chunks)
    if binary:
        return [Reading("raw", joined, _offsets(chunks, 8))]
    lower = joined.lower()
    out: list[Reading] = []
    if not lower.translate(None, HEX):
        out += _decoded("hex", chunks, 4, 2, _hex)
    else:
        if not lower.translate(None, B32):
            out += _decoded("base32", chunks, 5, 8, _b32)
        if joined != lower and joined != joined.upper() and not joined.translate(None, B64):
            url = b"-" in joined or b"_" in joined
            out += _decoded("base64url" if url else "base64", chunks, 6, 4, _b64)
    if not out and answers:
        out.append(Reading("raw", joined, _offsets(chunks, 8)))
    return out


def _offsets(chunks: list[bytes], bits: int) -> list[int]:
    starts, at = [], 0
    for c in chunks:
        starts.append(at * bits // 8)
        at += len(c)
    return starts


def _decoded(
    name: str, chunks: list[bytes], bits: int, quantum: int, decode: Callable[[bytes], bytes]
) -> list[Reading]:
    out = [Reading(name, decode(b"".join(chunks)), _offsets(chunks, bits))]
    if any(len(c.rstrip(b"=")) % quantum for c in chunks[:-1]):
        parts = [decode(c) for c in chunks]
        starts, at = [], 0
        for p in parts:
            starts.append(at)
            at += len(p)
        out.append(Reading(name, b"".join(parts), starts))
    return out


def _hex(text: bytes) -> bytes:
    text = text.lower()
    return binascii.unhexlify(text[: len(text) & ~1])


def _b32(text: bytes) -> bytes:
    text = text.upper().replace(b"=", b"")
    while len(text) % 8 in (1, 3, 6):
        text = text[:-1]
    try:
        return base64.b32decode(text + b"=" * (-len(text) % 8))
    except binascii.Error:
        return b""


def _b64(text: bytes) -> bytes:
    text = text.replace(b"=", b"").replace(b"-", b"+").replace(b"_", b"/")
    if len(text) % 4 == 1:
        text = text[:-1]
    try:
        return base64.b64decode(text + b"=" * (-len(text) % 4))
    except binascii.Error:
        return b""


__all__ = ["DnsTunnels", "Reading", "may_start", "readings", "sequence", "zones"]
