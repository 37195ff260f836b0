"""One direction of a TCP connection: sequence numbers to in-order stream bytes.

Policy (documented, like Suricata's `stream.reassembly` and most stacks): the first copy of a byte
wins. Retransmitted or overlapping bytes that differ from what was delivered are counted as an
anomaly and dropped. Holes that out-of-order data cannot fill (lost packets) are skipped when too
much is waiting behind them or the direction ends, and the sink is told where the gap was.
"""

from __future__ import annotations

import bisect
from enum import StrEnum
from typing import Protocol

from sensor.stats import RunStats

M32 = 0xFFFFFFFF
HALF = 0x80000000


class EndReason(StrEnum):
    """Why a direction stopped (`stagewatch.flow` records and StreamEnd)."""

    FIN = "fin"
    RST = "rst"
    IDLE = "idle"
    MEMCAP = "memcap"
    FLOW_CAP = "flow_cap"  # more open flows than [limits] max_flows: the least recently active closed
    DEPTH = "depth"
    EOF = "eof"
    SEGMENT = "segment"  # a planned segment's read-ahead ended with the flow still open: cut, not lost


class StreamSink(Protocol):
    """Receives one direction's bytes in order; `peek` lets overlaps be compared with them."""

    def data(self, offset: int, payload: bytes, ts: float, index: int) -> None: ...

    def gap(self, offset: int, size: int) -> None: ...

    def end(self, reason: EndReason) -> None: ...

    def peek(self, offset: int, size: int) -> bytes | None: ...


class HalfStream:
    """Per-direction reassembly state; `offset` 0 is the first byte after the SYN (or the first seen).

    Waiting (out-of-order) data is kept as pieces that never overlap: a copy that arrives later keeps
    only the bytes no earlier copy holds, so the first copy of every byte wins wherever it waits.
    """

    __slots__ = (
        "sink",
        "stats",
        "depth",
        "max_pending",
        "isn",
        "next_off",
        "pending",
        "keys",
        "pending_bytes",
        "fin_off",
        "ended",
        "depth_hit",
        "gaps",
        "gap_bytes",
        "overlaps",
        "conflicts",
    )

    def __init__(self, sink: StreamSink, stats: RunStats, depth: int, max_pending: int) -> None:
        self.sink = sink
        self.stats = stats
        self.depth = depth
        self.max_pending = max_pending
        self.isn: int | None = None  # sequence number of stream offset 0
        self.next_off = 0
        self.pending: dict[int, tuple[bytes, float, int]] = {}  # offset -> piece; pieces never overlap
        self.keys: list[int] = []  # the pending offsets, sorted
        self.pending_bytes = 0
        self.fin_off: int | None = None
        self.ended = False
        self.depth_hit = False
        self.gaps = 0
        self.gap_bytes = 0
        self.overlaps = 0
        self.conflicts = 0

    def syn(self, seq: int) -> None:
        if self.isn is None:
            self.isn = (seq + 1) & M32

    def _offset(self, seq: int) -> int:
        """Stream offset of `seq`, as the signed 32-bit distance from the next expected byte."""
        expected = (self.isn + self.next_off) & M32  # type: ignore[operator]
        return self.next_off + (((seq - expected + HALF) & M32) - HALF)

    def segment(self, seq: int, payload: bytes, ts: float, index: int) -> None:
        """Take one segment's payload; delivers whatever becomes contiguous."""
        if self.ended:
            return
        isn = self.isn
        if isn is None:
            isn = self.isn = seq  # picked up mid-stream: the first byte seen is offset 0
        nxt = self.next_off
        off = nxt + (((seq - isn - nxt + HALF) & M32) - HALF)  # signed 32-bit distance from the next byte
        if off == nxt and not self.pending and nxt + len(payload) <= self.depth and self.fin_off is None:
            # the common case, in order and nothing waiting: straight to the sink
            self.sink.data(nxt, payload, ts, index)
            self.next_off = nxt + len(payload)
            return
        differs = False
        if off < nxt:
            differs = self._overlap(off, payload)
            if off + len(payload) <= nxt:
                self._count(differs)
                return
            payload = payload[nxt - off :]
            off = nxt
        differs |= self._wait(off, payload, ts, index)
        self._count(differs)
        if self.keys and self.keys[0] == self.next_off:
            self._drain()
        if self.pending_bytes > self.max_pending:
            self._skip_gap()
        if self.fin_off is not None and self.next_off >= self.fin_off and not self.pending:
            self.finish(EndReason.FIN)

    def fin(self, seq: int, payload_len: int) -> None:
        """A FIN: the direction ends once everything before it has been delivered."""
        if self.isn is None:
            self.isn = seq
        self.fin_off = self._offset(seq) + payload_len
        if self.next_off >= self.fin_off and not self.pending:
            self.finish(EndReason.FIN)

    def finish(self, reason: EndReason) -> None:
        """End the direction: skip any holes left, deliver what waits behind them, tell the sink."""
        if self.ended:
            return
        while self.pending:
            self._skip_gap()
        self.ended = True
        self.sink.end(reason)

    # -- internals --------------------------------------------------------------------------
    def _wait(self, off: int, payload: bytes, ts: float, index: int) -> bool:
        """Queue the bytes of [off, off+len) that no waiting piece holds; compare the ones it does.

        Returns whether any of them differs from the copy already waiting.
        """
        keys, pending = self.keys, self.pending
        end = off + len(payload)
        i = bisect.bisect_right(keys, off) - 1  # the piece starting at or before `off` may cover it
        if i < 0:
            i = 0
        differs = False
        pos = off  # the first byte of the new copy not yet placed or compared
        while i < len(keys) and pos < end:
            key = keys[i]
            held = pending[key][0]
            held_end = key + len(held)
            if held_end <= pos:
                i += 1
                continue
            if key >= end:
                break
            if key > pos:  # a hole before this piece: the new copy fills it
                self._put(pos, payload[pos - off : key - off], ts, index)
                i += 1  # the piece just inserted sits before `key`
            lo, hi = max(pos, key), min(end, held_end)
            if held[lo - key : hi - key] != payload[lo - off : hi - off]:
                differs = True
            pos = hi
            i += 1
        if pos < end:
            self._put(pos, payload[pos - off :], ts, index)
        if pos > off or differs:
            self.overlaps += 1
            self.stats.net["overlaps"] += 1
        return differs

    def _put(self, off: int, piece: bytes, ts: float, index: int) -> None:
        bisect.insort(self.keys, off)
        self.pending[off] = (piece, ts, index)
        self.pending_bytes += len(piece)

    def _deliver(self, payload: bytes, ts: float, index: int) -> None:
        n = len(payload)
        if not n:
            return
        room = self.depth - self.next_off
        if room <= 0:
            self.next_off += n  # past the depth: tracked, not kept
            return
        if n > room:
            payload = payload[:room]
            self.sink.data(self.next_off, payload, ts, index)
            self.next_off += n
            self.depth_hit = True
            self.stats.net["depth_hits"] += 1
            self.sink.end(EndReason.DEPTH)
            return
        self.sink.data(self.next_off, payload, ts, index)
        self.next_off += n

    def _drain(self) -> None:
        """Deliver the waiting pieces that are now contiguous (pieces never overlap: no trimming)."""
        keys, pending = self.keys, self.pending
        while keys and keys[0] == self.next_off:
            payload, ts, index = pending.pop(keys.pop(0))
            self.pending_bytes -= len(payload)
            self._deliver(payload, ts, index)

    def _skip_gap(self) -> None:
        """Give up on the hole before the first waiting segment (a lost packet)."""
        first = self.keys[0]
        hole = first - self.next_off
        if hole > 0:
            self.gaps += 1
            self.gap_bytes += hole
            self.stats.net["gaps"] += 1
            self.stats.net["gap_bytes"] += hole
            if self.next_off < self.depth:
                self.sink.gap(self.next_off, hole)
            self.next_off = first
        self._drain()

    def _overlap(self, off: int, payload: bytes) -> bool:
        """Bytes already delivered arrive again: counted; compared where the sink still has them."""
        self.overlaps += 1
        self.stats.net["overlaps"] += 1
        n = min(len(payload), self.next_off - off)
        if n > 0 and off + n <= self.depth:
            seen = self.sink.peek(off, n)
            if seen is not None:
                return seen != payload[:n]
        return False

    def _count(self, differs: bool) -> None:
        """One conflict per segment whose bytes differ from the first copy (delivered or waiting)."""
        if differs:
            self.conflicts += 1
            self.stats.net["overlap_conflicts"] += 1
