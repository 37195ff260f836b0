"""Frames to segments: every link type, VLAN tags, IPv6 extension headers, IP fragments, padding, snapped
frames, undecodable frames counted by reason, and the struct fast path against the dpkt path on thousands
of random frames built by scapy."""

from __future__ import annotations

import random
import socket
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP, IPOption_Router_Alert, fragment
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    fragment6,
)
from scapy.layers.l2 import ARP, LLC, SNAP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Dot3, Ether
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Padding, Raw
from scapy.utils import wrpcap

from sensor.capture import read_packets
from sensor.flow.decode import Decoder, decode_struct
from sensor.model import Packet, Segment
from sensor.stats import RunStats

MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
A4, B4 = "10.1.2.3", "203.0.113.9"
A6, B6 = "2001:db8::1", "2001:db8:ffff::2"
RAW4 = bytes([10, 1, 2, 3]), bytes([203, 0, 113, 9])
RAW6 = bytes.fromhex("20010db8000000000000000000000001"), bytes.fromhex("20010db8ffff00000000000000000002")
BODY = b"POST /upload HTTP/1.1\r\n\r\n\x1f\x8b\x08\x00 staged bytes"


def packet(frame: bytes | ScapyPacket, linktype: int = 1, wirelen: int | None = None, index: int = 7, ts: float = 5.0):
    data = bytes(frame)
    return Packet(ts, linktype, data, index, len(data) if wirelen is None else wirelen, "t.pcap")


def tcp4(payload: bytes = BODY) -> ScapyPacket:
    return IP(src=A4, dst=B4) / TCP(sport=50512, dport=80, seq=1000, flags="PA") / Raw(payload)


def tcp6(payload: bytes = BODY) -> ScapyPacket:
    return IPv6(src=A6, dst=B6) / TCP(sport=50512, dport=80, seq=1000, flags="PA") / Raw(payload)


SEG4 = Segment(5.0, 7, *RAW4, 50512, 80, 6, 1000, 0x18, BODY)
SEG6 = Segment(5.0, 7, *RAW6, 50512, 80, 6, 1000, 0x18, BODY)


def loopback(order: str, family: int, l3: ScapyPacket) -> bytes:
    return struct.pack(order + "I", family) + bytes(l3)


@pytest.mark.parametrize(
    ("frame", "linktype", "expected"),
    [
        (Ether(**MAC) / tcp4(), 1, SEG4),
        (Ether(**MAC) / tcp6(), 1, SEG6),
        (Ether(**MAC) / Dot1Q(vlan=5) / tcp4(), 1, SEG4),
        (Ether(**MAC) / Dot1AD(vlan=10) / Dot1Q(vlan=20) / tcp4(), 1, SEG4),
        (Ether(**MAC, type=0x9100) / Dot1Q(vlan=10) / tcp6(), 1, SEG6),
        (Ether(**MAC, type=0x9200) / Dot1Q(vlan=10) / tcp4(), 1, SEG4),  # legacy QinQ: dpkt path only
        (CookedLinux(proto=0x0800) / tcp4(), 113, SEG4),
        (CookedLinux(proto=0x86DD) / tcp6(), 113, SEG6),
        (CookedLinuxV2(proto=0x0800) / tcp4(), 276, SEG4),
        (CookedLinuxV2(proto=0x86DD) / tcp6(), 276, SEG6),
        (tcp4(), 101, SEG4),
        (tcp6(), 101, SEG6),
        (tcp4(), 12, SEG4),
        (tcp6(), 14, SEG6),
        (loopback("<", 2, tcp4()), 0, SEG4),
        (loopback(">", 2, tcp4()), 0, SEG4),
        (loopback(">", 2, tcp4()), 108, SEG4),
        (loopback("<", 24, tcp6()), 0, SEG6),
        (loopback(">", 28, tcp6()), 0, SEG6),
        (loopback("<", 30, tcp6()), 108, SEG6),
    ],
    ids=lambda v: v.summary() if isinstance(v, ScapyPacket) else str(v)[:12],
)
def test_each_link_type(frame: ScapyPacket | bytes, linktype: int, expected: Segment) -> None:
    stats = RunStats()
    assert Decoder(stats).decode(packet(frame, linktype)) == expected
    assert Decoder(RunStats()).decode_dpkt(packet(frame, linktype)) == expected
    assert stats.undecoded == {} and stats.snapped == 0


def test_udp_segment() -> None:
    frame = Ether(**MAC) / IP(src=A4, dst=B4) / UDP(sport=5353, dport=53) / Raw(b"query")
    assert Decoder(RunStats()).decode(packet(frame)) == Segment(5.0, 7, *RAW4, 5353, 53, 17, 0, 0, b"query")


def test_pcap_with_linux_cooked_frames_read_and_decoded(tmp_path: Path) -> None:
    path = str(tmp_path / "any.pcap")
    wrpcap(path, [CookedLinux(proto=0x0800) / tcp4(), CookedLinuxV2(proto=0x86DD) / tcp6()][:1], linktype=113)
    stats = RunStats()
    decoder = Decoder(stats)
    (seg,) = [decoder.decode(p) for p in read_packets(path, stats)]
    assert seg == SEG4._replace(ts=seg.ts, index=1)


# -- IPv6 extension headers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "exts",
    [
        IPv6ExtHdrHopByHop(),
        IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting(addresses=["2001:db8::99", "2001:db8::98"]) / IPv6ExtHdrDestOpt(),
        IPv6ExtHdrDestOpt() / IPv6ExtHdrFragment(offset=0, m=0, id=9),  # an atomic fragment: whole
    ],
    ids=["hop", "hop-routing-dest", "dest-atomic-fragment"],
)
@pytest.mark.parametrize("linktype", [1, 101])
def test_ipv6_extension_headers(exts: ScapyPacket, linktype: int) -> None:
    l3 = IPv6(src=A6, dst=B6) / exts / TCP(sport=50512, dport=80, seq=1000, flags="PA") / Raw(BODY)
    frame = Ether(**MAC) / l3 if linktype == 1 else l3
    stats = RunStats()
    assert Decoder(stats).decode(packet(frame, linktype)) == SEG6
    assert stats.undecoded == {}


# -- fragments -------------------------------------------------------------------------------------


def decode_all(decoder: Decoder, frames: list[ScapyPacket], linktype: int = 1) -> list[Segment]:
    segs = [decoder.decode(packet(f, linktype, index=i + 1, ts=100.0 + i)) for i, f in enumerate(frames)]
    return [s for s in segs if s is not None]


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_ipv4_fragments_out_of_order(transport: str) -> None:
    body = random.Random(1).randbytes(3000)
    l4 = TCP(sport=50512, dport=80, seq=77, flags="A") if transport == "tcp" else UDP(sport=5000, dport=6000)
    frags = [Ether(**MAC) / f for f in fragment(IP(src=A4, dst=B4, id=4242) / l4 / Raw(body), fragsize=600)]
    assert len(frags) == 6
    random.Random(3).shuffle(frags)
    frags += [frags[1]]  # a duplicate after completion starts a new datagram that never completes
    stats = RunStats()
    decoder = Decoder(stats)
    (seg,) = decode_all(decoder, frags)
    ports, seq, flags = ((50512, 80), 77, 0x10) if transport == "tcp" else ((5000, 6000), 0, 0)
    assert seg == Segment(105.0, 6, *RAW4, *ports, 6 if transport == "tcp" else 17, seq, flags, body)
    assert stats.net["fragments_reassembled"] == 1 and stats.net["fragments"] == 7
    decoder.close()
    assert stats.net["fragments_incomplete"] == 1


def raw_fragment(offset: int, data: bytes, more: bool, ident: int = 1) -> ScapyPacket:
    return (
        Ether(**MAC) / IP(src=A4, dst=B4, id=ident, proto=17, frag=offset // 8, flags="MF" if more else 0) / Raw(data)
    )


def test_overlapping_fragments_first_copy_wins() -> None:
    udp = bytes(UDP(sport=1, dport=2, len=8 + 40, chksum=0))
    frames = [
        raw_fragment(16, b"B" * 16, True),
        raw_fragment(0, udp + b"a" * 8, True),
        raw_fragment(8, b"X" * 24, True),  # overlaps both: only bytes 24..32 are new
        raw_fragment(32, b"C" * 16 + b"Z" * 8, False),
        raw_fragment(40, b"Y" * 8, False),  # after completion: a new, incomplete datagram
    ]
    stats = RunStats()
    (seg,) = decode_all(Decoder(stats), frames)
    assert seg.payload == b"a" * 8 + b"BBBBBBBB" + b"BBBBBBBB" + b"C" * 16 + b"Z" * 8


def test_ipv6_fragments_in_reverse_after_a_hop_by_hop_header() -> None:
    body = random.Random(2).randbytes(4000)
    whole = (
        IPv6(src=A6, dst=B6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(id=0xBEEF) / UDP(sport=1, dport=2) / Raw(body)
    )
    frags = fragment6(whole, 1280)
    assert len(frags) == 4
    stats = RunStats()
    (seg,) = decode_all(Decoder(stats), [Ether(**MAC) / f for f in reversed(frags)])
    assert seg == Segment(103.0, 4, *RAW6, 1, 2, 17, 0, 0, body)
    assert stats.net["fragments_reassembled"] == 1 and stats.undecoded == {}


def test_ipv6_fragment_with_destination_options_inside() -> None:
    whole = IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(id=5) / IPv6ExtHdrDestOpt() / tcp6()[TCP]
    frags = fragment6(whole, 100)
    assert len(frags) == 2
    (seg,) = decode_all(Decoder(RunStats()), frags, linktype=101)
    assert seg._replace(ts=5.0, index=7) == SEG6


def test_fragment_bound_evicts_the_oldest_datagram() -> None:
    stats = RunStats()
    decoder = Decoder(stats, max_fragments=3)
    first = [raw_fragment(0, bytes(UDP(sport=i, dport=2, len=24)) + b"x" * 8, True, ident=i) for i in (1, 2, 3)]
    last = [raw_fragment(16, b"y" * 8, False, ident=i) for i in (3, 1, 2)]
    # 3 fragments buffered: datagram 3's last fragment needs room, so datagram 1 (the oldest) gives way
    segs = decode_all(decoder, first + last)
    assert [s.sport for s in segs] == [3, 2]
    assert stats.net["fragments_evicted"] == 1
    assert decoder.fragments.buffered == 1  # datagram 1's last fragment, waiting for a first that is gone


def test_fragments_expire_in_capture_time() -> None:
    stats = RunStats()
    decoder = Decoder(stats, fragment_timeout=10.0)
    head = raw_fragment(0, bytes(UDP(sport=1, dport=2, len=24)) + b"x" * 8, True)
    tail = raw_fragment(16, b"y" * 8, False)
    assert decoder.decode(packet(head, ts=100.0)) is None
    assert decoder.decode(packet(tail, ts=111.0)) is None
    assert stats.net["fragments_expired"] == 1
    assert decoder.decode(packet(head, ts=112.0)).payload == b"x" * 8 + b"y" * 8


def test_fragment_past_64k_is_malformed() -> None:
    stats = RunStats()
    assert Decoder(stats).decode(packet(raw_fragment(65528, b"z" * 16, False))) is None
    assert stats.undecoded == {"malformed": 1}


# -- lengths: padding, offload, snapped frames -------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        Ether(**MAC) / tcp4(b"abc") / Padding(b"\0" * 3),  # 54 + 3 < 60: padded on the wire
        Ether(**MAC) / Dot1Q(vlan=3) / tcp4(b"abc") / Padding(b"\0" * 3),
        Ether(**MAC) / IP(src=A4, dst=B4) / UDP(sport=1, dport=2) / Raw(b"abc") / Padding(b"\0" * 15),
        Ether(**MAC) / tcp6(b"abc") / Padding(b"\xee" * 4),  # a trailer after IPv6
        Ether(**MAC) / IP(src=A4, dst=B4, options=[IPOption_Router_Alert()]) / TCP() / Raw(b"abc") / Padding(b"\0" * 8),
    ],
    ids=["eth", "vlan", "udp", "ipv6", "ip-options"],
)
def test_ethernet_padding_is_not_payload(frame: ScapyPacket) -> None:
    stats = RunStats()
    assert Decoder(stats).decode(packet(frame)).payload == b"abc"
    assert Decoder(stats).decode_dpkt(packet(frame)).payload == b"abc"


def test_ip_length_zero_is_segmentation_offload() -> None:
    frame = bytearray(bytes(Ether(**MAC) / tcp4(b"x" * 3000)))
    frame[16:18] = b"\0\0"  # the capturing host's NIC fills in the length later
    assert Decoder(RunStats()).decode(packet(bytes(frame))).payload == b"x" * 3000
    assert Decoder(RunStats()).decode_dpkt(packet(bytes(frame))).payload == b"x" * 3000


def test_snapped_frame_is_counted_and_decoded_as_far_as_it_goes() -> None:
    whole = bytes(Ether(**MAC) / tcp4())
    stats = RunStats()
    seg = Decoder(stats).decode(packet(whole[:70], wirelen=len(whole)))
    assert seg == SEG4._replace(payload=BODY[:16])
    assert stats.snapped == 1 and stats.undecoded == {}


def test_snapped_inside_the_headers() -> None:
    whole = bytes(Ether(**MAC) / tcp6())
    stats = RunStats()
    assert Decoder(stats).decode(packet(whole[:64], wirelen=len(whole))) is None
    assert stats.snapped == 1 and stats.undecoded == {"short": 1}


# -- what is not decoded, and why ------------------------------------------------------------------


def ip_with(**fields) -> bytes:
    return bytes(Ether(**MAC) / IP(src=A4, dst=B4, **fields) / TCP() / Raw(b"x" * 20))


@pytest.mark.parametrize(
    ("frame", "linktype", "reason"),
    [
        (Ether(**MAC) / ARP(), 1, "ethertype:0x0806"),
        (Ether(**MAC) / IP(src=A4, dst=B4) / ICMP(), 1, "ip_proto:1"),
        (Ether(**MAC) / IPv6(src=A6, dst=B6, nh=50) / Raw(b"\0" * 24), 1, "ip_proto:50"),  # ESP
        (Ether(**MAC) / IPv6(src=A6, dst=B6) / IPv6ExtHdrDestOpt(nh=59), 1, "ip_proto:59"),
        (Ether(**MAC) / Dot1Q() / Dot1Q() / Dot1Q() / tcp4(), 1, "ethertype:0x8100"),  # a third tag
        (Dot3(**MAC) / LLC() / SNAP() / tcp4(), 1, "llc"),
        (bytes(Ether(**MAC))[:10], 1, "short"),
        (bytes(Ether(**MAC) / tcp4())[:30], 1, "short"),
        (bytes(Ether(**MAC) / tcp4())[:44], 1, "short"),
        (tcp4(), 147, "linktype:147"),
        (b"\x50" + bytes(tcp4())[1:], 101, "ip_version:5"),
        (b"", 101, "short"),
        (loopback("<", 7, tcp4()), 0, "af:7"),
        (CookedLinux(proto=0x0806) / ARP(), 113, "ethertype:0x0806"),
        (ip_with(ihl=4), 1, "malformed"),
        (ip_with(len=12), 1, "malformed"),
        (ip_with(version=6), 1, "malformed"),
        (Ether(**MAC) / IP(src=A4, dst=B4) / TCP(dataofs=3) / Raw(b"x" * 20), 1, "malformed"),
        (Ether(**MAC) / IP(src=A4, dst=B4, len=30) / TCP() / Raw(b"x" * 20), 1, "short"),  # TCP cut by IP length
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_undecoded_frames_are_counted_by_reason(frame: ScapyPacket | bytes, linktype: int, reason: str) -> None:
    stats = RunStats()
    assert Decoder(stats).decode(packet(frame, linktype)) is None
    assert stats.undecoded == {reason: 1}


# -- the fast path against the dpkt path -------------------------------------------------------------

TCP_OPTIONS = [("MSS", 1460), ("SAckOK", b""), ("WScale", 7), ("Timestamp", (123, 456)), ("NOP", None)]


def ip4(rng: random.Random) -> str:
    return socket.inet_ntop(socket.AF_INET, rng.randbytes(4))


def ip6(rng: random.Random) -> str:
    return socket.inet_ntop(socket.AF_INET6, rng.randbytes(16))


def random_frame(rng: random.Random) -> ScapyPacket:
    """One valid Ethernet frame: 0-2 VLAN tags, IPv4 (maybe with options) or IPv6, TCP (maybe with
    options, any flags) or UDP, a random payload, padding when short."""
    l2 = Ether(src=MAC["src"], dst=MAC["dst"])
    tags = rng.choice([0, 0, 1, 2])
    if tags == 1:
        l2 = l2 / Dot1Q(vlan=rng.randrange(4096))
    elif tags == 2:
        outer = rng.choice([Dot1AD, Dot1Q])(vlan=rng.randrange(4096))
        l2 = (l2 / outer / Dot1Q(vlan=rng.randrange(4096))) if rng.random() < 0.7 else (l2 / Dot1Q() / Dot1Q())
    if rng.random() < 0.7:
        options = rng.choice([[], [], [IPOption_NOP()] * rng.randrange(1, 5), [IPOption_Router_Alert()]])
        l3 = IP(
            src=ip4(rng),
            dst=ip4(rng),
            id=rng.randrange(65536),
            ttl=rng.randrange(1, 256),
            flags=rng.choice([0, "DF"]),
            tos=rng.randrange(256),
            options=options,
        )
    else:
        l3 = IPv6(src=ip6(rng), dst=ip6(rng), tc=rng.randrange(256), fl=rng.randrange(1 << 20))
    if rng.random() < 0.8:
        opts = rng.sample(TCP_OPTIONS, rng.randrange(len(TCP_OPTIONS) + 1))
        l4 = TCP(
            sport=rng.randrange(65536),
            dport=rng.randrange(65536),
            seq=rng.randrange(1 << 32),
            ack=rng.randrange(1 << 32),
            flags=rng.randrange(256),
            window=rng.randrange(65536),
            options=opts,
        )
    else:
        l4 = UDP(sport=rng.randrange(65536), dport=rng.randrange(65536))
    size = rng.choice([0, 1, rng.randrange(2, 64), rng.randrange(64, 1400)])
    frame = l2 / l3 / l4 / Raw(rng.randbytes(size))
    short = 60 - len(frame)
    if short > 0 or rng.random() < 0.1:
        frame = frame / Padding(
            b"\0" * max(short, 0) + rng.randbytes(rng.randrange(4))
        )  # padding, maybe an FCS-like tail
    return frame


def test_fast_path_and_dpkt_path_agree_on_random_frames() -> None:
    rng = random.Random(20261123)
    decoder = Decoder(RunStats())
    compared = snapped = 0
    for i in range(3000):
        data = bytes(random_frame(rng))
        pkt = Packet(rng.random() * 2e9, 1, data, i + 1, len(data), "r.pcap")
        fast = decode_struct(pkt)
        assert fast is not None, data.hex()
        assert fast == decoder.decode_dpkt(pkt), data.hex()
        compared += 1
        cut = Packet(pkt.ts, 1, data[: rng.randrange(14, len(data) + 1)], i + 1, len(data), "r.pcap")
        fast = decode_struct(cut)
        if fast is not None:
            assert fast == decoder.decode_dpkt(cut), cut.data.hex()
            snapped += 1
    assert decoder.stats.undecoded == {}
    assert compared == 3000 and snapped > 1000
