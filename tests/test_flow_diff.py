"""The compiled flow table, reassembly and chunker (sensor/_flow.pyx) against their Python reference
(sensor/flow/table.py, reassembly.py, chunker.py): Hypothesis-made segment sequences with reordering,
duplicates, overlaps that agree and that differ, lost segments, sequence wrap, RST, FIN on both sides,
mid-stream pickup, stream depth, chunk size and delay, capture-file changes, idle timeout, memcap and
flow-cap evictions give the same chunks (bytes, offsets, packet stamps), gaps, ends, datagrams, flow
records, counters and budget through both. Whole captures through both cores: tests/test_core_diff.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensor import native as core
from sensor.config import FLOW_COST, Limits
from sensor.flow.chunker import Chunker as PyChunker
from sensor.flow.direction import HomeNet
from sensor.flow.reassembly import HalfStream as PyHalfStream
from sensor.flow.table import Budget as PyBudget
from sensor.flow.table import FlowTable as PyFlowTable
from sensor.model import Segment, StreamChunk
from sensor.stats import RunStats

compiled = pytest.mark.skipif(core.compiled is None, reason=f"no compiled core: {core.why_reference}")
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
M32 = 0xFFFFFFFF
CLIENT, SERVER = bytes([10, 0, 0, 5]), bytes([198, 51, 100, 7])


class Recorder:
    """A chunk sink that writes down everything it is told; peek answers from what it kept, which it counts
    in the budget as the application layer's buffers do."""

    def __init__(self, log: list, name: tuple, keep: int, budget: object) -> None:
        self.log, self.name, self.keep, self.budget = log, name, keep, budget
        self.base, self.data = 0, bytearray()

    def _hold(self, n: int) -> None:
        self.budget.used += n  # type: ignore[attr-defined]

    def chunk(self, c: StreamChunk) -> None:
        assert isinstance(c.data, bytes) and c.data, "a chunk is never empty"
        self.log.append(("chunk", self.name, c.offset, c.data, list(c.marks_off), list(c.marks)))
        if not self.data:
            self.base = c.offset
        self.data += c.data
        self._hold(len(c.data))
        if len(self.data) > self.keep:  # a sink that let go of old bytes: peek says None for them
            cut = len(self.data) - self.keep
            del self.data[:cut]
            self.base += cut
            self._hold(-cut)

    def gap(self, offset: int, size: int) -> None:
        self.log.append(("gap", self.name, offset, size))
        self._hold(-len(self.data))
        self.data.clear()
        self.base = offset + size

    def end(self, reason: object) -> None:
        self.log.append(("end", self.name, str(reason)))
        self._hold(-len(self.data))
        self.data.clear()

    def peek(self, offset: int, size: int) -> bytes | None:
        if offset < self.base or offset + size > self.base + len(self.data):
            return None
        return bytes(self.data[offset - self.base : offset - self.base + size])


@dataclass
class Run:
    log: list = field(default_factory=list)
    stats: RunStats = field(default_factory=RunStats)


def run(table_cls: type, budget_cls: type, limits: Limits, steps: list, keep: int) -> tuple[list, dict, int]:
    """Feed `steps` (segments, capture-file changes, quiet-link sweeps) to a flow table; what it did."""
    r = Run()
    budget = budget_cls()

    def sink(flow: object, d: int) -> Recorder:
        return Recorder(r.log, (flow.key, d), keep, budget)  # type: ignore[attr-defined]

    def datagram(flow: object, d: int, seg: Segment) -> None:
        r.log.append(("datagram", flow.key, d, seg.payload, flow.datagrams))  # type: ignore[attr-defined]

    table = table_cls(limits, HomeNet(), r.stats, sink, datagram, lambda rec: r.log.append(("flow", rec)), budget)
    for kind, value in steps:
        if kind == "seg":
            table.process(value)
        elif kind == "source":
            table.source = value
        elif kind == "sweep":
            table.sweep(value)
        elif kind == "close_gate":
            table.admit_new = False
        r.log.append(("step", budget.used, len(table.lru)))
    table.flush()
    r.log.append(("budget", budget.used, len(table.lru)))
    return r.log, dict(r.stats.net), budget.used


@st.composite
def conversation(draw: st.DrawFn, n: int, t0: float) -> list[Segment]:
    """One TCP connection's packets in sending order (reordering comes later), with its ISNs near wrap or not."""
    cport = 40000 + n
    sport = draw(st.sampled_from([80, 443, 21, 5000]))
    isn = [draw(st.sampled_from([0, 1000, M32 - 40, M32, draw(st.integers(0, M32))])) for _ in range(2)]
    handshake = draw(st.booleans())
    streams = [draw(st.binary(min_size=0, max_size=400)) for _ in range(2)]
    out: list[tuple[int, int, int, bytes]] = []  # (direction, seq, flags, payload)
    if handshake:
        out.append((0, isn[0], SYN, b""))
        out.append((1, isn[1], SYN | ACK, b""))
    base = [(isn[0] + 1) & M32, (isn[1] + 1) & M32]
    for d in (0, 1):
        data = streams[d]
        cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data))), max_size=8))))
        pos = 0
        for c in [*cuts, len(data)]:
            if c > pos:
                if not draw(st.integers(0, 9)):  # lost: a gap
                    pos = c
                    continue
                out.append((d, (base[d] + pos) & M32, ACK | PSH, data[pos:c]))
                pos = c
        for _ in range(draw(st.integers(0, 3))):  # retransmissions and overlaps, some with other bytes
            if not data:
                break
            lo = draw(st.integers(0, len(data) - 1))
            hi = draw(st.integers(lo + 1, min(len(data), lo + 200)))
            piece = data[lo:hi]
            if draw(st.booleans()):
                piece = bytes(b ^ 0x20 for b in piece)
            if draw(st.booleans()):
                piece += b"longer"
            out.append((d, (base[d] + lo) & M32, ACK, piece))
        end = draw(st.sampled_from(["fin", "fin", "none", "rst"]))
        if end == "fin":
            out.append((d, (base[d] + len(data)) & M32, FIN | ACK, b""))
        elif end == "rst":
            out.append((d, (base[d] + len(data)) & M32, RST, b""))
    segs = []
    for i, (d, seq, flags, payload) in enumerate(out):
        src, dst, sp, dp = (CLIENT, SERVER, cport, sport) if d == 0 else (SERVER, CLIENT, sport, cport)
        segs.append(Segment(t0 + i * 0.001, 0, src, dst, sp, dp, 6, seq, flags, payload))
    return segs


@st.composite
def scenario(draw: st.DrawFn) -> tuple[Limits, list, int]:
    segs: list[Segment] = []
    for n in range(draw(st.integers(1, 4))):
        segs += draw(conversation(n, 1000.0 + n))
    for i in range(draw(st.integers(0, 4))):  # UDP datagrams between the connections
        payload = draw(st.binary(max_size=60))
        segs.append(Segment(1000.0, 0, CLIENT, SERVER, 53000 + i % 2, 53, 17, 0, 0, payload))
    order = draw(st.permutations(range(len(segs)))) if draw(st.booleans()) else range(len(segs))
    # mostly in order with local swaps, sometimes any order
    if draw(st.booleans()):
        order = sorted(range(len(segs)), key=lambda i: i + draw(st.integers(0, 3)))
    steps: list = [("source", "a.pcap")]
    ts = 1000.0
    for k, i in enumerate(order):
        ts += (
            draw(st.sampled_from([0.0, 0.001, 0.1, 0.3, 0.7, 1.2, 1.5, 400.0]))
            if draw(st.integers(0, 4)) == 0
            else 0.001
        )
        seg = segs[i]._replace(ts=ts, index=k + 1)
        steps.append(("seg", seg))
        pick = draw(st.integers(0, 30))
        if pick == 0:
            steps.append(("source", "b.pcap" if steps[0][1] == "a.pcap" else "a.pcap"))
        elif pick == 1:
            steps.append(("sweep", ts + draw(st.sampled_from([0.1, 0.5, 1.2, 2.0, 500.0]))))
        elif pick == 2 and draw(st.integers(0, 3)) == 0:
            steps.append(("close_gate", None))
    limits = Limits(
        stream_depth=draw(st.sampled_from([1 << 30, 150, 700])),
        memcap=draw(st.sampled_from([1 << 30, FLOW_COST * draw(st.integers(1, 3)) + draw(st.integers(0, 900))])),
        max_flows=draw(st.sampled_from([50_000, 1, 2, 3])),
        chunk_size=draw(st.sampled_from([1, 7, 64, 65536])),
        chunk_delay=draw(st.sampled_from([0.0005, 0.2, 1.0, 2.0, 1000.0])),
        max_pending=draw(st.sampled_from([1 << 30, 40, 300])),
        flow_timeout=draw(st.sampled_from([300.0, 1.0])),
    )
    keep = draw(st.sampled_from([1 << 30, 16]))
    return limits, steps, keep


@compiled
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario())
def test_segment_sequences_give_the_same_chunks_records_and_counters(case):
    limits, steps, keep = case
    ref = run(PyFlowTable, PyBudget, limits, steps, keep)
    got = run(core.compiled.FlowTable, core.compiled.Budget, limits, steps, keep)
    assert got[0] == ref[0]
    assert got[1:] == ref[1:]


def _stream_events(chunker_cls: type, half_cls: type, budget_cls: type, pieces: list, size: int) -> list:
    log: list = []

    class Reader:
        source = "a.pcap"

    budget = budget_cls()
    chunker = chunker_cls(Recorder(log, (), 1 << 30, budget), Reader(), budget, size, 1000.0)
    half = half_cls(chunker, RunStats(), 1 << 30, 1 << 30)
    for i, (seq, payload) in enumerate(pieces):
        half.segment(seq, payload, float(i), i + 1)
    half.finish("eof")
    return [*log, ("budget", budget.used)]


@compiled
def test_a_long_shuffled_stream_reads_alike():
    """Thousands of segments of one direction, shuffled within a window, duplicated and cut anew: the
    same chunks on both cores, and the stream's bytes whole."""
    rnd = random.Random(7)
    data = rnd.randbytes(200_000)
    pieces, pos = [], 0
    while pos < len(data):
        n = rnd.randint(1, 1500)
        pieces.append(((1 + pos) & M32, data[pos : pos + n]))
        if rnd.random() < 0.05:
            lo = max(0, pos - rnd.randint(0, 3000))
            pieces.append(((1 + lo) & M32, data[lo : pos + n]))
        pos += n
    for i in range(len(pieces) - 1):  # local reordering
        if rnd.random() < 0.2:
            pieces[i], pieces[i + 1] = pieces[i + 1], pieces[i]
    ref = _stream_events(PyChunker, PyHalfStream, PyBudget, pieces, 65536)
    got = _stream_events(core.compiled.Chunker, core.compiled.HalfStream, core.compiled.Budget, pieces, 65536)
    assert got == ref
    assert b"".join(e[3] for e in ref if e[0] == "chunk") == data
    assert ref[-1] == ("budget", 0)  # the recorder let go of its bytes at the end


def _feed_captures(table_cls: type, budget_cls: type, paths: list, shard: tuple[int, int]) -> tuple[list, dict, dict]:
    from sensor.capture.pcapfile import read_batches
    from sensor.flow.decode import Decoder

    r = Run()
    budget = budget_cls()

    def sink(flow: object, d: int) -> Recorder:
        return Recorder(r.log, (flow.key, d), 1 << 20, budget)  # type: ignore[attr-defined]

    def datagram(flow: object, d: int, seg: Segment) -> None:
        r.log.append(("datagram", flow.key, d, tuple(seg)))  # type: ignore[attr-defined]

    limits = Limits(chunk_size=4096)
    on_end = r.log.append
    table = table_cls(limits, HomeNet(), r.stats, sink, datagram, on_end, budget, shard)
    decoder = Decoder(r.stats)
    for path in paths:
        table.source = str(path)
        for batch in read_batches(str(path), r.stats):
            table.feed(batch, decoder)
    table.flush()
    return r.log, dict(r.stats.net), dict(r.stats.undecoded) | {"snapped": r.stats.snapped}


@compiled
@pytest.mark.parametrize("shard", [(0, 1), (0, 2), (1, 2)])
def test_whole_captures_fed_in_batches_give_the_same_chunks_records_and_counters(tmp_path, shard):
    """`FlowTable.feed` (the compiled one decodes in C and builds no Segment for TCP) against the reference's
    decode-then-process, over every sample and real capture, for one process and for each of two shares."""
    from tests.test_core_diff import SHARED, _captures

    paths = _captures(tmp_path)
    ref = _feed_captures(PyFlowTable, PyBudget, paths, shard)
    got = _feed_captures(core.compiled.FlowTable, core.compiled.Budget, paths, shard)
    # the real captures in ../shared make the hundreds of events; a clone without them (a bare checkout) has the
    # bundled samples only, and half of them in each of two shares
    assert len(ref[0]) > (100 if SHARED.is_dir() else 40)
    assert got == ref
