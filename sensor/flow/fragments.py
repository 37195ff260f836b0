"""IPv4 and IPv6 fragment reassembly, bounded in fragments held and in capture time."""

from __future__ import annotations

from sensor.stats import RunStats

MAX_DATAGRAM = 65535  # no reassembled IP payload is longer (jumbograms are not fragmented)


class OversizeDatagram(Exception):
    """Fragments that would make a payload past 65,535 bytes (the "ping of death")."""


class _Datagram:
    """One IP datagram being reassembled: disjoint pieces, the first copy of every byte wins."""

    __slots__ = ("first_ts", "pieces", "total", "fragments")

    def __init__(self, ts: float) -> None:
        self.first_ts = ts
        self.pieces: list[tuple[int, bytes]] = []  # (start, data), sorted, never overlapping
        self.total: int | None = None  # payload length, known once the last fragment came
        self.fragments = 0

    def add(self, start: int, data: bytes, last: bool) -> bytes | None:
        """Keep the bytes of this fragment no earlier fragment had; the whole payload when complete."""
        end = start + len(data)
        if self.total is not None and end > self.total:
            data, end = data[: max(0, self.total - start)], min(end, self.total)
        new = []
        cur = start
        for s, d in self.pieces:
            e = s + len(d)
            if e <= cur:
                continue
            if s >= end:
                break
            if s > cur:
                new.append((cur, data[cur - start : s - start]))
            cur = e
        if cur < end:
            new.append((cur, data[cur - start :]))
        if new:
            self.pieces = sorted(self.pieces + new)
        if last and self.total is None:
            self.total = end
        if self.total is None:
            return None
        covered = 0
        for s, d in self.pieces:
            if s >= self.total:
                break
            if s != covered:
                return None
            covered += len(d)
        if covered < self.total:
            return None
        return b"".join(d for _, d in self.pieces)[: self.total]


class FragmentTable:
    """IPv4 and IPv6 fragments by (src, dst, id, proto), bounded in count and in capture time.

    `stats.net["fragments"]` counts fragment frames; the others count datagrams: fragments_reassembled,
    fragments_evicted (the oldest datagram gave way to the `max_fragments` bound), fragments_expired (not
    complete `timeout` seconds of capture time after its first fragment) and, at `close`,
    fragments_incomplete. A payload past 65,535 bytes is malformed (the "ping of death").
    """

    def __init__(self, stats: RunStats, max_fragments: int, timeout: float) -> None:
        self.stats = stats
        self.max_fragments = max_fragments
        self.timeout = timeout
        self.buffered = 0
        self._table: dict[tuple[bytes, bytes, int, int], _Datagram] = {}  # insertion order: oldest first

    def add(self, key: tuple[bytes, bytes, int, int], start: int, more: bool, data: bytes, ts: float) -> bytes | None:
        """Buffer one fragment; the datagram's payload once every byte of it has arrived."""
        net = self.stats.net
        net["fragments"] += 1
        if start + len(data) > MAX_DATAGRAM:
            raise OversizeDatagram(f"{start + len(data)} bytes")
        table = self._table
        while table:  # expire by capture time, oldest first
            oldest = next(iter(table))
            if table[oldest].first_ts >= ts - self.timeout:
                break
            self.buffered -= table.pop(oldest).fragments
            net["fragments_expired"] += 1
        while self.buffered >= self.max_fragments and table:
            self.buffered -= table.pop(next(iter(table))).fragments
            net["fragments_evicted"] += 1
        dg = table.get(key)
        if dg is None:
            dg = table[key] = _Datagram(ts)
        dg.fragments += 1
        self.buffered += 1
        payload = dg.add(start, data, not more)
        if payload is not None:
            del table[key]
            self.buffered -= dg.fragments
            net["fragments_reassembled"] += 1
        return payload

    def close(self) -> None:
        """End of input: count the datagrams still waiting for fragments, and drop them."""
        self.stats.net["fragments_incomplete"] += len(self._table)
        self._table.clear()
        self.buffered = 0
