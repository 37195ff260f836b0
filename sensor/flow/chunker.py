"""One TCP direction's in-order bytes gathered into chunks before the layers above see them.

The layers above (session dispatch, the extractors, the raw scanner) are Python; called once per packet
they cost more than the packet's bytes. A chunk is handed up when the direction has `chunk_size` bytes
waiting, when anything happens on the other direction (so the two directions' events keep their capture
order: HEAD, 100-continue, 101 Upgrade, pipelining), at a gap, at the end, when the capture file changes,
and once its first byte is `chunk_delay` seconds of capture time old (so a live alert does not wait for
the flow's end; the flow table's sweep checks quiet flows). Each chunk keeps the offset and (time,
packet, capture) of every packet in it.

Because any event on one direction first flushes the other, at most one direction of a connection holds
bytes at a time. This is the reference of the compiled core's chunker (sensor/_flow.pyx).
"""

from __future__ import annotations

from typing import Protocol

from sensor.flow.reassembly import EndReason
from sensor.model import StreamChunk


class ChunkSink(Protocol):
    """What receives a direction's chunks: the session of a connection or a raw stream scanner."""

    def chunk(self, c: StreamChunk) -> None: ...

    def gap(self, offset: int, size: int) -> None: ...

    def end(self, reason: EndReason) -> None: ...

    def peek(self, offset: int, size: int) -> bytes | None: ...


class Source(Protocol):
    source: str  # the capture file being read (flows span rotated files)


class Budget(Protocol):
    used: int


class Chunker:
    """The reassembly sink of one direction (`StreamSink`): gathers its bytes and hands them up in chunks."""

    __slots__ = ("sink", "reader", "budget", "size", "delay", "other", "start", "buf", "offs", "marks", "first", "src")

    def __init__(self, sink: ChunkSink, reader: Source, budget: Budget, size: int, delay: float) -> None:
        self.sink = sink
        self.reader = reader
        self.budget = budget
        self.size = size
        self.delay = delay
        self.other: Chunker | None = None  # the connection's other direction
        self.start = 0  # stream offset of buf[0]
        self.buf = bytearray()
        self.offs: list[int] = []
        self.marks: list[tuple[float, int, str]] = []
        self.first = 0.0  # capture time of the oldest byte waiting
        self.src = ""  # the capture file of the bytes waiting

    def data(self, offset: int, payload: bytes, ts: float, index: int) -> None:
        other = self.other
        if other is not None and other.buf:
            other.flush()  # the other side spoke first: its bytes go up first
        source = self.reader.source
        if self.buf and source is not self.src:
            self.flush()  # a chunk's bytes come from one capture file
        buf = self.buf
        if not buf:
            self.start = offset
            self.first = ts
            self.src = source
        buf += payload
        self.offs.append(offset)
        self.marks.append((ts, index, source))
        self.budget.used += len(payload)
        if len(buf) >= self.size or ts - self.first >= self.delay:
            self.flush()

    def flush(self) -> None:
        """Hand what waits to the sink as one chunk."""
        if not self.buf:
            return
        chunk = StreamChunk(self.start, bytes(self.buf), self.offs, self.marks)
        self.budget.used -= len(chunk.data)
        self.buf = bytearray()
        self.offs, self.marks = [], []
        self.sink.chunk(chunk)

    def stale(self, now: float) -> bool:
        """Bytes wait here since `chunk_delay` seconds before `now`."""
        return bool(self.buf) and now - self.first >= self.delay

    def gap(self, offset: int, size: int) -> None:
        self._flush_both()
        self.sink.gap(offset, size)

    def end(self, reason: EndReason) -> None:
        self._flush_both()
        self.sink.end(reason)

    def peek(self, offset: int, size: int) -> bytes | None:
        """Bytes already delivered, whether they still wait here or went up (overlaps are compared with them)."""
        start = self.start
        if not self.buf or offset + size <= start:
            return self.sink.peek(offset, size)
        if offset >= start:
            piece = bytes(self.buf[offset - start : offset - start + size])
            return piece if len(piece) == size else None
        head = self.sink.peek(offset, start - offset)
        if head is None:
            return None
        tail = bytes(self.buf[: offset + size - start])
        return head + tail if len(tail) == offset + size - start else None

    def _flush_both(self) -> None:
        other = self.other
        if other is not None and other.buf:
            other.flush()
        self.flush()


__all__ = ["ChunkSink", "Chunker"]
