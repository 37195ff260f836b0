"""One direction of a TCP connection: sequence numbers to in-order stream bytes.

Policy (documented, like Suricata's `stream.reassembly` and most stacks): the first copy of a byte
wins. Retransmitted or overlapping bytes that differ from what was delivered are counted as an
anomaly and dropped. Holes that out-of-order data cannot fill (lost packets) are skipped when too
much is waiting behind them or the direction ends, and the sink is told where the gap was.
"""

from __future__ import annotations

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
    """Per-direction reassembly state; `offset` 0 is the first byte after the SYN (or the first seen)."""

    __slots__ = (
        "sink",
        "stats",
        "depth",
        "max_pending",
        "isn",
        "next_off",
        "pending",
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
        self.pending: dict[int, tuple[bytes, float, int]] = {}
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
        if off == nxt:
            self._deliver(payload, ts, index)
            if self.pending:
                self._drain()
        elif off < nxt:
            self._overlap(off, payload)
            if off + len(payload) > nxt:
                self._deliver(payload[nxt - off :], ts, index)
                if self.pending:
                    self._drain()
        else:
            held = self.pending.get(off)
            if held is None or len(held[0]) < len(payload):
                if held is not None:
                    self._compare(held[0], payload[: len(held[0])])
                    self.pending_bytes -= len(held[0])
                self.pending[off] = (payload, ts, index)
                self.pending_bytes += len(payload)
            else:
                self._compare(held[0][: len(payload)], payload)
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
        pending = self.pending
        while pending:
            nxt = self.next_off
            item = pending.pop(nxt, None)
            if item is not None:
                key = nxt
            else:
                key = min(pending)
                if key > nxt:
                    return
                item = pending.pop(key)
            payload, ts, index = item
            self.pending_bytes -= len(payload)
            if key < nxt:
                self._overlap(key, payload)
                if key + len(payload) <= nxt:
                    continue
                payload = payload[nxt - key :]
            self._deliver(payload, ts, index)

    def _skip_gap(self) -> None:
        """Give up on the hole before the first waiting segment (a lost packet)."""
        first = min(self.pending)
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

    def _overlap(self, off: int, payload: bytes) -> None:
        """Bytes already delivered arrive again: count, and compare where the sink still has them."""
        self.overlaps += 1
        self.stats.net["overlaps"] += 1
        n = min(len(payload), self.next_off - off)
        if n > 0 and off + n <= self.depth:
            seen = self.sink.peek(off, n)
            if seen is not None:
                self._compare(seen, payload[:n])

    def _compare(self, first: bytes, again: bytes) -> None:
        if first != again:
            self.conflicts += 1
            self.stats.net["overlap_conflicts"] += 1
