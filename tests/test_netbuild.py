"""The capture builders themselves: what they write must read back, with scapy, as what was meant.

Reassembly here is a small reference (by sequence number, first copy wins) over packets that
scapy's own ``rdpcap`` read from the written file, split per flow with ``PacketList.sessions``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP, defragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, defragment6
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback
from scapy.packet import Packet
from scapy.utils import rdpcap

from tests.builders import gzip_mtime0, random_bytes, sample_text, zlib_member
from tests.netbuild import (
    BASE_TIME,
    LINKTYPES,
    Conv,
    as_linktype,
    data_indices,
    drop,
    fragment,
    interleave,
    nth_data,
    overlap,
    payload_stream,
    reorder,
    retransmit,
    segments,
    udp_datagrams,
    vlan,
    write_pcap,
    write_pcapng,
)

MOD = 2**32


def reassemble(pkts: list[Packet], sender: tuple[str, int], isn: int, last_wins: bool = False) -> tuple[bytes, int]:
    """Stream bytes sent by ``sender`` (zero bytes in holes) and the number of missing bytes."""
    base = (isn + 1) % MOD
    buf: dict[int, int] = {}
    for pkt in pkts:
        tcp = pkt.getlayer(TCP)
        l3 = pkt.getlayer(IP) or pkt.getlayer(IPv6)
        if tcp is None or (l3.src, tcp.sport) != sender or not len(tcp.payload):
            continue
        rel = (tcp.seq - base) % MOD
        for k, byte in enumerate(bytes(tcp.payload)):
            if last_wins or rel + k not in buf:
                buf[rel + k] = byte
    size = max(buf) + 1 if buf else 0
    return bytes(buf.get(i, 0) for i in range(size)), size - len(buf)


def conv_two_way(**kw) -> Conv:
    sends = [
        ("c2s", b"POST /upload HTTP/1.1\r\nContent-Length: 9000\r\n\r\n"),
        ("c2s", gzip_mtime0(sample_text(30_000, 1))),
        ("s2c", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ("c2s", zlib_member(random_bytes(3000, 2))),
    ]
    base = {"client": "10.1.2.3", "client_port": 50512, "server": "203.0.113.9", "server_port": 80, "sends": sends}
    return Conv(**(base | kw))


def both_ways(pkts: list[Packet], conv: Conv) -> tuple[bytes, bytes]:
    c2s, _ = reassemble(pkts, conv.sender("c2s"), conv.isn_c)
    s2c, _ = reassemble(pkts, conv.sender("s2c"), conv.isn_s)
    return c2s, s2c


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"isn_c": MOD - 700, "isn_s": MOD - 1},  # both directions wrap inside the first segments
        {"client": "2001:db8::10", "server": "2001:db8:ffff::20", "mss": 1220},
    ],
    ids=["ipv4", "seq-wrap", "ipv6"],
)
def test_written_capture_reassembles_to_payload_stream(tmp_path: Path, kw: dict) -> None:
    conv = conv_two_way(**kw)
    pkts = segments(conv)
    read = rdpcap(str(write_pcap(tmp_path / "c.pcap", pkts)))
    assert len(read) == len(pkts)
    flows = read.sessions()
    assert len(flows) == 2  # one session per direction
    for plist in flows.values():
        tcp = plist[0][TCP]
        sender = (plist[0].getlayer(IP) or plist[0].getlayer(IPv6)).src, tcp.sport
        direction = "c2s" if tcp.sport == conv.client_port else "s2c"
        isn = conv.isn_c if direction == "c2s" else conv.isn_s
        assert reassemble(list(plist), sender, isn) == (payload_stream(conv, direction), 0)
    # handshake, segment sizes, PSH on the last segment of each send, FIN close
    assert [str(p[TCP].flags) for p in read[:3]] == ["S", "SA", "A"]
    assert read[0][TCP].seq == conv.isn_c and read[1][TCP].ack == (conv.isn_c + 1) % MOD
    data = [p for p in read if len(p[TCP].payload)]
    assert max(len(p[TCP].payload) for p in data) == conv.mss
    assert sum("P" in str(p[TCP].flags) for p in data) == len(conv.sends)
    assert [str(p[TCP].flags) for p in read[-3:]] == ["FA", "FA", "A"]
    # microsecond timestamps, strictly increasing from the base time
    times = [int(p.time * 1_000_000) for p in read]
    assert times[0] == BASE_TIME * 1_000_000 and all(a < b for a, b in zip(times, times[1:], strict=False))


def test_wrap_really_crosses_zero() -> None:
    conv = conv_two_way(isn_c=MOD - 700)
    seqs = [segments(conv)[i][TCP].seq for i in data_indices(segments(conv), conv.sender("c2s"))]
    head = len(conv.sends[0][1])
    assert seqs[0] == MOD - 699 and seqs[2] == head + 1460 - 699  # the third segment sits just after 0


def test_close_options_and_mid_stream_pickup() -> None:
    assert str(segments(conv_two_way(close="rst"))[-1][TCP].flags) == "RA"
    open_conv = segments(conv_two_way(close=None, handshake=False))
    assert not any(p[TCP].flags & 0x07 for p in open_conv)  # no SYN, FIN or RST at all
    first = open_conv[0][TCP]
    assert len(first.payload) and first.seq == 1_000_001  # isn + 1, as if the handshake was missed


def test_reorder_is_deterministic_and_keeps_every_packet() -> None:
    conv = conv_two_way()
    pkts = segments(conv)
    moved = reorder(pkts, seed=7, fraction=0.3)
    assert [bytes(p) for p in moved] == [bytes(p) for p in reorder(pkts, seed=7, fraction=0.3)]
    assert sorted(bytes(p) for p in moved) == sorted(bytes(p) for p in pkts)
    seqs = [moved[i][TCP].seq for i in data_indices(moved, conv.sender("c2s"))]
    assert any((b - a) % MOD > MOD // 2 for a, b in zip(seqs, seqs[1:], strict=False))  # some arrive late
    assert both_ways(moved, conv) == (payload_stream(conv, "c2s"), payload_stream(conv, "s2c"))
    assert [p.time for p in moved] == [p.time for p in pkts]  # times stay in capture order
    assert [bytes(p) for p in pkts] == [bytes(p) for p in segments(conv)]  # input untouched


def test_retransmit_adds_exact_duplicates() -> None:
    conv = conv_two_way()
    pkts = segments(conv)
    n_data = len(data_indices(pkts))
    out = retransmit(pkts, seed=3, fraction=0.25)
    assert len(out) == len(pkts) + round(0.25 * n_data)
    raw = [bytes(p) for p in out]
    assert len(set(raw)) == len(pkts) and all(raw.count(r) <= 2 for r in raw)
    assert both_ways(out, conv) == (payload_stream(conv, "c2s"), payload_stream(conv, "s2c"))
    assert all(a.time < b.time for a, b in zip(out, out[1:], strict=False))


@pytest.mark.parametrize("different", [False, True])
def test_overlap_resends_earlier_bytes(different: bool) -> None:
    conv = conv_two_way()
    pkts = segments(conv)
    idx = data_indices(pkts, conv.sender("c2s"))[3]
    shift = 100
    new = b"X" * shift if different else None
    out = overlap(pkts, idx, shift, new_bytes=new)
    dup = out[idx + 1][TCP]
    assert len(out) == len(pkts) + 1 and dup.seq == (pkts[idx][TCP].seq - shift) % MOD
    stream = payload_stream(conv, "c2s")
    start = (dup.seq - conv.isn_c - 1) % MOD
    assert bytes(dup.payload)[shift:] == bytes(pkts[idx][TCP].payload)
    assert bytes(dup.payload)[:shift] == (b"X" * shift if different else stream[start : start + shift])
    first, _ = reassemble(out, conv.sender("c2s"), conv.isn_c)
    last, _ = reassemble(out, conv.sender("c2s"), conv.isn_c, last_wins=True)
    assert first == stream
    assert last == (stream[:start] + b"X" * shift + stream[start + shift :] if different else stream)


def test_drop_makes_a_gap_where_asked() -> None:
    conv = conv_two_way()
    pkts = retransmit(segments(conv), seed=1, fraction=1.0)  # every data segment twice
    out = drop(pkts, nth_data(conv, "c2s", 2))
    assert len(out) == len(pkts) - 2  # both copies are gone
    got, missing = reassemble(out, conv.sender("c2s"), conv.isn_c)
    first_send = len(conv.sends[0][1])  # send 0 is one segment, send 1 starts segment 1
    start, end = first_send + conv.mss, first_send + 2 * conv.mss
    stream = payload_stream(conv, "c2s")
    assert missing == conv.mss and got[:start] == stream[:start] and got[end:] == stream[end:]
    with pytest.raises(IndexError):
        nth_data(conv, "s2c", 5)


def test_vlan_tags_survive_the_file(tmp_path: Path) -> None:
    pkts = segments(conv_two_way())
    one = rdpcap(str(write_pcap(tmp_path / "v.pcap", vlan(pkts, ids=(20,)))))
    assert all(p[Ether].type == 0x8100 and p[Dot1Q].vlan == 20 and p[Dot1Q].type == 0x0800 for p in one)
    two = rdpcap(str(write_pcap(tmp_path / "qq.pcap", vlan(pkts, ids=(300, 20)))))
    assert all(bytes(p)[12:14] == b"\x88\xa8" and p[Dot1AD].vlan == 300 and p[Dot1Q].vlan == 20 for p in two)
    conv = conv_two_way()
    assert both_ways(list(two), conv) == (payload_stream(conv, "c2s"), payload_stream(conv, "s2c"))


def test_ipv4_fragments(tmp_path: Path) -> None:
    pkts = segments(conv_two_way())
    frags = rdpcap(str(write_pcap(tmp_path / "f.pcap", fragment(pkts, 512))))
    pieces = [p for p in frags if p[IP].flags.MF or p[IP].frag]
    assert pieces and all(len(p[IP].payload) <= 512 for p in frags)
    assert all(len(p[IP].payload) == 512 for p in pieces if p[IP].flags.MF)
    assert not any(p[IP].flags.DF for p in pieces)
    whole = defragment(frags)
    assert [bytes(p[IP].payload) for p in whole] == [bytes(p[IP].payload) for p in pkts]


def test_ipv6_fragments(tmp_path: Path) -> None:
    conv = conv_two_way(client="2001:db8::10", server="2001:db8:ffff::20")
    pkts = segments(conv)
    frags = rdpcap(str(write_pcap(tmp_path / "f6.pcap", fragment(pkts, 600))))
    pieces = [p for p in frags if IPv6ExtHdrFragment in p]
    assert all(len(p[IPv6ExtHdrFragment].payload) <= 600 for p in pieces)
    first_id = pieces[0][IPv6ExtHdrFragment].id
    group = [p[IPv6] for p in pieces if p[IPv6ExtHdrFragment].id == first_id]
    assert group[0][IPv6ExtHdrFragment].m == 1 and group[-1][IPv6ExtHdrFragment].m == 0
    big = next(p for p in pkts if len(p[IPv6].payload) > 600)
    assert bytes(defragment6(group)[IPv6].payload) == bytes(big[TCP])


@pytest.mark.parametrize("kind", ["sll", "sll2", "raw", "loop", "ether"])
@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_link_types(tmp_path: Path, kind: str, family: str) -> None:
    kw = {"client": "2001:db8::10", "server": "2001:db8:ffff::20"} if family == "ipv6" else {}
    conv = conv_two_way(**kw)
    pkts = as_linktype(vlan(segments(conv), ids=(20,)), kind)
    path = write_pcap(tmp_path / f"{kind}.pcap", pkts)
    assert struct.unpack("<I", path.read_bytes()[20:24])[0] == LINKTYPES[kind]
    read = list(rdpcap(str(path)))
    outer = {"sll": CookedLinux, "sll2": CookedLinuxV2, "raw": (IP, IPv6), "loop": Loopback, "ether": Ether}
    assert all(isinstance(p, outer[kind]) for p in read) and Dot1Q not in read[0]
    if kind == "sll2":
        assert type(read[0]) is CookedLinuxV2
    if kind == "loop" and family == "ipv6":  # BSD AF_INET6 (24): scapy on Linux leaves it undecoded
        assert bytes(read[0])[:4] == b"\x18\x00\x00\x00"
        read = [IPv6(bytes(p)[4:]) for p in read]
    assert both_ways(read, conv) == (payload_stream(conv, "c2s"), payload_stream(conv, "s2c"))


def test_pcapng_keeps_exact_times_and_bytes(tmp_path: Path) -> None:
    pkts = segments(conv_two_way(start=BASE_TIME + 0.000123))
    path = write_pcapng(tmp_path / "c.pcapng", pkts)
    assert path.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    read = rdpcap(str(path))
    assert [bytes(p) for p in read] == [bytes(p) for p in pkts]
    assert [int(p.time * 1_000_000) for p in read] == [int(p.time * 1_000_000) for p in pkts]
    assert int(read[0].time * 1_000_000) == BASE_TIME * 1_000_000 + 123


def test_files_are_reproducible(tmp_path: Path) -> None:
    def build(name: str) -> bytes:
        pkts = vlan(retransmit(reorder(segments(conv_two_way()), 5, 0.2), 6, 0.1), ids=(20,))
        return write_pcap(tmp_path / name, pkts).read_bytes()

    assert build("a.pcap") == build("b.pcap")


def test_interleave_merges_by_time() -> None:
    a = segments(conv_two_way())
    b = segments(conv_two_way(client_port=50513, start=BASE_TIME + 0.00025))
    merged = interleave(a, b)
    assert len(merged) == len(a) + len(b)
    assert all(x.time <= y.time for x, y in zip(merged, merged[1:], strict=False))
    assert {merged[0][TCP].sport, merged[1][TCP].sport} == {50512, 50513}


def test_udp_datagrams_both_ways() -> None:
    pkts = udp_datagrams("10.1.2.15", "10.0.0.53", 53001, 53, [b"query", ("s2c", b"answer")])
    assert [(p[IP].src, p[UDP].sport, bytes(p[UDP].payload)) for p in pkts] == [
        ("10.1.2.15", 53001, b"query"),
        ("10.0.0.53", 53, b"answer"),
    ]


def test_conv_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="same IP version"):
        Conv("10.0.0.1", 1, "2001:db8::1", 2)
    with pytest.raises(ValueError, match="at least one byte"):
        Conv("10.0.0.1", 1, "10.0.0.2", 2, [("c2s", b"")])
    with pytest.raises(ValueError, match="multiple of 8"):
        fragment([], 500)
