"""One TCP connection's application layer: choose an extractor, feed it, fall back to raw scanning.

Until the protocol is known both directions are held (a server greeting comes before the
client's first command). When no extractor claims the connection, or one gives up on a
direction (malformed data, a gap), that direction's bytes go to a raw stream scanner from the
stream offset where parsing stopped, so a member is never lost because its wrapping was broken.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import replace

from sensor.config import Limits
from sensor.flow.chunker import ChunkSink
from sensor.flow.reassembly import EndReason
from sensor.model import AppMeta, ContentObject, Finding, Format, Kind, NetworkOrigin, StreamChunk, StreamDecode
from sensor.protocols.base import DirBuffer, Extractor, extractors
from sensor.stats import RunStats

SNIFF_MAX = 16 * 1024  # bytes held per direction before a connection no extractor claims goes raw

MakeRaw = Callable[[int, int, int, str | None], ChunkSink]  # (direction, offset, index, protocol)


_ORDER: dict[int, list[tuple[str, type]]] = {}


def _by_port(port: int) -> list[tuple[str, type]]:
    """The extractors, those registered for `port` first (asked once per port and connection)."""
    ordered = _ORDER.get(port)
    if ordered is None or len(ordered) != len(extractors):
        if len(_ORDER) > 4096:
            _ORDER.clear()
        ordered = _ORDER[port] = sorted(extractors.items(), key=lambda kv: port not in kv[1].ports)
    return ordered


class DirSink:
    """The reassembly sink of one direction: forwards to its session."""

    __slots__ = ("session", "d")

    def __init__(self, session: Session, d: int) -> None:
        self.session = session
        self.d = d

    def chunk(self, c: StreamChunk) -> None:
        self.session.chunk(self.d, c)

    def gap(self, offset: int, size: int) -> None:
        self.session.gap(self.d, offset, size)

    def end(self, reason: EndReason) -> None:
        self.session.end(self.d, reason)

    def peek(self, offset: int, size: int) -> bytes | None:
        return self.session.peek(self.d, offset, size)


class Session:
    """Both directions of one connection, as an extractor's `Wire`."""

    def __init__(
        self,
        origin: Callable[[int], NetworkOrigin],
        on_object: Callable[[ContentObject, bool], None],
        make_raw: MakeRaw,
        budget: object,
        stats: RunStats,
        limits: Limits,
        server_port: int,
        shared: dict[str, object] | None = None,
    ) -> None:
        self.origin = origin
        self.shared = shared if shared is not None else {}  # per-process state extractors share (FTP)
        self.limits = limits
        self.on_object = on_object
        self.make_raw = make_raw
        self.stats = stats
        self.server_port = server_port
        self.bufs = (DirBuffer(budget), DirBuffer(budget))
        # (stream offset, ts, packet, capture) of each packet's bytes, per direction
        self.mark_off: tuple[list[int], list[int]] = ([], [])
        self.marks: tuple[list[tuple[float, int, str]], list[tuple[float, int, str]]] = ([], [])
        self.raws: list[ChunkSink | None] = [None, None]
        self.ext: Extractor | None = None
        self.decided = False
        self.ended = [False, False]
        self.indexes = [0, 0]
        self.sinks = (DirSink(self, 0), DirSink(self, 1))
        self.released_name: str | None = None  # the extractor's name once `release` dropped it

    # -- from reassembly ----------------------------------------------------------------------
    def chunk(self, d: int, c: StreamChunk) -> None:
        raw = self.raws[d]
        if raw is not None:
            raw.chunk(c)
            return
        buf = self.bufs[d]
        if not buf.data:
            buf.base = c.offset
        self.mark_off[d].extend(c.marks_off)
        self.marks[d].extend(c.marks)
        buf.append(c.data)
        if not self.decided:
            self._decide(force=False)
            return
        if self.ext is not None:
            self._parse(d)

    def gap(self, d: int, offset: int, size: int) -> None:
        raw = self.raws[d]
        if raw is not None:
            raw.gap(offset, size)
            return
        if not self.decided:
            self._decide(force=True)
            if self.raws[d] is not None:
                self.raws[d].gap(offset, size)  # type: ignore[union-attr]
                return
        resumes = self.ext.gap(d) if self.ext is not None else None  # flushes what it was building
        self.count("gaps")
        if resumes and self.raws[d] is None:
            self.bufs[d].restart(offset + size)  # the extractor goes on past the gap (WebSocket frames)
            return
        if self.raws[d] is None:
            self._to_raw(d, offset + size, gap_first=True)
        else:
            self.raws[d].gap(offset, size)  # type: ignore[union-attr]

    def release(self) -> None:
        """The connection is over and flushed: drop the references that tie this session, its sinks, its
        extractor and its raw scanners into cycles, so memory comes back at once rather than at the next
        full collection (a flood of connections otherwise holds their garbage until then)."""
        # An FTP transfer may still be waiting in the registry for its command and emit through this session
        # later: what emit needs (origin, on_object, the protocol's name) stays.
        self.released_name = self.ext_name
        self.sinks = ()  # type: ignore[assignment]
        self.ext = None
        self.raws = [None, None]

    def end(self, d: int, reason: EndReason) -> None:
        if self.ended[d]:
            return
        self.ended[d] = True
        buf = self.bufs[d]
        buf.ended = True
        raw = self.raws[d]
        if raw is not None:
            raw.end(reason)
            return
        if not self.decided:
            self._decide(force=True)  # a raw scanner made now is ended by _to_raw
        if self.raws[d] is None and self.ext is not None:
            self._parse(d)  # the extractor sees `ended` and flushes what it holds
            if self.raws[d] is None:
                buf.restart(buf.end)

    def peek(self, d: int, offset: int, size: int) -> bytes | None:
        raw = self.raws[d]
        if raw is not None:
            return raw.peek(offset, size)
        buf = self.bufs[d]
        if offset < buf.base or offset + size > buf.end:
            return None
        return bytes(buf.data[offset - buf.base : offset - buf.base + size])

    # -- Wire, for the extractor --------------------------------------------------------------
    def buf(self, d: int) -> DirBuffer:
        return self.bufs[d]

    def next_index(self, d: int) -> int:
        self.indexes[d] += 1
        return self.indexes[d] - 1

    def emit(
        self,
        d: int,
        offset: int,
        data: bytes,
        *,
        name: str | None = None,
        truncated: bool = False,
        layers: tuple[str, ...] = (),
        app: AppMeta | None = None,
        declared: Format | None = None,
        decoded: StreamDecode | None = None,
        layer_offset: int | None = None,
        index: int | None = None,
        stamp: tuple[float, int, str] | None = None,
        scan: bool = True,
        found_alike: set[str] | None = None,
    ) -> int:
        """Hand one application object to the detector; returns its index in the direction.

        `stamp` is the (time, packet, capture) of its first byte when the caller kept it;
        `scan=False` records the object (--objects) without scanning it (its parts are scanned); `decoded` is
        the member at its start when the caller already decoded it (its verifier then does not decode again).
        """
        if index is None:
            index = self.next_index(d)
        ts, packet, source = stamp or self.stamp(d, offset)
        origin = replace(self.origin(d), ts=ts, packet=packet, source=source, protocol=self.ext_name)
        self.count("objects")
        self.on_object(
            ContentObject(
                origin=origin,
                data=data,
                name=name,
                truncated=truncated,
                layers=layers,
                index=index,
                layer_offset=layer_offset,
                app=app,
                declared=declared,
                decoded=decoded,
                found_alike=found_alike,
            ),
            scan,
        )
        return index

    def raw(
        self,
        d: int,
        offset: int,
        why: str | None,
        replay: bytes = b"",
        stamp: tuple[float, int, str] | None = None,
        found_alike: set[str] | None = None,
    ) -> None:
        """Stop parsing direction d; scan its bytes from stream `offset` on as a raw stream.

        `replay` are bytes already taken out of the buffer that sat at `offset`, just before it
        (a body held back until the next message proved its length right), stamped `stamp`.
        `found_alike`: members a reading of the message being parsed already gave; not found again raw.
        """
        if why:
            self.anomaly(why)
        if self.raws[d] is None:
            self._to_raw(d, offset, replay=replay, stamp=stamp, found_alike=found_alike)

    def anomaly(self, what: str) -> None:
        self.stats.app[f"{self.ext_name or 'raw'}.anomaly.{what}"] += 1

    def count(self, what: str, n: int = 1) -> None:
        self.stats.app[f"{self.ext_name or 'raw'}.{what}"] += n

    @property
    def ext_name(self) -> str | None:
        return self.ext.name if self.ext is not None else self.released_name

    # -- internals ----------------------------------------------------------------------------
    def _decide(self, force: bool) -> None:
        client = bytes(self.bufs[0].data[:512])
        server = bytes(self.bufs[1].data[:512])
        if not client and not force and len(self.bufs[1].data) < SNIFF_MAX:
            return  # server greetings come first; the client's first words decide
        maybe = False
        ordered = _by_port(self.server_port)
        for _, cls in ordered:
            # context first: a connection another one announced (an FTP data channel) is claimed
            # whatever its bytes; then content
            claim = getattr(cls, "claim", None)
            if claim is not None and claim(self, client, server):
                self._choose(cls)
                return
        for _, cls in ordered:
            verdict = cls.sniff(client, server)
            if verdict:
                self._choose(cls)
                return
            maybe = maybe or verdict is None
        if maybe and not force and len(self.bufs[0].data) < SNIFF_MAX and len(self.bufs[1].data) < SNIFF_MAX:
            return
        self.decided = True
        self.stats.app["raw.sessions"] += 1
        for d in (0, 1):
            self._to_raw(d, self.bufs[d].base)

    def _choose(self, cls: type) -> None:
        self.decided = True
        self.ext = cls(self)
        self.stats.app[f"{cls.name}.sessions"] += 1  # type: ignore[attr-defined]
        for d in (0, 1):
            self._parse(d)

    def endpoints(self) -> tuple[str, int, str, int]:
        """(client ip, client port, server ip, server port) of the connection."""
        o = self.origin(0)
        return o.src, o.sport, o.dst, o.dport

    def _parse(self, d: int) -> None:
        if self.raws[d] is not None or self.ext is None:
            return
        self.ext.parse(d)
        self._prune(d)

    def _prune(self, d: int) -> None:
        offs = self.mark_off[d]
        i = bisect.bisect_right(offs, self.bufs[d].base) - 1
        if i > 0:
            del offs[:i]
            del self.marks[d][:i]

    def stamp(self, d: int, offset: int) -> tuple[float, int, str]:
        """(time, packet, capture) of the segment that carried stream byte `offset` of direction d."""
        offs = self.mark_off[d]
        i = bisect.bisect_right(offs, offset) - 1
        if offs:
            return self.marks[d][max(i, 0)]
        o = self.origin(d)
        return o.flow_start, 0, o.source

    def _to_raw(
        self,
        d: int,
        offset: int,
        gap_first: bool = False,
        replay: bytes = b"",
        stamp: tuple[float, int, str] | None = None,
        found_alike: set[str] | None = None,
    ) -> None:
        """Direction d goes to a raw scanner from `offset`: replay what is buffered from there."""
        buf = self.bufs[d]
        raw = self.make_raw(d, offset, self.next_index(d), self.ext_name)
        if found_alike and hasattr(raw, "emit"):
            raw.emit = _unless_found(raw.emit, found_alike, self.stats)
        self.raws[d] = raw
        if replay:
            raw.chunk(StreamChunk(offset, replay, [offset], [stamp or self.stamp(d, offset)]))
            offset += len(replay)
        if not gap_first and offset >= buf.base and offset < buf.end:
            # what is buffered from `offset` on, as one chunk with the stamps of the packets in it
            offs, marks = self.mark_off[d], self.marks[d]
            i = max(bisect.bisect_right(offs, offset) - 1, 0)
            kept_off = [max(off, offset) for off in offs[i:]]
            raw.chunk(StreamChunk(offset, bytes(buf.data[offset - buf.base :]), kept_off, list(marks[i:])))
        buf.restart(buf.end)
        self.mark_off[d].clear()
        self.marks[d].clear()
        if self.ended[d]:
            raw.end(EndReason.EOF)


def _unless_found(emit: Callable[[Finding], None], found: set[str], stats: RunStats) -> Callable[[Finding], None]:
    """`emit` for a raw scanner that drops the members a reading of the same message already gave."""

    def filtered(f: Finding) -> None:
        if f.member.sha256 in found:
            stats.findings -= 1
            stats.alerts -= f.kind is Kind.ALERT
            return
        emit(f)

    return filtered


__all__ = ["SNIFF_MAX", "DirSink", "Session"]
