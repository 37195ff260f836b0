"""A file as SMB moves it: pieces at offsets (WRITE requests, READ responses), put back together when it closes.

The pieces are kept as they came (never a buffer as large as the highest offset: a write at 1 TiB costs its own
bytes only); the last write to a byte wins, as on the server's disk. What was never sent is a hole: the file is
handed up as its contiguous runs, the first from offset 0, and every run but a whole file's is truncated.
"""

from __future__ import annotations

import bisect
from typing import NamedTuple


class Run(NamedTuple):
    """Contiguous bytes of a file: `data` sits at file offset `offset`."""

    offset: int
    data: bytes


class Pieces:
    """One direction's pieces of one file: bytes by offset, at most `cap` of them kept."""

    __slots__ = ("pieces", "held", "cap", "dropped", "stamp")

    def __init__(self, cap: int) -> None:
        self.pieces: list[tuple[int, bytes]] = []  # (offset, data) in arrival order: later ones win
        self.held = 0
        self.cap = cap
        self.dropped = 0  # bytes not kept (the cap)
        self.stamp: tuple[float, int, str] | None = None  # the first piece's packet

    def add(self, offset: int, data: bytes, stamp: tuple[float, int, str]) -> None:
        if not data:
            return
        room = self.cap - self.held
        if room <= 0:
            self.dropped += len(data)
            return
        if len(data) > room:
            self.dropped += len(data) - room
            data = data[:room]
        self.pieces.append((offset, data))
        self.held += len(data)
        if self.stamp is None:
            self.stamp = stamp

    def runs(self) -> list[Run]:
        """The file's contiguous runs in offset order, each piece painted over the ones before it."""
        spans: list[list[int]] = []
        for off, data in sorted(self.pieces, key=lambda p: p[0]):
            end = off + len(data)
            if spans and off <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([off, end])
        bufs = [bytearray(end - start) for start, end in spans]
        starts = [s for s, _ in spans]
        for off, data in self.pieces:
            i = bisect.bisect_right(starts, off) - 1
            rel = off - starts[i]
            bufs[i][rel : rel + len(data)] = data
        return [Run(s, bytes(b)) for s, b in zip(starts, bufs, strict=True)]


__all__ = ["Pieces", "Run"]
