"""The flow table: segments to flows and directions, TCP life cycle, idle timeout, memory cap, flush.

Both orientations of a flow's 5-tuple map to the same entry, so each packet costs one dict
lookup. The table knows nothing of scanning: the pipeline gives it a factory that makes the sink
of each TCP direction and a callback for UDP datagrams and for ended flows.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from sensor.config import FLOW_COST, Limits
from sensor.flow.chunker import Chunker, ChunkSink
from sensor.flow.community_id import community_id
from sensor.flow.direction import HomeNet, ip_text
from sensor.flow.reassembly import EndReason, HalfStream
from sensor.flow.tls import client_hello_sni
from sensor.model import FlowRecord, Packet, Segment
from sensor.stats import RunStats

if TYPE_CHECKING:
    from sensor.flow.decode import Decoder

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
TCP, UDP = 6, 17
SWEEP_EVERY = 1.0  # seconds of capture time between idle sweeps
CLOSED_WAIT = 60.0  # seconds a closed connection's 5-tuple absorbs stray packets


MAX_PAIRS = 1 << 18  # IP pairs whose shard is remembered


def shard_of(a: bytes, b: bytes, shards: int) -> int:
    """Symmetric hash of the IP pair: both directions, and FTP control and data, meet in one process."""
    lo, hi = (a, b) if a <= b else (b, a)
    return zlib.crc32(lo + hi) % shards


class Budget:
    """Bytes buffered by every stream of a flow table plus FLOW_COST per open flow, against the memory cap
    (sinks add and remove their bytes; the table its flows)."""

    __slots__ = ("used",)

    def __init__(self) -> None:
        self.used = 0


class Flow:
    """One connection (or UDP conversation); index 0 is the initiator's direction."""

    __slots__ = (
        "key",
        "cip",
        "cport",
        "sip",
        "sport",
        "proto",
        "start",
        "last",
        "packets",
        "bytes",
        "halves",
        "cid",
        "directions",
        "sni",
        "mid_stream",
        "source",
        "datagrams",
        "app",
    )

    def __init__(self, seg: Segment, client_is_sender: bool, home: HomeNet, source: str) -> None:
        if client_is_sender:
            self.cip, self.cport, self.sip, self.sport = seg.src, seg.sport, seg.dst, seg.dport
        else:
            self.cip, self.cport, self.sip, self.sport = seg.dst, seg.dport, seg.src, seg.sport
        self.proto = seg.proto
        self.key = (self.cip, self.cport, self.sip, self.sport, self.proto)
        self.start = self.last = seg.ts
        self.packets = [0, 0]
        self.bytes = [0, 0]
        self.halves: list[HalfStream] = []
        self.cid = community_id(self.cip, self.sip, self.cport, self.sport, self.proto)
        self.directions = (home.direction(self.cip, self.sip), home.direction(self.sip, self.cip))
        self.sni: str | None = None
        self.mid_stream = False
        self.source = source
        self.datagrams = 0
        self.app: object | None = None  # the application layer's state for this connection

    def record(self, reason: str) -> FlowRecord:
        h = self.halves
        return FlowRecord(
            community_id=self.cid,
            transport="tcp" if self.proto == TCP else "udp",
            src=ip_text(self.cip),
            sport=self.cport,
            dst=ip_text(self.sip),
            dport=self.sport,
            direction=self.directions[0],
            start=self.start,
            end=self.last,
            packets=(self.packets[0], self.packets[1]),
            bytes=(self.bytes[0], self.bytes[1]),
            gaps=sum(x.gaps for x in h),
            gap_bytes=sum(x.gap_bytes for x in h),
            overlaps=sum(x.overlaps for x in h),
            overlap_conflicts=sum(x.conflicts for x in h),
            end_reason=reason,
            mid_stream=self.mid_stream,
            depth_hit=any(x.depth_hit for x in h),
            sni=self.sni,
            source=self.source,
        )


def _client_is_sender(seg: Segment) -> bool:
    """Who opened the connection: the SYN's sender; without a handshake, the side using the lower port."""
    if seg.proto == TCP and seg.flags & SYN:
        return not seg.flags & ACK
    # mid-stream: a well-known port on one side only marks the server
    return not seg.sport < 1024 <= seg.dport


class FlowTable:
    """Tracks flows, reassembles TCP directions into their sinks, and flushes what ends."""

    def __init__(
        self,
        limits: Limits,
        home: HomeNet,
        stats: RunStats,
        make_sink: Callable[[Flow, int], ChunkSink],
        on_datagram: Callable[[Flow, int, Segment], None],
        on_end: Callable[[FlowRecord], None],
        budget: Budget,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.limits = limits
        self.home = home
        self.stats = stats
        self.make_sink = make_sink
        self.on_datagram = on_datagram
        self.on_end = on_end
        self.budget = budget
        self.flows: dict[tuple, tuple[Flow, int]] = {}
        self.lru: dict[tuple, Flow] = {}  # open flows in creation order; activity is Flow.last
        self.next_sweep = 0.0
        self.source = ""
        # recently closed TCP connections (both orientations), like TIME_WAIT: stray ACKs and
        # retransmissions after FIN or RST must not open a phantom mid-stream flow
        self.closed: OrderedDict[tuple, float] = OrderedDict()
        # planned segments (sensor/capture/plan.py): flows a previous segment owns are skipped, and
        # while reading ahead into the next segment's files no flow is started
        self.foreign: set[tuple] = set()
        self.admit_new = True
        self.shard, self.shards = shard  # this process's share of the IP pairs, of `shards`
        self.owned: dict[tuple[bytes, bytes], bool] = {}

    def feed(self, packets: list[Packet], decoder: Decoder) -> None:
        """A batch of packets in capture order: each decoded by `decoder`, this process's share kept, and
        processed (the compiled core decodes the common frames itself and hands `decoder` the rest)."""
        decode, process, shards = decoder.decode, self.process, self.shards
        for pkt in packets:
            seg = decode(pkt)
            if seg is None or (shards > 1 and not self._mine(seg.src, seg.dst)):
                continue
            process(seg)

    def _mine(self, src: bytes, dst: bytes) -> bool:
        pair = (src, dst)
        mine = self.owned.get(pair)
        if mine is None:
            if len(self.owned) > MAX_PAIRS:
                self.owned.clear()
            mine = self.owned[pair] = shard_of(src, dst, self.shards) == self.shard
        return mine

    def process(self, seg: Segment) -> None:
        """One decoded segment: find or make its flow, update it, reassemble or hand on the datagram."""
        ts, index, src, dst, sport, dport, proto, seq, flags, payload = seg  # one unpack: the hot path
        key = (src, sport, dst, dport, proto)
        entry = self.flows.get(key)
        if entry is None:
            if key in self.closed and not flags & SYN:
                self.stats.net["after_close"] += 1  # the last ACK of a closed connection, not a new flow
                return
            if self.foreign and key in self.foreign:
                if not (proto == TCP and flags & SYN and not flags & ACK):
                    self.stats.net["previous_segment"] += 1  # the previous segment follows this flow
                    return
                self.foreign.discard(key)  # the 5-tuple reused by a new connection: ours
                self.foreign.discard((dst, dport, src, sport, proto))
            if not self.admit_new:
                self.stats.net["read_ahead_skipped"] += 1
                return
            if len(self.lru) >= self.limits.max_flows:
                self._shed(self.limits.max_flows * 9 // 10, EndReason.FLOW_CAP, "flow_cap_evictions")
            flow, d = self._new(seg)
        else:
            flow, d = entry
        flow.last = ts
        flow.packets[d] += 1
        if proto == TCP:
            if payload:
                flow.bytes[d] += len(payload)
                if flags & 7 == 0:  # the common data segment: no SYN, FIN or RST
                    half = flow.halves[d]
                    if not d and half.next_off == 0 and flow.sni is None and payload[:1] == b"\x16":
                        flow.sni = client_hello_sni(payload)
                    half.segment(seq, payload, ts, index)
                else:
                    self._tcp(flow, d, seq, flags, payload, ts, index)
            elif flags & 7:
                self._tcp(flow, d, seq, flags, payload, ts, index)
        else:
            flow.bytes[d] += len(payload)
            flow.datagrams += 1
            self.on_datagram(flow, d, seg)
        if ts >= self.next_sweep:
            self._sweep(ts)
        if self.budget.used > self.limits.memcap:
            self._evict()

    def sweep(self, now: float) -> None:
        """Close flows idle since before `now - flow_timeout` (a live source calls this when quiet)."""
        if now >= self.next_sweep:
            self._sweep(now)

    def flush(self, reason: EndReason = EndReason.EOF) -> None:
        """End of input: every open flow is finished and flushed through its sinks."""
        for flow in list(self.lru.values()):
            self._close(flow, reason)

    def open_tcp(self) -> int:
        """TCP flows still open (a read-ahead stops once none is)."""
        return sum(1 for f in self.lru.values() if f.proto == TCP)

    # -- internals ------------------------------------------------------------------------------
    def _new(self, seg: Segment) -> tuple[Flow, int]:
        flow = Flow(seg, _client_is_sender(seg), self.home, self.source)
        if seg.proto == TCP:
            lim = self.limits
            chunkers = [
                Chunker(self.make_sink(flow, d), self, self.budget, lim.chunk_size, lim.chunk_delay) for d in (0, 1)
            ]
            chunkers[0].other, chunkers[1].other = chunkers[1], chunkers[0]
            flow.halves = [HalfStream(c, self.stats, lim.stream_depth, lim.max_pending) for c in chunkers]
            flow.mid_stream = not seg.flags & SYN
            if flow.mid_stream:
                self.stats.net["mid_stream"] += 1
        c, s = flow.key[:2], flow.key[2:4]
        self.flows[(c[0], c[1], s[0], s[1], seg.proto)] = (flow, 0)
        self.flows[(s[0], s[1], c[0], c[1], seg.proto)] = (flow, 1)
        self.lru[flow.key] = flow
        self.budget.used += FLOW_COST
        if len(self.lru) > self.stats.net["open_flows_peak"]:
            self.stats.net["open_flows_peak"] = len(self.lru)
        self.stats.net["flows"] += 1
        self.stats.net["tcp_flows" if seg.proto == TCP else "udp_flows"] += 1
        d = 0 if seg.src == flow.cip and seg.sport == flow.cport else 1
        return flow, d

    def _tcp(self, flow: Flow, d: int, seq: int, flags: int, payload: bytes, ts: float, index: int) -> None:
        """A segment with SYN, FIN or RST: the connection's life cycle."""
        half = flow.halves[d]
        if flags & SYN:
            half.syn(seq)
            seq = (seq + 1) & 0xFFFFFFFF
        if flags & RST:
            self._close(flow, EndReason.RST)
            return
        if payload:
            if not d and half.next_off == 0 and flow.sni is None and payload[:1] == b"\x16":
                flow.sni = client_hello_sni(payload)
            half.segment(seq, payload, ts, index)
        if flags & FIN:
            half.fin(seq, len(payload))
        h0, h1 = flow.halves
        if (h0.ended and h1.ended) or (h0.fin_off is not None and h1.fin_off is not None):
            # both sides said FIN: a hole still open then is a lost segment, not one still coming
            self._close(flow, EndReason.FIN)

    def _close(self, flow: Flow, reason: EndReason) -> None:
        if self.lru.pop(flow.key, None) is None:
            return
        self.budget.used -= FLOW_COST
        c, s = flow.key[:2], flow.key[2:4]
        self.flows.pop((c[0], c[1], s[0], s[1], flow.proto), None)
        self.flows.pop((s[0], s[1], c[0], c[1], flow.proto), None)
        if flow.proto == TCP and reason in (EndReason.FIN, EndReason.RST):
            for k in ((c[0], c[1], s[0], s[1], TCP), (s[0], s[1], c[0], c[1], TCP)):
                self.closed[k] = flow.last
        for half in flow.halves:
            half.finish(reason)
        self.stats.net["streams"] += sum(1 for h in flow.halves if h.next_off)
        self.on_end(flow.record(reason))
        # Break the flow's cycles (flow -> session -> its origin closure -> flow; halves -> sinks -> session):
        # freed by reference counting now, not by a full collection later.
        release = getattr(flow.app, "release", None)
        if release is not None:
            release()
        flow.app = None
        for half in flow.halves:  # the two chunkers point at each other and at the session's sinks
            chunker = half.sink
            chunker.other = None
            chunker.sink = None  # type: ignore[assignment]

    def _sweep(self, now: float) -> None:
        """Close flows idle for longer than flow_timeout (capture time).

        A walk over all open flows once a second of capture time costs less than keeping them in
        activity order on every packet.
        """
        self.next_sweep = now + SWEEP_EVERY
        while self.closed and next(iter(self.closed.values())) < now - CLOSED_WAIT:
            self.closed.popitem(last=False)
        limit = now - self.limits.flow_timeout
        for flow in [f for f in self.lru.values() if f.last < limit]:
            self.stats.net["idle_closed"] += 1
            self._close(flow, EndReason.IDLE)
        for flow in self.lru.values():  # bytes of quiet flows waiting for a chunk go up after chunk_delay
            for half in flow.halves:
                chunker = half.sink
                if chunker.stale(now):
                    chunker.flush()

    def _evict(self) -> None:
        """Over the memory cap: flush the least recently active flows until 90% of it is free again."""
        target = self.limits.memcap * 9 // 10
        self._close_oldest(EndReason.MEMCAP, "evictions", lambda: self.budget.used <= target)

    def _shed(self, keep: int, reason: EndReason, counter: str) -> None:
        """Too many open flows: close (and so scan) the least recently active until `keep` stay open.

        One sort sheds a tenth of the table, so a flood of new connections pays it once per many flows.
        """
        self._close_oldest(reason, counter, lambda: len(self.lru) <= keep)

    def _close_oldest(self, reason: EndReason, counter: str, enough: Callable[[], bool]) -> None:
        """Close the least recently active flows, counting each under `counter`, until `enough()` holds."""
        for flow in sorted(self.lru.values(), key=lambda f: f.last):
            if enough():
                break
            self.stats.net[counter] += 1
            self._close(flow, reason)
