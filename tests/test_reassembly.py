"""TCP reassembly of one direction: order, retransmission, overlaps, gaps, depth, wrap, FIN."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.flow.reassembly import EndReason, HalfStream
from sensor.stats import RunStats


class ListSink:
    """A real in-memory sink (no mock): records what the reassembler delivers."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.gaps: list[tuple[int, int]] = []
        self.ends: list[EndReason] = []
        self.offsets: list[int] = []

    def received(self) -> bytes:
        return bytes(self.buf)

    def data(self, offset: int, payload: bytes, ts: float, index: int) -> None:
        assert offset == len(self.buf) + sum(g for _, g in self.gaps)
        self.offsets.append(offset)
        self.buf += payload

    def gap(self, offset: int, size: int) -> None:
        self.gaps.append((offset, size))

    def end(self, reason: EndReason) -> None:
        self.ends.append(reason)

    def peek(self, offset: int, size: int) -> bytes | None:
        skipped = sum(g for o, g in self.gaps if o < offset)
        i = offset - skipped
        return bytes(self.buf[i : i + size]) if i + size <= len(self.buf) else None


def half(depth: int = 1 << 30, max_pending: int = 1 << 20) -> tuple[HalfStream, ListSink, RunStats]:
    sink, stats = ListSink(), RunStats()
    return HalfStream(sink, stats, depth, max_pending), sink, stats


def cut(data: bytes, isn: int, size: int) -> list[tuple[int, bytes]]:
    return [((isn + i) & 0xFFFFFFFF, data[i : i + size]) for i in range(0, len(data), size)]


DATA = random.Random(1).randbytes(50_000)


def test_in_order_with_syn_and_fin():
    h, sink, _ = half()
    h.syn(1000)
    for seq, p in cut(DATA, 1001, 1460):
        h.segment(seq, p, 0.0, 1)
    h.fin((1001 + len(DATA)) & 0xFFFFFFFF, 0)
    assert sink.received() == DATA and sink.ends == [EndReason.FIN]


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(0, 0xFFFFFFFF), st.integers(200, 3000))
def test_any_permutation_with_duplicates_reassembles(rnd, isn, size):
    segs = cut(DATA, isn, size)
    segs += [rnd.choice(segs) for _ in range(len(segs) // 4)]  # retransmissions
    rnd.shuffle(segs)
    h, sink, stats = half()
    h.syn((isn - 1) & 0xFFFFFFFF)
    for seq, p in segs:
        h.segment(seq, p, 0.0, 1)
    h.finish(EndReason.EOF)
    assert sink.received() == DATA
    assert sink.gaps == [] and stats.net["overlap_conflicts"] == 0


def test_first_copy_wins_and_differing_overlap_is_counted():
    h, sink, stats = half()
    h.syn(0)
    h.segment(1, b"AAAAAAAAAA", 0.0, 1)
    h.segment(6, b"XXXXXYYYYY", 0.0, 2)  # overlaps 5 delivered bytes with different content
    h.finish(EndReason.EOF)
    assert sink.received() == b"AAAAAAAAAAYYYYY"
    assert stats.net["overlap_conflicts"] == 1 and stats.net["overlaps"] == 1
    h2, sink2, stats2 = half()
    h2.syn(0)
    h2.segment(11, b"later", 0.0, 1)  # out of order first ...
    h2.segment(11, b"LATER", 0.0, 2)  # ... then a different copy of the same bytes
    h2.segment(1, b"0123456789", 0.0, 3)
    h2.finish(EndReason.EOF)
    assert sink2.received() == b"0123456789later" and stats2.net["overlap_conflicts"] == 1


def test_lost_segment_is_a_gap_and_the_rest_is_delivered():
    h, sink, stats = half()
    h.syn(99)
    segs = cut(DATA, 100, 1000)
    for i, (seq, p) in enumerate(segs):
        if i != 10:
            h.segment(seq, p, 0.0, i)
    h.finish(EndReason.EOF)
    assert sink.gaps == [(10_000, 1000)]
    assert sink.received() == DATA[:10_000] + DATA[11_000:]
    assert stats.net["gaps"] == 1 and stats.net["gap_bytes"] == 1000


def test_too_much_waiting_behind_a_hole_declares_the_gap_early():
    h, sink, _ = half(max_pending=5000)
    h.syn(0)
    segs = cut(DATA, 1, 1000)
    for i, (seq, p) in enumerate(segs[:20]):
        if i != 2:
            h.segment(seq, p, 0.0, i)
    assert sink.gaps == [(2000, 1000)]  # declared before the end, once 5000 bytes waited
    assert len(sink.buf) >= 7000


def test_mid_stream_pickup_starts_at_the_first_byte_seen():
    h, sink, _ = half()
    for seq, p in cut(DATA, 123456, 1000)[5:]:
        h.segment(seq, p, 0.0, 1)
    h.finish(EndReason.IDLE)
    assert sink.received() == DATA[5000:] and sink.ends == [EndReason.IDLE]


def test_sequence_wrap():
    h, sink, _ = half()
    isn = 0xFFFFFFFF - 20_000
    h.syn(isn)
    segs = cut(DATA, isn + 1, 1460)
    segs[3], segs[20] = segs[20], segs[3]
    for seq, p in segs:
        h.segment(seq, p, 0.0, 1)
    h.finish(EndReason.EOF)
    assert sink.received() == DATA


def test_depth_stops_delivery_and_ends_the_sink_once():
    h, sink, stats = half(depth=10_000)
    h.syn(0)
    for seq, p in cut(DATA, 1, 1460):
        h.segment(seq, p, 0.0, 1)
    h.finish(EndReason.FIN)
    assert sink.received() == DATA[:10_000]
    assert sink.ends[0] == EndReason.DEPTH and stats.net["depth_hits"] == 1
    assert h.depth_hit


def test_fin_before_missing_data_waits_for_it():
    h, sink, _ = half()
    h.syn(0)
    h.segment(11, b"world", 0.0, 2)
    h.fin(16, 0)
    assert sink.ends == []
    h.segment(1, b"hello, you", 0.0, 1)
    assert sink.received() == b"hello, youworld" and sink.ends == [EndReason.FIN]


def test_a_longer_later_copy_of_waiting_data_keeps_only_its_new_bytes():
    """The issue's case: `later` waits behind a one-byte hole; `LATERxx` at the same offset must not replace it."""
    h, sink, stats = half()
    h.syn(0)
    h.segment(1, b"0123456789", 0.0, 1)
    h.segment(12, b"later", 0.0, 2)  # offset 11: waits behind the hole at offset 10
    h.segment(12, b"LATERxx", 0.0, 3)  # a different, longer copy of the same bytes
    h.segment(11, b"A", 0.0, 4)
    h.finish(EndReason.EOF)
    assert sink.received() == b"0123456789Alaterxx"
    assert stats.net["overlap_conflicts"] == 1


def test_an_earlier_segment_overlapping_waiting_data_does_not_replace_it():
    h, sink, stats = half()
    h.syn(0)
    h.segment(1, b"0123456789", 0.0, 1)
    h.segment(14, b"WAIT", 0.0, 2)  # offsets 13-16 wait behind a hole at 10-12
    h.segment(11, b"abcXYZW!", 0.0, 3)  # offsets 10-17: fills the hole, differs on 13-16, adds 17
    h.finish(EndReason.EOF)
    assert sink.received() == b"0123456789abcWAIT!"
    assert stats.net["overlap_conflicts"] == 1


def test_a_copy_spanning_several_waiting_pieces_fills_only_the_holes():
    h, sink, stats = half()
    h.syn(0)
    h.segment(3, b"CD", 0.0, 1)  # offsets 2-3
    h.segment(7, b"GH", 0.0, 2)  # offsets 6-7
    h.segment(1, b"abcdefghij", 0.0, 3)  # 0-9: agrees nowhere with the waiting copies' case
    h.finish(EndReason.EOF)
    assert sink.received() == b"abCDefGHij"
    assert stats.net["overlap_conflicts"] == 1 and sink.gaps == []


def _first_come(segments: list[tuple[int, bytes]]) -> dict[int, int]:
    """The oracle: a byte map filled in arrival order, each position by the first copy that names it."""
    bytemap: dict[int, int] = {}
    for off, payload in segments:
        for i, b in enumerate(payload):
            bytemap.setdefault(off + i, b)
    return bytemap


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 120), st.lists(st.sampled_from(b"ab"), min_size=1, max_size=30).map(bytes)),
        min_size=1,
        max_size=25,
    ),
    st.integers(0, 0xFFFFFFFF),
)
def test_out_of_order_copies_that_differ_deliver_the_first_copy_of_every_byte(segments, isn):
    """Random segment sets with conflicting copies (two-letter alphabet: many differ), any order, any ISN
    (sequence wrap included): the stream is the first-come byte map, its holes are the gaps."""
    h, sink, stats = half()
    h.syn((isn - 1) & 0xFFFFFFFF)
    for n, (off, payload) in enumerate(segments):
        h.segment((isn + off) & 0xFFFFFFFF, payload, float(n), n)
    h.finish(EndReason.EOF)
    bytemap = _first_come(segments)
    end = max(bytemap) + 1
    want = bytes(bytemap[i] for i in range(end) if i in bytemap)
    holes, start = [], None
    for i in range(end + 1):
        if i < end and i not in bytemap:
            start = i if start is None else start
        elif start is not None:
            holes.append((start, i - start))
            start = None
    assert sink.received() == want
    assert sink.gaps == holes
    # a conflict is a segment that, on arrival, offered a byte differing from the copy already there
    seen: dict[int, int] = {}
    differing = 0
    for off, payload in segments:
        if any(seen.get(off + i, b) != b for i, b in enumerate(payload)):
            differing += 1
        for i, b in enumerate(payload):
            seen.setdefault(off + i, b)
    assert stats.net["overlap_conflicts"] == differing
