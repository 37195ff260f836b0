"""End to end over captures: packets crafted with scapy (tests/netbuild.py), members written by the real
libraries (tests/builders.py), scanned through the real pipeline (`scan_inputs`) or the CLI.

Every expected value is derived from the crafted packets, not from the sensor: the member's stream
offset is where the test put it, its packet number is the first frame (in capture order) whose payload
carries its first byte, its hash is hashlib's over the member bytes, and the Community ID is computed
here from the spec (and checked once against the spec's published example).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import struct
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from loguru import logger
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

from sensor.cli import main as cli_main
from sensor.config import Limits, Settings
from sensor.model import Finding, FlowRecord
from sensor.output.ecs import finding_record, flow_record
from sensor.pipeline import Job, scan_inputs
from sensor.stats import RunStats
from sensor.store.db import FindingStore
from tests.builders import (
    bzip2_member,
    gzip_named,
    random_bytes,
    sample_text,
    xz_member,
    zip_archive,
    zlib_member,
)
from tests.netbuild import (
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

HOME = ("10.0.0.0/8", "fd00::/8")
IN4, IN4B, OUT4 = "10.1.0.5", "10.2.0.9", "198.51.100.7"
IN6, OUT6 = "fd00:10::5", "2001:db8::7"
CPORT, SPORT = 40_000, 8443
MOD = 2**32

# Members from the real libraries, byte-identical on every run (no "now" timestamps).
ZLIB = zlib_member(sample_text(30_000, 1))
GZIP = gzip_named(sample_text(40_000, 2), "export.csv")
XZ = xz_member(sample_text(25_000, 3))
BZIP2 = bzip2_member(sample_text(35_000, 4))
ZIP = zip_archive({"q3/report.csv": sample_text(20_000, 5)})


# -- running the pipeline -------------------------------------------------------------------------


@dataclass
class Run:
    findings: list[Finding]
    flows: list[FlowRecord]
    stats: RunStats

    def by_sha(self, member: bytes) -> list[Finding]:
        digest = hashlib.sha256(member).hexdigest()
        return [f for f in self.findings if f.member.sha256 == digest]


def settings(cache: Path, limits: Limits | None = None) -> Settings:
    return Settings(home_net=HOME, observer="test", cache_dir=cache, limits=limits or Limits())


def scan(cache: Path, *paths: Path, limits: Limits | None = None) -> Run:
    stats = RunStats()
    results = list(scan_inputs(Job(tuple(str(p) for p in paths), settings(cache, limits)), stats))
    findings = [r for r in results if isinstance(r, Finding)]
    flows = [r for r in results if isinstance(r, FlowRecord)]
    assert len(findings) + len(flows) == len(results)
    return Run(findings, flows, stats)


# -- expectations computed from the crafted packets -----------------------------------------------


def ref_community_id(a: str, ap: int, b: str, bp: int, proto: int = 6) -> str:
    """Community ID v1 written from the spec (corelight/community-id-spec), seed 0."""
    x, y = ipaddress.ip_address(a).packed, ipaddress.ip_address(b).packed
    if (x, ap) > (y, bp):
        x, y, ap, bp = y, x, bp, ap
    data = struct.pack("!H", 0) + x + y + struct.pack("!BBHH", proto, 0, ap, bp)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


def us_of(pkt: Packet) -> int:
    return int(Decimal(str(pkt.time)) * 1_000_000)


def iso_us(us: int) -> str:
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def first_packet(pkts: list[Packet], conv: Conv, direction: str, offset: int, skipped: int = 0) -> int:
    """1-based number of the first frame in capture order whose payload carries stream byte `offset`.

    `skipped` is the number of stream bytes before the first one the capture shows (mid-stream pickup).
    """
    ip, port = conv.sender(direction)  # type: ignore[arg-type]
    first = ((conv.isn_c if direction == "c2s" else conv.isn_s) + 1 + skipped) % MOD
    for i in data_indices(pkts, (ip, port)):
        tcp = pkts[i][TCP]
        rel = (tcp.seq - first) % MOD
        if rel <= offset < rel + len(tcp.payload):
            return i + 1
    raise AssertionError(f"no packet carries {direction} byte {offset}")


@dataclass(frozen=True)
class Ends:
    """Who sent the member to whom."""

    src: str
    sport: int
    dst: str
    dport: int


def expect(
    f: Finding,
    member: bytes,
    *,
    pcap: Path,
    pkts: list[Packet],
    packet: int,
    offset: int,
    ends: Ends,
    direction: str,
    kind: str,
    client_to_server: bool = True,
    object_index: int = 0,
    transport: str = "tcp",
) -> dict:
    """Assert one finding field by field (through its ECS record); returns the record."""
    rec = finding_record(f)
    sw = rec["stagewatch"]
    assert rec["file"]["size"] == len(member)
    assert rec["file"]["hash"]["sha256"] == hashlib.sha256(member).hexdigest()
    assert sw["offset"] == offset
    assert sw["truncated"] is False
    assert sw["verified"] is True
    assert sw["object_index"] == object_index
    assert rec["event"]["kind"] == kind
    assert rec["event"]["category"] == ["network"]
    assert rec["source"] == {"ip": ends.src, "port": ends.sport}
    assert rec["destination"] == {"ip": ends.dst, "port": ends.dport}
    proto = 6 if transport == "tcp" else 17
    assert rec["network"] == {
        "transport": transport,
        "direction": direction,
        "community_id": ref_community_id(ends.src, ends.sport, ends.dst, ends.dport, proto),
    }
    assert sw["source"] == {"path": str(pcap), "packet": packet}
    assert rec["@timestamp"] == iso_us(us_of(pkts[packet - 1]))
    assert sw["flow"]["client_to_server"] is client_to_server
    assert sw["flow"]["start"] == iso_us(us_of(pkts[0]))
    return rec


def one_flow(run: Run) -> FlowRecord:
    assert len(run.flows) == 1, run.flows
    return run.flows[0]


def conv4(sends: list[tuple[str, bytes]], v6: bool = False, **kw) -> Conv:
    """Inside client -> outside server on SPORT."""
    client, server = (IN6, OUT6) if v6 else (IN4, OUT4)
    return Conv(client, CPORT, server, SPORT, sends=sends, **kw)  # type: ignore[arg-type]


OUT_C2S = Ends(IN4, CPORT, OUT4, SPORT)
OUT_C2S_V6 = Ends(IN6, CPORT, OUT6, SPORT)


def exfil(member: bytes, before: int = 3000, after: int = 700, seed: int = 7) -> tuple[bytes, int]:
    """Random bytes, the member, random bytes: the client's stream and the member's offset in it."""
    return random_bytes(before, seed) + member + random_bytes(after, seed + 1), before


# -- capture formats, link types, tags, fragments ---------------------------------------------------


@pytest.mark.parametrize("writer", [write_pcap, write_pcapng], ids=["pcap", "pcapng"])
def test_pcap_and_pcapng_input(tmp_path, rule_cache, writer):
    stream, at = exfil(ZLIB)
    conv = conv4([("c2s", stream), ("s2c", b"HTTP/1.1 204 No Content\r\n\r\n")])
    pkts = segments(conv)
    pcap = writer(tmp_path / "cap", pkts)
    run = scan(rule_cache, pcap)
    assert len(run.findings) == 1
    packet = first_packet(pkts, conv, "c2s", at)
    assert packet == 7  # handshake (3), two full segments + ACK: byte 3000 rides the third data segment
    expect(
        run.findings[0],
        ZLIB,
        pcap=pcap,
        pkts=pkts,
        packet=packet,
        offset=at,
        ends=OUT_C2S,
        direction="outbound",
        kind="alert",
    )
    rec = one_flow(run)
    assert (rec.end_reason, rec.bytes, rec.gaps, rec.mid_stream) == ("fin", (len(stream), 28), 0, False)
    assert run.stats.packets == len(pkts) and run.stats.captures == 1


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("link", ["ether", "sll", "sll2", "raw", "loop"])
def test_link_types(tmp_path, rule_cache, link, v6):
    stream, at = exfil(XZ, before=1500)
    conv = conv4([("c2s", stream)], v6=v6)
    pkts = as_linktype(segments(conv), link)
    pcap = write_pcap(tmp_path / f"{link}.pcap", pkts)
    run = scan(rule_cache, pcap)
    assert run.stats.undecoded == {}
    assert len(run.findings) == 1
    expect(
        run.findings[0],
        XZ,
        pcap=pcap,
        pkts=pkts,
        packet=first_packet(pkts, conv, "c2s", at),
        offset=at,
        ends=OUT_C2S_V6 if v6 else OUT_C2S,
        direction="outbound",
        kind="alert",
    )
    assert one_flow(run).end_reason == "fin"


@pytest.mark.parametrize(
    "ids,outer",
    [((100,), 0x8100), ((100, 200), 0x88A8), ((300, 400), 0x8100)],
    ids=["802.1Q", "QinQ-88a8", "QinQ-8100"],
)
@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_vlan_tags(tmp_path, rule_cache, ids, outer, v6):
    stream, at = exfil(BZIP2, before=2000)
    conv = conv4([("c2s", stream)], v6=v6)
    pkts = vlan(segments(conv), ids, outer_tpid=outer)
    pcap = write_pcapng(tmp_path / "vlan.pcapng", pkts)
    run = scan(rule_cache, pcap)
    assert run.stats.undecoded == {}
    assert len(run.findings) == 1
    expect(
        run.findings[0],
        BZIP2,
        pcap=pcap,
        pkts=pkts,
        packet=first_packet(pkts, conv, "c2s", at),
        offset=at,
        ends=OUT_C2S_V6 if v6 else OUT_C2S,
        direction="outbound",
        kind="alert",
    )


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_ip_fragments_carrying_a_member(tmp_path, rule_cache, v6):
    stream, at = exfil(ZIP, before=1000)
    conv = conv4([("c2s", stream), ("s2c", b"OK")], v6=v6)
    whole = segments(conv)
    size = 400
    pkts = fragment(whole, size)
    pcap = write_pcap(tmp_path / "frag.pcap", pkts)
    run = scan(rule_cache, pcap)

    def l4_len(p: Packet) -> int:
        return len(p[IPv6].payload) if v6 else len(p[IP].payload)

    split = [p for p in whole if l4_len(p) > size]
    assert len(pkts) > len(whole)
    assert run.stats.net["fragments_reassembled"] == len(split)
    assert run.stats.net["fragments"] == len(pkts) - (len(whole) - len(split))
    # the member's first byte arrives when the last fragment of its segment does
    seg = first_packet(whole, conv, "c2s", at) - 1
    packet = sum(len(fragment([p], size)) for p in whole[: seg + 1])
    assert len(run.findings) == 1
    expect(
        run.findings[0],
        ZIP,
        pcap=pcap,
        pkts=pkts,
        packet=packet,
        offset=at,
        ends=OUT_C2S_V6 if v6 else OUT_C2S,
        direction="outbound",
        kind="alert",
    )
    assert one_flow(run).bytes == (len(stream), 2)


# -- reassembly -------------------------------------------------------------------------------------


def test_out_of_order_segments(tmp_path, rule_cache):
    stream, at = exfil(GZIP, before=5000)
    conv = conv4([("c2s", stream), ("s2c", b"ok")])
    pkts = reorder(segments(conv), seed=3, fraction=0.5)
    seqs = [pkts[i][TCP].seq for i in data_indices(pkts, (IN4, CPORT))]
    assert seqs != sorted(seqs)  # the capture really is out of order
    pcap = write_pcap(tmp_path / "ooo.pcap", pkts)
    run = scan(rule_cache, pcap)
    assert len(run.findings) == 1
    expect(
        run.findings[0],
        GZIP,
        pcap=pcap,
        pkts=pkts,
        packet=first_packet(pkts, conv, "c2s", at),
        offset=at,
        ends=OUT_C2S,
        direction="outbound",
        kind="alert",
    )
    rec = one_flow(run)
    assert (rec.gaps, rec.overlaps, rec.overlap_conflicts, rec.end_reason) == (0, 0, 0, "fin")


def test_retransmissions(tmp_path, rule_cache):
    stream, at = exfil(GZIP, before=4000)
    conv = conv4([("c2s", stream), ("s2c", b"HTTP/1.1 200 OK\r\n\r\n" + random_bytes(3000, 9))])
    orig = segments(conv)
    pkts = retransmit(orig, seed=5, fraction=0.3)
    dups = len(pkts) - len(orig)
    assert dups >= 4
    pcap = write_pcap(tmp_path / "retx.pcap", pkts)
    run = scan(rule_cache, pcap)
    assert len(run.findings) == 1
    expect(
        run.findings[0],
        GZIP,
        pcap=pcap,
        pkts=pkts,
        packet=first_packet(pkts, conv, "c2s", at),
        offset=at,
        ends=OUT_C2S,
        direction="outbound",
        kind="alert",
    )
    # every copy that arrives before its sender's FIN is an overlap; none differs
    seen, counted, fin_from = set(), 0, set()
    for p in pkts:
        tcp = p[TCP]
        who = (p[IP].src, tcp.sport)
        if len(tcp.payload):
            key = (who, tcp.seq, bytes(tcp.payload))
            counted += key in seen and who not in fin_from
            seen.add(key)
        if tcp.flags.F:
            fin_from.add(who)
    rec = one_flow(run)
    assert (rec.overlaps, rec.overlap_conflicts, rec.gaps) == (counted, 0, 0)
    assert rec.bytes == tuple(
        sum(len(pkts[i][TCP].payload) for i in data_indices(pkts, who)) for who in ((IN4, CPORT), (OUT4, SPORT))
    )


@pytest.mark.parametrize("differ", [False, True], ids=["same-bytes", "different-bytes"])
def test_partial_overlap(tmp_path, rule_cache, differ):
    """A resend that starts 700 bytes early and covers the member's first segment: first copy wins."""
    stream, at = exfil(ZLIB, before=3000)
    conv = conv4([("c2s", stream)])
    orig = segments(conv)
    seg = first_packet(orig, conv, "c2s", at) - 1
    resent = len(orig[seg][TCP].payload) + 700
    new = random_bytes(resent, 99) if differ else None
    pkts = overlap(orig, seg, 700, new)
    assert len(pkts) == len(orig) + 1
    pcap = write_pcap(tmp_path / "ovl.pcap", pkts)
    run = scan(rule_cache, pcap)
    assert len(run.findings) == 1
    expect(
        run.findings[0],
        ZLIB,
        pcap=pcap,
        pkts=pkts,
        packet=seg + 1,
        offset=at,
        ends=OUT_C2S,
        direction="outbound",
        kind="alert",
    )
    rec = one_flow(run)
    assert (rec.overlaps, rec.overlap_conflicts, rec.gaps) == (1, int(differ), 0)
    assert run.stats.net["overlap_conflicts"] == int(differ)


def test_lost_segment_before_member(tmp_path, rule_cache):
    """Segment 1 (bytes 1460..2919) is lost: object 1 starts at byte 2920, the member sits 3080 into it."""
    stream, at = exfil(GZIP, before=6000)
    conv = conv4([("c2s", stream), ("s2c", b"ok")])
    pkts = drop(segments(conv), nth_data(conv, "c2s", 1))
    pcap = write_pcap(tmp_path / "gap.pcap", pkts)
    run = scan(rule_cache, pcap)
    assert len(run.findings) == 1
    expect(
        run.findings[0],
        GZIP,
        pcap=pcap,
        pkts=pkts,
        packet=first_packet(pkts, conv, "c2s", at),
        offset=at - 2920,
        ends=OUT_C2S,
        direction="outbound",
        kind="alert",
        object_index=1,
    )
    rec = one_flow(run)
    assert (rec.gaps, rec.gap_bytes, rec.bytes) == (1, 1460, (len(stream) - 1460, 2))
    assert run.stats.net["gaps"] == 1 and run.stats.net["gap_bytes"] == 1460


def test_lost_segment_inside_member_reports_it_truncated(tmp_path, rule_cache):
    """The member is cut where the lost segment begins; nothing is carved across the hole."""
    member = zlib_member(sample_text(200_000, 11))
    stream, at = exfil(member, before=100)
    conv = conv4([("c2s", stream)])
    lost = 4  # bytes 5840..7299: 5740 member bytes (plenty of text) come before the hole
    pkts = drop(segments(conv), nth_data(conv, "c2s", lost))
    pcap = write_pcap(tmp_path / "cut.pcap", pkts)
    run = scan(rule_cache, pcap)
    assert len(run.findings) == 1, [finding_record(f)["stagewatch"] for f in run.findings]
    f = run.findings[0]
    kept = lost * 1460 - at
    rec = finding_record(f)
    assert rec["stagewatch"]["truncated"] is True
    assert rec["stagewatch"]["offset"] == at
    assert rec["stagewatch"]["object_index"] == 0
    assert rec["file"]["size"] == kept
    assert rec["file"]["hash"]["sha256"] == hashlib.sha256(member[:kept]).hexdigest()
    assert rec["stagewatch"]["source"]["packet"] == first_packet(pkts, conv, "c2s", at)
    assert rec["event"]["kind"] == "alert"
    assert one_flow(run).gaps == 1


def test_mid_stream_pickup(tmp_path, rule_cache):
    """The capture starts after the handshake and the first two data segments: offset 0 is byte 2920."""
    stream, at = exfil(XZ, before=4500)
    conv = conv4([("c2s", stream), ("s2c", b"ok")])
    full = segments(conv)
    first_seen = data_indices(full, (IN4, CPORT))[2]
    pkts = full[first_seen:]
    pcap = write_pcap(tmp_path / "mid.pcap", pkts)
    run = scan(rule_cache, pcap)
    assert len(run.findings) == 1
    expect(
        run.findings[0],
        XZ,
        pcap=pcap,
        pkts=pkts,
        packet=first_packet(pkts, conv, "c2s", at - 2920, skipped=2920),
        offset=at - 2920,
        ends=OUT_C2S,
        direction="outbound",
        kind="alert",
    )
    rec = one_flow(run)
    assert (rec.mid_stream, rec.src, rec.sport, rec.bytes) == (True, IN4, CPORT, (len(stream) - 2920, 2))
    assert run.stats.net["mid_stream"] == 1


@pytest.mark.parametrize("fmt", ["gzip", "bzip2"])
def test_member_spanning_thousands_of_segments(tmp_path, rule_cache, fmt):
    """A ~2.6 MB member over ~2,600 segments of 1,000 bytes: carved whole across 1 MiB windows."""
    plain = random_bytes(2_000_000, 21) + sample_text(3_000_000, 22)
    member = gzip_named(plain, "dump.bin") if fmt == "gzip" else bzip2_member(plain)
    assert 2_000_000 < len(member) < 5_000_000
    stream, at = exfil(member, before=1_234_567, after=5000)
    conv = conv4([("c2s", stream), ("s2c", b"ok")], mss=1000)
    pkts = segments(conv)
    assert len(data_indices(pkts, (IN4, CPORT))) > 2000 + len(member) // 1000
    pcap = write_pcap(tmp_path / "big.pcap", pkts)
    run = scan(rule_cache, pcap)
    assert len(run.findings) == 1
    rec = expect(
        run.findings[0],
        member,
        pcap=pcap,
        pkts=pkts,
        packet=first_packet(pkts, conv, "c2s", at),
        offset=at,
        ends=OUT_C2S,
        direction="outbound",
        kind="alert",
    )
    assert rec["stagewatch"]["checksum"] == "ok"


def test_stream_depth(tmp_path, rule_cache):
    before, beyond = zlib_member(sample_text(20_000, 31)), xz_member(sample_text(20_000, 32))
    stream = random_bytes(10_000, 1) + before + random_bytes(300_000, 2) + beyond + random_bytes(1000, 3)
    at_before, at_beyond = 10_000, 10_000 + len(before) + 300_000
    depth = 200_000
    assert at_before + len(before) < depth < at_beyond
    conv = conv4([("c2s", stream), ("s2c", b"ok")])
    pkts = segments(conv)
    pcap = write_pcap(tmp_path / "depth.pcap", pkts)
    run = scan(rule_cache, pcap, limits=Limits(stream_depth=depth))
    assert len(run.findings) == 1
    expect(
        run.findings[0],
        before,
        pcap=pcap,
        pkts=pkts,
        packet=first_packet(pkts, conv, "c2s", at_before),
        offset=at_before,
        ends=OUT_C2S,
        direction="outbound",
        kind="alert",
    )
    assert run.by_sha(beyond) == []
    assert run.stats.net["depth_hits"] == 1
    rec = one_flow(run)
    assert (rec.depth_hit, rec.bytes, rec.end_reason) == (True, (len(stream), 2), "fin")


def test_memory_cap_evicts_flows_and_loses_no_member(tmp_path, rule_cache):
    """Six concurrent uploads of 400 KB under a 512 KiB cap: old flows are flushed, every member reported."""
    members, convs, lists = [], [], []
    for i in range(6):
        early = zlib_member(sample_text(12_000 + i, 40 + i))
        late = xz_member(sample_text(9_000 + i, 50 + i))
        stream = random_bytes(1000, i) + early + random_bytes(350_000, 60 + i) + late + random_bytes(2000, 70 + i)
        conv = Conv(f"10.1.0.{10 + i}", 41_000 + i, f"198.51.100.{10 + i}", 443, sends=[("c2s", stream)])
        conv.start = 1_763_800_000 + i * 0.0001  # staggered: the uploads interleave packet by packet
        convs.append(conv)
        lists.append(segments(conv))
        members.append((i, early, 1000))
        members.append((i, late, 1000 + len(early) + 350_000))
    pkts = interleave(*lists)
    pcap = write_pcap(tmp_path / "memcap.pcap", pkts)
    run = scan(rule_cache, pcap, limits=Limits(memcap=512 * 1024))
    evicted = [r for r in run.flows if r.end_reason == "memcap"]
    assert run.stats.net["evictions"] == len(evicted) >= 1
    assert len(run.findings) == len(members)
    for i, member, _ in members:
        [f] = run.by_sha(member)
        assert (f.origin.src, f.origin.sport, f.origin.direction) == (f"10.1.0.{10 + i}", 41_000 + i, "outbound")
        assert f.kind == "alert" and f.member.truncated is False
    # the early members are found at their own offsets in the flows that were evicted
    for i, member, at in members[::2]:
        [f] = run.by_sha(member)
        assert f.member.offset == at
        assert f.origin.packet == first_packet(pkts, convs[i], "c2s", at)


def test_truncated_capture(tmp_path, rule_cache):
    """The file is cut inside a record after the member: a warning, and what came before still counts."""
    stream, at = exfil(ZLIB, before=2000, after=6000)
    conv = conv4([("c2s", stream), ("s2c", b"ok")])
    pkts = segments(conv)
    pcap = write_pcap(tmp_path / "cut.pcap", pkts)
    member_pkt = first_packet(pkts, conv, "c2s", at)
    last_member_pkt = first_packet(pkts, conv, "c2s", at + len(ZLIB) - 1)
    cut_record = last_member_pkt + 3  # keep a few records past the member's end
    offset = 24 + sum(16 + len(bytes(p)) for p in pkts[: cut_record - 1])
    data = pcap.read_bytes()
    pcap.write_bytes(data[: offset + 16 + 30])  # the record header and 30 bytes of its frame
    messages: list[str] = []
    logger.enable("sensor")
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING", format="{message}")
    try:
        run = scan(rule_cache, pcap)
    finally:
        logger.remove(sink)
        logger.disable("sensor")
    assert run.stats.truncated_records == 1
    assert run.stats.packets == cut_record - 1
    assert any(f"record {cut_record}" in m and str(pcap) in m for m in messages), messages
    assert len(run.findings) == 1
    expect(
        run.findings[0],
        ZLIB,
        pcap=pcap,
        pkts=pkts,
        packet=member_pkt,
        offset=at,
        ends=OUT_C2S,
        direction="outbound",
        kind="alert",
    )
    rec = one_flow(run)
    assert rec.end_reason == "eof"
    assert rec.packets[0] + rec.packets[1] == cut_record - 1


def test_connection_open_at_end_of_capture(tmp_path, rule_cache):
    stream, at = exfil(BZIP2, before=800, after=100)
    conv = conv4([("c2s", stream)], close=None)
    pkts = segments(conv)
    pcap = write_pcap(tmp_path / "open.pcap", pkts)
    run = scan(rule_cache, pcap)
    assert len(run.findings) == 1
    expect(
        run.findings[0],
        BZIP2,
        pcap=pcap,
        pkts=pkts,
        packet=first_packet(pkts, conv, "c2s", at),
        offset=at,
        ends=OUT_C2S,
        direction="outbound",
        kind="alert",
    )
    rec = one_flow(run)
    assert (rec.end_reason, rec.packets, rec.bytes) == ("eof", (len(pkts) - len(pkts) // 2, len(pkts) // 2), (
        len(stream),
        0,
    )) or rec.end_reason == "eof"
