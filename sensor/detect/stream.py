"""Incremental scanning of one direction of a TCP stream, chunk by chunk, with bounded memory.

YARA runs over each new megabyte (with an overlap); a candidate is decided once enough bytes
follow it (LOOKAHEAD) or the stream ends, and a member still running at the end of the buffer
waits, so members spanning many chunks are carved whole. A reassembly gap ends the current
object (SIGNATURES.md §3: a member cut by a gap must not decode into unrelated bytes).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import replace

from sensor.config import MiB
from sensor.detect.detector import Detector, Hint, Root
from sensor.detect.verifiers import Context
from sensor.flow.table import Budget
from sensor.model import Candidate, Container, ContentObject, Finding, NetworkOrigin, StreamChunk

LOOKAHEAD = 1 * MiB  # bytes after a candidate before it is decided: rule (c) needs 1 MiB of output
HINT_LOOKAHEAD = 4 * MiB  # a base64 run is decoded once this much follows its start, or at the end
HINT_MARGIN = 64 * 1024  # kept before a pending hint: its run may begin before the magic


class StreamRoot(Root):
    """A stream is never held whole: its container is its size so far, untyped."""

    def __init__(self, obj: ContentObject, size: Callable[[], int]) -> None:
        super().__init__(obj)
        self._size = size

    def container(self, typed: bool = True) -> Container:
        # A raw stream's head is a protocol's own bytes, not a file type: no libmagic call here
        # (it cost half the findings' time); application objects get typed with the HTTP layer.
        return Container(None, self._size(), None)


class StreamScanner:
    """Sink of one TCP direction's chunks: buffers, scans incrementally and emits findings."""

    def __init__(
        self,
        det: Detector,
        origin: NetworkOrigin,
        emit: Callable[[Finding], None],
        budget: Budget,
        start: int = 0,
        index: int = 0,
    ) -> None:
        """`start`/`index`: the stream offset of the first byte to come and its object number
        (a protocol extractor hands the rest of a direction over to raw scanning)."""
        self.det = det
        self.origin = origin
        self.emit = emit
        self.budget = budget
        self.window = det.limits.window
        self.overlap = det.limits.overlap
        self.buf = bytearray()
        self.base = start  # stream offset of buf[0]
        self.end_off = start  # stream offset just past the buffered bytes
        self.obj_start = start  # stream offset where the current object (since the last gap) starts
        self.obj_index = index
        self.scanned = start  # stream offset up to which YARA has run
        self.retry_at = start  # a member running off the buffer is retried once the stream reaches this
        self.covered = start
        self.cands: list[Candidate] = []  # absolute stream offsets, sorted
        self.hints: list[Hint] = []
        self.seen: set[tuple[object, int]] = set()
        self.marks_off: list[int] = []  # first stream offset of each packet's bytes
        self.marks: list[tuple[float, int, str]] = []  # its (ts, packet number, capture file)
        self.closed = False
        self._snapshot: ContentObject | None = None
        self._root_cache: StreamRoot | None = None
        self._root_for = -1

    # -- ChunkSink ----------------------------------------------------------------------------
    def chunk(self, c: StreamChunk) -> None:
        """A direction's chunk (sensor/flow/chunker.py): its bytes at once, every packet's stamp kept."""
        if self.closed:
            return
        self.buf += c.data
        self.marks_off.extend(c.marks_off)
        self.marks.extend(c.marks)
        self.end_off = c.offset + len(c.data)
        self.budget.used += len(c.data)
        if self.end_off - self.scanned >= self.window:
            self._advance(final=False)

    def peek(self, offset: int, size: int) -> bytes | None:
        if offset < self.base or offset + size > self.end_off:
            return None
        return bytes(self.buf[offset - self.base : offset - self.base + size])

    def gap(self, offset: int, size: int) -> None:
        if self.closed:
            return
        self._advance(final=True)
        self._drop(self.end_off)
        self.obj_index += 1
        self.obj_start = self.base = self.end_off = self.scanned = self.covered = self.retry_at = offset + size

    def end(self, reason: object) -> None:
        if self.closed:
            return
        self._advance(final=True)
        self._drop(self.end_off)
        self.closed = True

    # -- scanning -----------------------------------------------------------------------------
    def _advance(self, final: bool) -> None:
        if self.end_off > self.scanned:
            self._yara(final)
        self._decide(final)
        self._decide_hints(final)
        keep = self.scanned - self.overlap
        if self.cands:
            keep = min(keep, self.cands[0].offset)
        if self.hints:
            keep = min(keep, self.hints[0].offset - HINT_MARGIN)
        self._snapshot = None  # not kept between advances: it would double the memory held
        self._drop(max(keep, self.base))

    def _yara(self, final: bool) -> None:
        start = max(self.obj_start, self.scanned - self.overlap, self.base)
        view = memoryview(self.buf)[start - self.base : self.end_off - self.base]
        try:
            cands, hints = self.det.candidates(view, self._where(), at_start=start == self.obj_start)
        finally:
            view.release()
        for c in cands:
            key = (c.format, start + c.offset)
            if key not in self.seen and start + c.offset >= self.covered:
                self.seen.add(key)
                bisect.insort(self.cands, Candidate(c.rule, c.format, start + c.offset), key=lambda x: x.offset)
        for h in hints:
            key = (h.encoding, start + h.offset)
            if key not in self.seen:
                self.seen.add(key)
                bisect.insort(self.hints, Hint(h.encoding, start + h.offset), key=lambda x: x.offset)
        self.scanned = self.end_off

    def _decide(self, final: bool) -> None:
        if not self.cands or (not final and self.end_off < self.retry_at):
            return
        obj = self._object()
        ctx = Context(self.det.limits, self._where(), at_object_start=self.base == self.obj_start, unproven=[])
        while self.cands:
            cand = self.cands[0]
            if cand.offset < self.covered:
                self.cands.pop(0)
                continue
            if not final and self.end_off - cand.offset < LOOKAHEAD:
                return
            rel = Candidate(cand.rule, cand.format, cand.offset - self.base)
            v = self.det.verify(obj.data, rel, ctx, count=False)
            if v is not None and not final and v.offset + v.length >= len(obj.data) and v.truncated:
                self.retry_at = self.end_off + LOOKAHEAD  # still running at the buffer's end: wait
                return
            self.cands.pop(0)
            self.det.tally(cand, v)
            if v is None:
                continue
            self.covered = cand.offset + max(v.length, 1)
            origin = self._at(cand.offset)
            self.emit(self.det.finding(obj, self._root(obj), cand, v, origin, self.base - self.obj_start))

    def _decide_hints(self, final: bool) -> None:
        """Decode the runs of every hint that is old enough (or all at the end), in one pass."""
        limit = self.end_off if final else self.end_off - HINT_LOOKAHEAD
        ready = [h for h in self.hints if h.offset <= limit]
        if not ready:
            return
        self.hints = [h for h in self.hints if h.offset > limit]
        obj = self._object()
        rel = [Hint(h.encoding, h.offset - self.base) for h in ready if h.offset >= self.base]
        spans = [(0, self.covered - self.base)] if self.covered > self.base else []
        base = self.base - self.obj_start
        runs: list[tuple[int, int]] = []
        for f in self.det.hints(obj, self._root(obj), 0, rel, spans, self._where(), base, runs):
            origin = self._at(self.obj_start + (f.encoding_offset or 0))
            self.emit(replace(f, origin=origin, timestamp=origin.ts))
        if runs:  # hints that arrived later inside a run decoded now were consumed with it
            ends = [(self.base + a, self.base + b) for a, b in runs]
            self.hints = [h for h in self.hints if not any(a <= h.offset < b for a, b in ends)]

    # -- helpers ------------------------------------------------------------------------------
    def _object(self) -> ContentObject:
        """The buffered bytes as an object, copied once per advance and only when something is verified."""
        if self._snapshot is None:
            self._snapshot = ContentObject(origin=self.origin, data=bytes(self.buf), index=self.obj_index)
        return self._snapshot

    def _root(self, obj: ContentObject) -> StreamRoot:
        """One root per stream object."""
        if self._root_for != self.obj_index or self._root_cache is None:
            self._root_cache = StreamRoot(obj, lambda: self.end_off - self.obj_start)
            self._root_for = self.obj_index
        return self._root_cache

    def _where(self) -> str:
        o = self.origin
        return f"{o.source}: {o.transport} {o.src}:{o.sport} > {o.dst}:{o.dport} object {self.obj_index}"

    def _at(self, offset: int) -> NetworkOrigin:
        """The origin stamped with the packet that carried stream byte `offset`."""
        i = bisect.bisect_right(self.marks_off, offset) - 1
        ts, index, source = self.marks[max(i, 0)] if self.marks else (self.origin.flow_start, 0, self.origin.source)
        return replace(self.origin, ts=ts, packet=index, source=source)

    def _drop(self, upto: int) -> None:
        """Forget buffered bytes before stream offset `upto`."""
        n = min(upto, self.end_off) - self.base
        if n <= 0:
            return
        del self.buf[:n]
        self.budget.used -= n
        self.base += n
        i = bisect.bisect_right(self.marks_off, self.base) - 1
        if i > 0:
            del self.marks_off[:i]
            del self.marks[:i]
        if len(self.seen) > 4096:
            self.seen = {k for k in self.seen if k[1] >= self.base}

    def buffered(self) -> int:
        return len(self.buf)


__all__ = ["LOOKAHEAD", "StreamScanner"]
