# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled core, flow stage: the flow table, TCP reassembly and the chunker in C types.

Each class mirrors its Python reference line for line, with the same names and the same policy:
`FlowTable` and `Flow` (sensor/flow/table.py), `HalfStream` (sensor/flow/reassembly.py), `Chunker`
(sensor/flow/chunker.py) and `Budget`. The differential tests (tests/test_flow_diff.py) hold them
together: the same segments give the same chunks, gaps, ends, flow records and counters through both.
What differs is the representation: per-flow and per-direction state are C fields of extension types,
so a data segment in order costs a few C operations and one bytearray append, not a dozen Python
attribute lookups; the layers above are called once per chunk, not once per packet.
"""

import bisect

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

from sensor.config import FLOW_COST as _FLOW_COST
from sensor.flow.community_id import community_id
from sensor.flow.direction import ip_text
from sensor.flow.reassembly import EndReason
from sensor.flow.table import MAX_PAIRS as _MAX_PAIRS
from sensor.flow.table import shard_of
from sensor.flow.tls import client_hello_sni
from sensor.model import FlowRecord, Segment, StreamChunk

include "_frame.pxi"

cdef object _new = tuple.__new__
cdef object _StreamChunk = StreamChunk
cdef object _FlowRecord = FlowRecord
cdef object _Segment = Segment
cdef Py_ssize_t MAX_PAIRS = _MAX_PAIRS
cdef long long FLOW_COST = _FLOW_COST
cdef long long M32 = 0xFFFFFFFF
cdef long long HALF = 0x80000000
cdef int FIN = 0x01, SYN = 0x02, RST = 0x04, ACK = 0x10
cdef int TCP = 6, UDP = 17
cdef double SWEEP_EVERY = 1.0
cdef double CLOSED_WAIT = 60.0

cdef object R_FIN = EndReason.FIN
cdef object R_RST = EndReason.RST
cdef object R_IDLE = EndReason.IDLE
cdef object R_MEMCAP = EndReason.MEMCAP
cdef object R_FLOW_CAP = EndReason.FLOW_CAP
cdef object R_DEPTH = EndReason.DEPTH
cdef object R_EOF = EndReason.EOF


cdef class Budget:
    """Bytes buffered by every stream of a flow table plus FLOW_COST per open flow, against the memory cap."""

    cdef public long long used

    def __init__(self):
        self.used = 0


# -- the chunker (sensor/flow/chunker.py) ------------------------------------------------------------
cdef class Chunker:
    """The reassembly sink of one direction: gathers its bytes and hands them up in chunks."""

    cdef public object sink
    cdef public object reader
    cdef Budget budget
    cdef Py_ssize_t size
    cdef double delay
    cdef public Chunker other
    cdef long long start
    cdef bytearray buf
    cdef list offs
    cdef list marks
    cdef double first
    cdef object src

    def __init__(self, sink, reader, Budget budget, Py_ssize_t size, double delay):
        self.sink = sink
        self.reader = reader
        self.budget = budget
        self.size = size
        self.delay = delay
        self.other = None
        self.start = 0
        self.buf = bytearray()
        self.offs = []
        self.marks = []
        self.first = 0.0
        self.src = ""

    cpdef data(self, long long offset, bytes payload, object ts, object index):
        # ts and index stay the segment's own objects: a packet's stamp costs one tuple, not three objects
        cdef double t = ts
        cdef Chunker other = self.other
        if other is not None and len(other.buf):
            other.flush()  # the other side spoke first: its bytes go up first
        source = self.reader.source
        if len(self.buf) and source is not self.src:
            self.flush()  # a chunk's bytes come from one capture file
        cdef bytearray buf = self.buf
        if not len(buf):
            self.start = offset
            self.first = t
            self.src = source
        buf += payload
        self.offs.append(offset)
        self.marks.append((ts, index, source))
        self.budget.used += len(payload)
        if len(buf) >= self.size or t - self.first >= self.delay:
            self.flush()

    cpdef flush(self):
        """Hand what waits to the sink as one chunk."""
        if not len(self.buf):
            return
        data = bytes(self.buf)
        chunk = _new(_StreamChunk, (self.start, data, self.offs, self.marks))
        self.budget.used -= len(data)
        self.buf = bytearray()
        self.offs = []
        self.marks = []
        self.sink.chunk(chunk)

    cpdef bint stale(self, double now):
        """Bytes wait here since `chunk_delay` seconds before `now`."""
        return len(self.buf) > 0 and now - self.first >= self.delay

    def gap(self, long long offset, long long size):
        self._flush_both()
        self.sink.gap(offset, size)

    cpdef end(self, reason):
        self._flush_both()
        self.sink.end(reason)

    def peek(self, long long offset, long long size):
        """Bytes already delivered, whether they still wait here or went up."""
        cdef long long start = self.start
        if not len(self.buf) or offset + size <= start:
            return self.sink.peek(offset, size)
        if offset >= start:
            piece = bytes(self.buf[offset - start : offset - start + size])
            return piece if len(piece) == size else None
        head = self.sink.peek(offset, start - offset)
        if head is None:
            return None
        tail = bytes(self.buf[: offset + size - start])
        return head + tail if len(tail) == offset + size - start else None

    cdef _flush_both(self):
        cdef Chunker other = self.other
        if other is not None and len(other.buf):
            other.flush()
        self.flush()


# -- one TCP direction (sensor/flow/reassembly.py) -----------------------------------------------------
cdef class HalfStream:
    """Per-direction reassembly state; `offset` 0 is the first byte after the SYN (or the first seen)."""

    cdef public Chunker sink
    cdef object stats
    cdef object net
    cdef public long long depth, max_pending
    cdef bint has_isn
    cdef long long _isn
    cdef public long long next_off
    cdef dict pending
    cdef list keys
    cdef public long long pending_bytes
    cdef bint has_fin
    cdef long long _fin_off
    cdef public bint ended, depth_hit
    cdef public long long gaps, gap_bytes, overlaps, conflicts

    def __init__(self, Chunker sink, stats, long long depth, long long max_pending):
        self.sink = sink
        self.stats = stats
        self.net = stats.net
        self.depth = depth
        self.max_pending = max_pending
        self.has_isn = False
        self._isn = 0
        self.next_off = 0
        self.pending = {}
        self.keys = []
        self.pending_bytes = 0
        self.has_fin = False
        self._fin_off = 0
        self.ended = False
        self.depth_hit = False
        self.gaps = self.gap_bytes = self.overlaps = self.conflicts = 0

    @property
    def isn(self):
        return self._isn if self.has_isn else None

    @property
    def fin_off(self):
        return self._fin_off if self.has_fin else None

    cpdef syn(self, long long seq):
        if not self.has_isn:
            self.has_isn = True
            self._isn = (seq + 1) & M32

    cdef inline long long _offset(self, long long seq):
        cdef long long expected = (self._isn + self.next_off) & M32
        return self.next_off + (((seq - expected + HALF) & M32) - HALF)

    cpdef segment(self, long long seq, bytes payload, object ts, object index):
        """Take one segment's payload; delivers whatever becomes contiguous."""
        if self.ended:
            return
        if not self.has_isn:
            self.has_isn = True
            self._isn = seq  # picked up mid-stream: the first byte seen is offset 0
        cdef long long nxt = self.next_off
        cdef long long off = nxt + (((seq - self._isn - nxt + HALF) & M32) - HALF)
        cdef Py_ssize_t n = len(payload)
        if off == nxt and not self.pending and nxt + n <= self.depth and not self.has_fin:
            self.sink.data(nxt, payload, ts, index)
            self.next_off = nxt + n
            return
        cdef bint differs = False
        if off < nxt:
            differs = self._overlap(off, payload)
            if off + n <= nxt:
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
        if self.has_fin and self.next_off >= self._fin_off and not self.pending:
            self.finish(R_FIN)

    cpdef fin(self, long long seq, long long payload_len):
        """A FIN: the direction ends once everything before it has been delivered."""
        if not self.has_isn:
            self.has_isn = True
            self._isn = seq
        self._fin_off = self._offset(seq) + payload_len
        self.has_fin = True
        if self.next_off >= self._fin_off and not self.pending:
            self.finish(R_FIN)

    cpdef finish(self, reason):
        """End the direction: skip any holes left, deliver what waits behind them, tell the sink."""
        if self.ended:
            return
        while self.pending:
            self._skip_gap()
        self.ended = True
        self.sink.end(reason)

    cdef bint _wait(self, long long off, bytes payload, object ts, object index) except -1:
        cdef list keys = self.keys
        cdef dict pending = self.pending
        cdef long long end = off + len(payload)
        cdef Py_ssize_t i = bisect.bisect_right(keys, off) - 1
        cdef long long key, held_end, lo, hi
        cdef bytes held
        if i < 0:
            i = 0
        cdef bint differs = False
        cdef long long pos = off
        while i < len(keys) and pos < end:
            key = keys[i]
            held = pending[key][0]
            held_end = key + len(held)
            if held_end <= pos:
                i += 1
                continue
            if key >= end:
                break
            if key > pos:
                self._put(pos, payload[pos - off : key - off], ts, index)
                i += 1
            lo = pos if pos > key else key
            hi = end if end < held_end else held_end
            if held[lo - key : hi - key] != payload[lo - off : hi - off]:
                differs = True
            pos = hi
            i += 1
        if pos < end:
            self._put(pos, payload[pos - off :], ts, index)
        if pos > off or differs:
            self.overlaps += 1
            self.net["overlaps"] += 1
        return differs

    cdef _put(self, long long off, bytes piece, object ts, object index):
        bisect.insort(self.keys, off)
        self.pending[off] = (piece, ts, index)
        self.pending_bytes += len(piece)

    cdef _deliver(self, bytes payload, object ts, object index):
        cdef long long n = len(payload)
        if not n:
            return
        cdef long long room = self.depth - self.next_off
        if room <= 0:
            self.next_off += n
            return
        if n > room:
            payload = payload[:room]
            self.sink.data(self.next_off, payload, ts, index)
            self.next_off += n
            self.depth_hit = True
            self.net["depth_hits"] += 1
            self.sink.end(R_DEPTH)
            return
        self.sink.data(self.next_off, payload, ts, index)
        self.next_off += n

    cdef _drain(self):
        cdef list keys = self.keys
        cdef dict pending = self.pending
        while keys and keys[0] == self.next_off:
            payload, ts, index = pending.pop(keys.pop(0))
            self.pending_bytes -= len(payload)
            self._deliver(payload, ts, index)

    cdef _skip_gap(self):
        cdef long long first = self.keys[0]
        cdef long long hole = first - self.next_off
        if hole > 0:
            self.gaps += 1
            self.gap_bytes += hole
            self.net["gaps"] += 1
            self.net["gap_bytes"] += hole
            if self.next_off < self.depth:
                self.sink.gap(self.next_off, hole)
            self.next_off = first
        self._drain()

    cdef bint _overlap(self, long long off, bytes payload) except -1:
        self.overlaps += 1
        self.net["overlaps"] += 1
        cdef long long n = len(payload)
        if self.next_off - off < n:
            n = self.next_off - off
        if n > 0 and off + n <= self.depth:
            seen = self.sink.peek(off, n)
            if seen is not None:
                return seen != payload[:n]
        return False

    cdef _count(self, bint differs):
        if differs:
            self.conflicts += 1
            self.net["overlap_conflicts"] += 1


# -- flows and the table (sensor/flow/table.py) -------------------------------------------------------
cdef class Flow:
    """One connection (or UDP conversation); index 0 is the initiator's direction."""

    cdef public object key, cip, sip, cid, directions, sni, source, app
    cdef public int cport, sport, proto
    cdef public double start, last
    cdef long long pk[2]
    cdef long long by[2]
    cdef public list halves
    cdef public bint mid_stream
    cdef public long long datagrams

    def __init__(self, seg, bint client_is_sender, home, str source):
        if client_is_sender:
            self.cip, self.cport, self.sip, self.sport = seg[2], seg[4], seg[3], seg[5]
        else:
            self.cip, self.cport, self.sip, self.sport = seg[3], seg[5], seg[2], seg[4]
        self.proto = seg[6]
        self.key = (self.cip, self.cport, self.sip, self.sport, self.proto)
        self.start = self.last = seg[0]
        self.pk[0] = self.pk[1] = 0
        self.by[0] = self.by[1] = 0
        self.halves = []
        self.cid = community_id(self.cip, self.sip, self.cport, self.sport, self.proto)
        self.directions = (home.direction(self.cip, self.sip), home.direction(self.sip, self.cip))
        self.sni = None
        self.mid_stream = False
        self.source = source
        self.datagrams = 0
        self.app = None

    @property
    def packets(self):
        return [self.pk[0], self.pk[1]]

    @property
    def bytes(self):
        return [self.by[0], self.by[1]]

    def record(self, reason):
        cdef HalfStream x
        cdef long long gaps = 0, gap_bytes = 0, overlaps = 0, conflicts = 0
        cdef bint depth_hit = False
        for x in self.halves:
            gaps += x.gaps
            gap_bytes += x.gap_bytes
            overlaps += x.overlaps
            conflicts += x.conflicts
            depth_hit = depth_hit or x.depth_hit
        return _FlowRecord(
            community_id=self.cid,
            transport="tcp" if self.proto == TCP else "udp",
            src=ip_text(self.cip),
            sport=self.cport,
            dst=ip_text(self.sip),
            dport=self.sport,
            direction=self.directions[0],
            start=self.start,
            end=self.last,
            packets=(self.pk[0], self.pk[1]),
            bytes=(self.by[0], self.by[1]),
            gaps=gaps,
            gap_bytes=gap_bytes,
            overlaps=overlaps,
            overlap_conflicts=conflicts,
            end_reason=reason,
            mid_stream=self.mid_stream,
            depth_hit=depth_hit,
            sni=self.sni,
            source=self.source,
        )


cdef inline bint _client_is_sender(int proto, int flags, int sport, int dport):
    if proto == TCP and flags & SYN:
        return not flags & ACK
    return not (sport < 1024 and 1024 <= dport)


cdef double _last_of(Flow f):
    return f.last


def _by_last(Flow f):
    return f.last


cdef class FlowTable:
    """Tracks flows, reassembles TCP directions into their chunkers, and flushes what ends."""

    cdef public object limits, home, stats, make_sink, on_datagram, on_end
    cdef object net
    cdef public Budget budget
    cdef public dict flows, lru
    cdef public double next_sweep
    cdef public object source, closed
    cdef public set foreign
    cdef public bint admit_new
    cdef long long max_flows, memcap, stream_depth, max_pending, chunk_size
    cdef double flow_timeout, chunk_delay
    cdef public long shard, shards
    cdef public dict owned

    def __init__(self, limits, home, stats, make_sink, on_datagram, on_end, Budget budget, shard=(0, 1)):
        from collections import OrderedDict

        self.shard, self.shards = shard
        self.owned = {}

        self.limits = limits
        self.home = home
        self.stats = stats
        self.net = stats.net
        self.make_sink = make_sink
        self.on_datagram = on_datagram
        self.on_end = on_end
        self.budget = budget
        self.flows = {}
        self.lru = {}
        self.next_sweep = 0.0
        self.source = ""
        self.closed = OrderedDict()
        self.foreign = set()
        self.admit_new = True
        self.max_flows = limits.max_flows
        self.memcap = limits.memcap
        self.stream_depth = limits.stream_depth
        self.max_pending = limits.max_pending
        self.chunk_size = limits.chunk_size
        self.chunk_delay = limits.chunk_delay
        self.flow_timeout = limits.flow_timeout

    def feed(self, list packets, decoder):
        """A batch of packets in capture order: each decoded (the fast path here in C, the rest by `decoder`'s
        dpkt path), this process's share kept, and processed; no Packet is unpacked into a Segment on the way."""
        cdef Frame f
        cdef tuple pkt
        cdef bytes data
        cdef Py_ssize_t n
        cdef bint sharded = self.shards > 1
        stats = decoder.stats
        for obj in packets:
            pkt = <tuple> obj  # a Packet (a NamedTuple): (ts, linktype, data, index, wirelen, source)
            data = <bytes> pkt[2]
            n = PyBytes_GET_SIZE(data)
            if n < pkt[4]:
                stats.snapped += 1  # decode what is there: a cut payload is what remains of it
            if frame_decode(<const unsigned char*> PyBytes_AS_STRING(data), n, pkt[1], &f):
                src = data[f.src:f.src + f.alen]
                dst = data[f.src + f.alen:f.src + 2 * f.alen]
                if sharded and not self._mine(src, dst):
                    continue
                self._process(pkt[0], pkt[3], src, dst, f.sport, f.dport, f.proto, f.seq, f.flags,
                              data[f.pay:f.end], None)
            else:
                seg = decoder.decode_dpkt(pkt)
                if seg is None or (sharded and not self._mine(seg[2], seg[3])):
                    continue
                self.process(seg)

    cdef bint _mine(self, bytes src, bytes dst) except -1:
        pair = (src, dst)
        mine = self.owned.get(pair)
        if mine is None:
            if len(self.owned) > MAX_PAIRS:
                self.owned.clear()
            mine = self.owned[pair] = shard_of(src, dst, self.shards) == self.shard
        return mine

    cpdef process(self, object segment):
        """One decoded segment: find or make its flow, update it, reassemble or hand on the datagram."""
        cdef tuple seg = <tuple> segment  # a Segment (a NamedTuple): read as the tuple it is, unchecked
        self._process(seg[0], seg[1], seg[2], seg[3], seg[4], seg[5], seg[6], seg[7], seg[8], seg[9], segment)

    cdef _process(self, object ts_o, object index, object src, object dst, object sport_o, object dport_o,
                  object proto_o, long long seq, int flags, bytes payload, object segment):
        cdef double ts = ts_o
        cdef int sport = sport_o, dport = dport_o, proto = proto_o
        cdef Flow flow
        cdef int d
        cdef HalfStream half
        key = (src, sport_o, dst, dport_o, proto_o)  # the segment's own int objects: nothing boxed again
        entry = self.flows.get(key)
        if entry is None:
            if key in self.closed and not flags & SYN:
                self.net["after_close"] += 1
                return
            if self.foreign and key in self.foreign:
                if not (proto == TCP and flags & SYN and not flags & ACK):
                    self.net["previous_segment"] += 1
                    return
                self.foreign.discard(key)
                self.foreign.discard((dst, dport, src, sport, proto))
            if not self.admit_new:
                self.net["read_ahead_skipped"] += 1
                return
            if len(self.lru) >= self.max_flows:
                self._shed(self.max_flows * 9 // 10, R_FLOW_CAP, "flow_cap_evictions")
            if segment is None:
                segment = _new(_Segment, (ts_o, index, src, dst, sport_o, dport_o, proto_o, seq, flags, payload))
            flow, d = self._new(<tuple> segment, flags)
        else:
            flow = <Flow> (<tuple> entry)[0]
            d = (<tuple> entry)[1]
        flow.last = ts
        flow.pk[d] += 1
        cdef Py_ssize_t n = len(payload)
        if proto == TCP:
            if n:
                flow.by[d] += n
                if flags & 7 == 0:
                    half = <HalfStream> flow.halves[d]
                    if not d and half.next_off == 0 and flow.sni is None and payload[0] == 0x16:
                        flow.sni = client_hello_sni(payload)
                    half.segment(seq, payload, ts_o, index)
                else:
                    self._tcp(flow, d, seq, flags, payload, ts_o, index)
            elif flags & 7:
                self._tcp(flow, d, seq, flags, payload, ts_o, index)
        else:
            flow.by[d] += n
            flow.datagrams += 1
            if segment is None:
                segment = _new(_Segment, (ts_o, index, src, dst, sport_o, dport_o, proto_o, seq, flags, payload))
            self.on_datagram(flow, d, segment)
        if ts >= self.next_sweep:
            self._sweep(ts)
        if self.budget.used > self.memcap:
            self._evict()

    def sweep(self, double now):
        """Close flows idle since before `now - flow_timeout` (a live source calls this when quiet)."""
        if now >= self.next_sweep:
            self._sweep(now)

    def flush(self, reason=R_EOF):
        """End of input: every open flow is finished and flushed through its sinks."""
        for flow in list(self.lru.values()):
            self._close(flow, reason)

    def open_tcp(self):
        """TCP flows still open (a read-ahead stops once none is)."""
        cdef Flow f
        cdef long long n = 0
        for f in self.lru.values():
            if f.proto == TCP:
                n += 1
        return n

    # -- internals ------------------------------------------------------------------------------
    cdef tuple _new(self, tuple seg, int flags):
        cdef int proto = seg[6]
        cdef Flow flow = Flow(seg, _client_is_sender(proto, flags, seg[4], seg[5]), self.home, self.source)
        cdef Chunker c0, c1
        if proto == TCP:
            c0 = Chunker(self.make_sink(flow, 0), self, self.budget, self.chunk_size, self.chunk_delay)
            c1 = Chunker(self.make_sink(flow, 1), self, self.budget, self.chunk_size, self.chunk_delay)
            c0.other, c1.other = c1, c0
            flow.halves = [
                HalfStream(c0, self.stats, self.stream_depth, self.max_pending),
                HalfStream(c1, self.stats, self.stream_depth, self.max_pending),
            ]
            flow.mid_stream = not flags & SYN
            if flow.mid_stream:
                self.net["mid_stream"] += 1
        self.flows[(flow.cip, flow.cport, flow.sip, flow.sport, proto)] = (flow, 0)
        self.flows[(flow.sip, flow.sport, flow.cip, flow.cport, proto)] = (flow, 1)
        self.lru[flow.key] = flow
        self.budget.used += FLOW_COST
        if len(self.lru) > self.net["open_flows_peak"]:
            self.net["open_flows_peak"] = len(self.lru)
        self.net["flows"] += 1
        self.net["tcp_flows" if proto == TCP else "udp_flows"] += 1
        cdef int d = 0 if seg[2] == flow.cip and seg[4] == flow.cport else 1
        return flow, d

    cdef _tcp(self, Flow flow, int d, long long seq, int flags, bytes payload, object ts, object index):
        cdef HalfStream half = <HalfStream> flow.halves[d]
        if flags & SYN:
            half.syn(seq)
            seq = (seq + 1) & M32
        if flags & RST:
            self._close(flow, R_RST)
            return
        if payload:
            if not d and half.next_off == 0 and flow.sni is None and payload[0] == 0x16:
                flow.sni = client_hello_sni(payload)
            half.segment(seq, payload, ts, index)
        if flags & FIN:
            half.fin(seq, len(payload))
        cdef HalfStream h0 = <HalfStream> flow.halves[0]
        cdef HalfStream h1 = <HalfStream> flow.halves[1]
        if (h0.ended and h1.ended) or (h0.has_fin and h1.has_fin):
            self._close(flow, R_FIN)

    cpdef _close(self, Flow flow, reason):
        if self.lru.pop(flow.key, None) is None:
            return
        self.budget.used -= FLOW_COST
        cdef int proto = flow.proto
        self.flows.pop((flow.cip, flow.cport, flow.sip, flow.sport, proto), None)
        self.flows.pop((flow.sip, flow.sport, flow.cip, flow.cport, proto), None)
        if proto == TCP and (reason == R_FIN or reason == R_RST):
            self.closed[(flow.cip, flow.cport, flow.sip, flow.sport, TCP)] = flow.last
            self.closed[(flow.sip, flow.sport, flow.cip, flow.cport, TCP)] = flow.last
        cdef HalfStream half
        for half in flow.halves:
            half.finish(reason)
        cdef long long streams = 0
        for half in flow.halves:
            if half.next_off:
                streams += 1
        self.net["streams"] += streams
        self.on_end(flow.record(reason))
        release = getattr(flow.app, "release", None)
        if release is not None:
            release()
        flow.app = None
        cdef Chunker chunker
        for half in flow.halves:  # the two chunkers point at each other and at the session's sinks
            chunker = half.sink
            chunker.other = None
            chunker.sink = None

    cdef _sweep(self, double now):
        cdef Flow flow
        cdef HalfStream half
        self.next_sweep = now + SWEEP_EVERY
        while self.closed and next(iter(self.closed.values())) < now - CLOSED_WAIT:
            self.closed.popitem(last=False)
        cdef double limit = now - self.flow_timeout
        for flow in [f for f in self.lru.values() if (<Flow> f).last < limit]:
            self.net["idle_closed"] += 1
            self._close(flow, R_IDLE)
        for flow in self.lru.values():
            for half in flow.halves:
                if half.sink.stale(now):
                    half.sink.flush()

    cdef _evict(self):
        cdef long long target = self.memcap * 9 // 10
        cdef Flow flow
        for flow in sorted(self.lru.values(), key=_by_last):
            if self.budget.used <= target:
                break
            self.net["evictions"] += 1
            self._close(flow, R_MEMCAP)

    cdef _shed(self, Py_ssize_t keep, reason, counter):
        cdef Flow flow
        for flow in sorted(self.lru.values(), key=_by_last):
            if len(self.lru) <= keep:
                break
            self.net[counter] += 1
            self._close(flow, reason)
