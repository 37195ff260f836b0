"""The chunker (sensor/flow/chunker.py and its compiled mirror): when a direction's bytes go up, and what
a chunk says about the packets in it. Every case runs on both cores."""

from __future__ import annotations

import pytest

from sensor import native as core
from sensor.config import Limits
from sensor.flow.chunker import Chunker as PyChunker
from sensor.flow.direction import HomeNet
from sensor.flow.table import Budget as PyBudget
from sensor.flow.table import FlowTable as PyFlowTable
from sensor.model import Segment
from sensor.stats import RunStats
from tests.test_flow_diff import ACK, CLIENT, FIN, SERVER, SYN, Recorder

CORES = [pytest.param((PyChunker, PyBudget, PyFlowTable), id="reference")]
if core.compiled is not None:
    CORES.append(pytest.param((core.compiled.Chunker, core.compiled.Budget, core.compiled.FlowTable), id="compiled"))


class Reader:
    source = "a.pcap"


def pair(classes: tuple, size: int = 10, delay: float = 100.0) -> tuple[list, object, object, object, Reader]:
    chunker_cls, budget_cls, _ = classes
    log: list = []
    budget, reader = budget_cls(), Reader()
    c0 = chunker_cls(Recorder(log, 0, 1 << 30, budget), reader, budget, size, delay)
    c1 = chunker_cls(Recorder(log, 1, 1 << 30, budget), reader, budget, size, delay)
    c0.other, c1.other = c1, c0
    return log, c0, c1, budget, reader


def chunks(log: list) -> list[tuple]:
    return [(e[1], e[2], e[3]) if e[0] == "chunk" else e[:4] for e in log]


@pytest.mark.parametrize("classes", CORES)
def test_a_chunk_goes_up_once_it_holds_chunk_size_bytes_with_every_packets_stamp(classes):
    log, c0, _, budget, _ = pair(classes, size=10)
    c0.data(0, b"abcd", 1.0, 1)
    c0.data(4, b"efgh", 1.1, 2)
    assert log == [] and budget.used == 8  # waiting bytes are counted against the memory cap
    c0.data(8, b"ijkl", 1.2, 3)
    assert log == [
        ("chunk", 0, 0, b"abcdefghijkl", [0, 4, 8], [(1.0, 1, "a.pcap"), (1.1, 2, "a.pcap"), (1.2, 3, "a.pcap")])
    ]
    c0.data(12, b"m", 1.3, 4)
    c0.end("fin")
    assert chunks(log[1:]) == [(0, 12, b"m"), ("end", 0, "fin")]


@pytest.mark.parametrize("classes", CORES)
def test_the_other_direction_speaking_sends_what_waits_first(classes):
    """Request, response, request: the application layer sees them in capture order (pipelining, HEAD)."""
    log, c0, c1, _, _ = pair(classes, size=1000)
    c0.data(0, b"GET / HTTP/1.1\r\n\r\n", 1.0, 1)
    c1.data(0, b"HTTP/1.1 200 OK\r\n", 1.1, 2)
    c1.data(17, b"\r\n", 1.2, 3)
    c0.data(18, b"GET /2", 1.3, 4)
    assert chunks(log) == [(0, 0, b"GET / HTTP/1.1\r\n\r\n"), (1, 0, b"HTTP/1.1 200 OK\r\n\r\n")]
    c1.gap(19, 5)  # a gap or an end on one side sends the other side's bytes first too
    assert chunks(log[2:]) == [(0, 18, b"GET /2"), ("gap", 1, 19, 5)]
    c0.data(24, b"x", 1.4, 5)
    c1.end("rst")
    assert chunks(log[4:]) == [(0, 24, b"x"), ("end", 1, "rst")]


@pytest.mark.parametrize("classes", CORES)
def test_a_gap_a_new_capture_file_and_chunk_delay_cut_a_chunk(classes):
    log, c0, _, _, reader = pair(classes, size=1000, delay=1.0)
    c0.data(0, b"ab", 1.0, 1)
    c0.gap(2, 3)
    c0.data(5, b"cd", 2.0, 2)
    reader.source = "b.pcap"  # the capture rotated
    c0.data(7, b"ef", 2.1, 3)
    c0.data(9, b"gh", 3.2, 4)  # a second after the chunk's first byte: it goes up, this packet with it
    assert log[:2] == [("chunk", 0, 0, b"ab", [0], [(1.0, 1, "a.pcap")]), ("gap", 0, 2, 3)]
    assert log[2] == ("chunk", 0, 5, b"cd", [5], [(2.0, 2, "a.pcap")])
    assert log[3] == ("chunk", 0, 7, b"efgh", [7, 9], [(2.1, 3, "b.pcap"), (3.2, 4, "b.pcap")])
    assert not c0.stale(100.0)  # nothing waits


@pytest.mark.parametrize("classes", CORES)
def test_peek_reads_delivered_bytes_across_what_went_up_and_what_waits(classes):
    log, c0, _, _, _ = pair(classes, size=6)
    c0.data(0, b"012345", 1.0, 1)  # up
    c0.data(6, b"678", 1.1, 2)  # waits
    assert c0.peek(4, 4) == b"4567"
    assert c0.peek(7, 2) == b"78"
    assert c0.peek(1, 2) == b"12"
    assert c0.peek(8, 2) is None  # byte 9 was never delivered


@pytest.mark.parametrize("classes", CORES)
def test_a_quiet_flows_bytes_go_up_at_the_sweep_after_chunk_delay(classes):
    """A live alert must not wait for the flow's end: a packet of another flow two seconds later moves the
    capture clock, and the sweep hands the first flow's waiting bytes up."""
    _, budget_cls, table_cls = classes
    log: list = []
    budget = budget_cls()
    table = table_cls(
        Limits(chunk_delay=1.0),
        HomeNet(),
        RunStats(),
        lambda flow, d: Recorder(log, d, 1 << 30, budget),
        lambda *a: None,
        lambda rec: log.append(("flow", rec.end_reason)),
        budget,
    )
    table.source = "a.pcap"
    table.process(Segment(10.0, 1, CLIENT, SERVER, 40000, 80, 6, 100, SYN, b""))
    table.process(Segment(10.1, 2, CLIENT, SERVER, 40000, 80, 6, 101, ACK, b"POST /x HTTP/1.1\r\n"))
    table.process(Segment(11.0, 3, CLIENT, SERVER, 40001, 80, 6, 500, SYN, b""))
    assert log == []
    table.process(Segment(12.5, 4, CLIENT, SERVER, 40001, 80, 6, 500, SYN, b""))
    assert log == [("chunk", 0, 0, b"POST /x HTTP/1.1\r\n", [0], [(10.1, 2, "a.pcap")])]
    table.process(Segment(12.6, 5, CLIENT, SERVER, 40000, 80, 6, 119, FIN | ACK, b""))
    table.flush()
    ends = [("end", 0, "eof"), ("end", 1, "eof"), ("flow", "eof")]
    assert log[1:] == [("end", 0, "fin"), ("end", 1, "eof"), ("flow", "eof"), *ends]
    assert budget.used == 0
