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
import gzip
import hashlib
import ipaddress
import json
import struct
import uuid
import zlib
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
    flow_start: Packet | None = None,
    protocol: str | None = None,
) -> dict:
    """Assert one finding field by field (through its ECS record); returns the record.

    `pkts` is the capture file's packet list (`packet` numbers its records); `flow_start` the flow's first
    packet when that is not `pkts[0]`.
    """
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
    network = {
        "transport": transport,
        "direction": direction,
        "community_id": ref_community_id(ends.src, ends.sport, ends.dst, ends.dport, proto),
    }
    if protocol:
        network["protocol"] = protocol
    assert rec["network"] == network
    assert sw["source"] == {"path": str(pcap), "packet": packet}
    assert rec["@timestamp"] == iso_us(us_of(pkts[packet - 1]))
    assert sw["flow"]["client_to_server"] is client_to_server
    assert sw["flow"]["start"] == iso_us(us_of(pkts[0] if flow_start is None else flow_start))
    return rec


def sent_by(pkts: list[Packet], conv: Conv) -> tuple[int, int]:
    """Frames sent by the client and by the server."""
    c = sum(1 for p in pkts if p[TCP].sport == conv.client_port)
    return c, len(pkts) - c


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


def write_pcap_gz(path: Path, pkts: list[Packet]) -> Path:
    plain = write_pcap(path.with_suffix(".plain"), pkts)
    path.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
    plain.unlink()
    return path


@pytest.mark.parametrize("writer", [write_pcap, write_pcapng, write_pcap_gz], ids=["pcap", "pcapng", "pcap.gz"])
def test_pcap_and_pcapng_input(tmp_path, rule_cache, writer):
    stream, at = exfil(ZLIB)
    reply = b"HTTP/1.1 204 No Content\r\n\r\n"
    conv = conv4([("c2s", stream), ("s2c", reply)])
    pkts = segments(conv)
    pcap = writer(tmp_path / "capture", pkts)  # no extension: captures are known by their magic
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
    assert (rec.end_reason, rec.bytes, rec.gaps, rec.mid_stream) == ("fin", (len(stream), len(reply)), 0, False)
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
    assert any(p is whole[seg] for p in split) and len(split) >= 3
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
    assert (rec["stagewatch"]["proof"], rec["stagewatch"]["checksum"]) == ("object_end", "none")
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
    assert len(member) // conv.mss > 2000
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
    """Six concurrent uploads of ~370 KB under a 512 KiB cap: old flows are flushed, every member reported."""
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
    # every byte of every upload went through some flow (the evicted one or the one picking it up after)
    for conv in convs:
        mine = [r for r in run.flows if (r.src, r.sport) == (conv.client, conv.client_port)]
        assert sum(r.bytes[0] for r in mine) == len(payload_stream(conv, "c2s"))
        assert [r.end_reason for r in mine][-1] == "fin" and all(r.mid_stream for r in mine[1:])
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
    assert (rec.end_reason, rec.packets, rec.bytes) == ("eof", sent_by(pkts, conv), (len(stream), 0))


def test_flow_continuing_into_the_next_capture_file(tmp_path, rule_cache):
    """A capture rotated in the middle of the member: one flow across both files, the member found whole."""
    stream, at = exfil(GZIP, before=3000)
    conv = conv4([("c2s", stream), ("s2c", b"ok")])
    pkts = segments(conv)
    cut = first_packet(pkts, conv, "c2s", at + 2000) - 1
    assert first_packet(pkts, conv, "c2s", at) <= cut  # the member starts in the first file
    first = write_pcap(tmp_path / "rot-000.pcap", pkts[:cut])
    second = write_pcap(tmp_path / "rot-001.pcap", pkts[cut:])
    run = scan(rule_cache, first, second)
    assert len(run.findings) == 1
    expect(
        run.findings[0],
        GZIP,
        pcap=first,
        pkts=pkts,
        packet=first_packet(pkts, conv, "c2s", at),
        offset=at,
        ends=OUT_C2S,
        direction="outbound",
        kind="alert",
    )
    rec = one_flow(run)
    assert (rec.end_reason, rec.bytes, rec.mid_stream, rec.source) == ("fin", (len(stream), 2), False, str(first))
    assert run.stats.captures == 2 and run.stats.packets == len(pkts)


def test_member_starting_in_the_next_capture_file_names_that_file(tmp_path, rule_cache):
    stream, at = exfil(GZIP, before=3000)
    conv = conv4([("c2s", stream), ("s2c", b"ok")])
    pkts = segments(conv)
    cut = first_packet(pkts, conv, "c2s", at) - 2  # the member's first byte is in record 2 of the second file
    first = write_pcap(tmp_path / "rot-000.pcap", pkts[:cut])
    second = write_pcap(tmp_path / "rot-001.pcap", pkts[cut:])
    run = scan(rule_cache, first, second)
    assert len(run.findings) == 1
    expect(
        run.findings[0],
        GZIP,
        pcap=second,
        pkts=pkts[cut:],
        packet=2,
        offset=at,
        ends=OUT_C2S,
        direction="outbound",
        kind="alert",
        flow_start=pkts[0],
    )


def test_connection_closed_with_fin_after_a_lost_segment_ends_with_fin(tmp_path, rule_cache):
    """Both FINs and the last ACK are seen: the missing bytes can never come, so the flow ends with `fin`."""
    stream, at = exfil(GZIP, before=6000)
    conv = conv4([("c2s", stream), ("s2c", b"ok")])
    pkts = drop(segments(conv), nth_data(conv, "c2s", 1))
    pcap = write_pcap(tmp_path / "gapfin.pcap", pkts)
    run = scan(rule_cache, pcap)
    rec = one_flow(run)
    assert (rec.gaps, rec.gap_bytes) == (1, 1460)
    assert rec.end_reason == "fin"


# -- direction and judgement ------------------------------------------------------------------------


def test_outbound_member_is_an_alert(tmp_path, rule_cache):
    stream, at = exfil(ZIP, before=250)
    conv = conv4([("c2s", stream), ("s2c", b"ok")])
    pkts = segments(conv)
    pcap = write_pcap(tmp_path / "out.pcap", pkts)
    run = scan(rule_cache, pcap)
    assert len(run.findings) == 1
    rec = expect(
        run.findings[0],
        ZIP,
        pcap=pcap,
        pkts=pkts,
        packet=first_packet(pkts, conv, "c2s", at),
        offset=at,
        ends=OUT_C2S,
        direction="outbound",
        kind="alert",
    )
    assert rec["stagewatch"]["reasons"] == ["outbound"]
    assert run.stats.alerts == 1 and one_flow(run).direction == "outbound"


def test_gzip_web_page_coming_in_is_an_inbound_event(tmp_path, rule_cache):
    page = gzip_named(b"<html><body>" + sample_text(30_000, 80) + b"</body></html>", "index.html")
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
        + f"Content-Length: {len(page)}\r\n\r\n".encode()
    )
    get = b"GET /news/index.html HTTP/1.1\r\nHost: news.example\r\nAccept-Encoding: gzip\r\n\r\n"
    conv = Conv(IN4, 51_840, OUT4, 80, sends=[("c2s", get), ("s2c", head + page)])
    pkts = segments(conv)
    pcap = write_pcap(tmp_path / "web.pcap", pkts)
    run = scan(rule_cache, pcap)
    assert len(run.findings) == 1
    rec = expect(
        run.findings[0],
        page,
        pcap=pcap,
        pkts=pkts,
        packet=first_packet(pkts, conv, "s2c", len(head)),
        offset=0,  # in its container, the HTTP response body
        ends=Ends(OUT4, 80, IN4, 51_840),
        direction="inbound",
        kind="event",
        client_to_server=False,
        protocol="http",
    )
    assert rec["stagewatch"]["reasons"] == ["inbound"]
    assert rec["http"] == {"request": {"method": "GET"}, "response": {"status_code": 200}}
    assert rec["url"] == {"original": "/news/index.html", "domain": "news.example"}
    assert rec["file"]["name"] == "index.html"
    assert run.stats.alerts == 0
    flow = one_flow(run)
    assert (flow.src, flow.sport, flow.dst, flow.dport, flow.direction) == (IN4, 51_840, OUT4, 80, "outbound")


def test_internal_transfer_is_an_event(tmp_path, rule_cache):
    stream, at = exfil(ZLIB, before=1200)
    conv = Conv(IN4, 49_700, IN4B, 445, sends=[("c2s", stream), ("s2c", b"ok")])
    pkts = segments(conv)
    pcap = write_pcap(tmp_path / "lan.pcap", pkts)
    run = scan(rule_cache, pcap)
    assert len(run.findings) == 1
    rec = expect(
        run.findings[0],
        ZLIB,
        pcap=pcap,
        pkts=pkts,
        packet=first_packet(pkts, conv, "c2s", at),
        offset=at,
        ends=Ends(IN4, 49_700, IN4B, 445),
        direction="internal",
        kind="event",
    )
    assert rec["stagewatch"]["reasons"] == ["internal"]
    assert run.stats.alerts == 0


def test_community_id_matches_the_published_example(tmp_path, rule_cache):
    """community-id-spec: tcp 128.232.110.120:34855 -> 66.35.250.204:80 is 1:LQU9qZlK+B5F3KDmev6m5PMibrg=."""
    assert ref_community_id("128.232.110.120", 34855, "66.35.250.204", 80) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    stream, at = exfil(ZLIB, before=10)
    conv = Conv("128.232.110.120", 34855, "66.35.250.204", 80, sends=[("c2s", stream)])
    pkts = segments(conv)
    pcap = write_pcap(tmp_path / "cid.pcap", pkts)
    run = scan(rule_cache, pcap)
    assert len(run.findings) == 1
    expect(
        run.findings[0],
        ZLIB,
        pcap=pcap,
        pkts=pkts,
        packet=first_packet(pkts, conv, "c2s", at),
        offset=at,
        ends=Ends("128.232.110.120", 34855, "66.35.250.204", 80),
        direction="external",
        kind="event",
    )
    assert one_flow(run).community_id == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="


# -- no false positives -----------------------------------------------------------------------------


def _crc(b: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(b))


def planted(fmt: str, rnd: bytes) -> bytes:
    """A bare header of `fmt` (magic and plausible fields, header CRCs right where the format has one)."""
    if fmt == "gzip":
        return bytes.fromhex("1f8b0800000000000003")
    if fmt == "zlib":
        return bytes([0x78, (0x01, 0x5E, 0x9C, 0xDA)[rnd[0] % 4]])
    if fmt == "bzip2":
        return b"BZh9" + bytes.fromhex("314159265359")
    if fmt == "xz":
        return b"\xfd7zXZ\x00\x00\x04" + _crc(b"\x00\x04")
    if fmt == "zip":
        name = b"data.csv"
        return (
            struct.pack("<4sHHHHH", b"PK\x03\x04", 20, 0, 8, 0x5A21, 0x5821)
            + rnd[:12]
            + struct.pack("<HH", len(name), 0)
            + name
        )
    if fmt == "7z":
        tail = rnd[:20]
        return b"7z\xbc\xaf\x27\x1c\x00\x04" + _crc(tail) + tail
    if fmt == "rar":
        return b"Rar!\x1a\x07\x00" if rnd[0] & 1 else b"Rar!\x1a\x07\x01\x00"
    if fmt == "cab":
        return b"MSCF\x00\x00\x00\x00" + rnd[:4] + b"\x00" * 4 + struct.pack("<I", 0x2C) + b"\x00" * 4 + b"\x03\x01"
    raise ValueError(fmt)


PLANTED = ("gzip", "zlib", "bzip2", "xz", "zip", "7z", "rar", "cab")


def test_random_payloads_with_planted_magic_numbers_give_nothing(tmp_path, rule_cache):
    """Four outbound uploads of random bytes (3.2 MB) with a bare header every ~3 KiB: no finding at all."""
    counts = dict.fromkeys(PLANTED, 0)
    lists = []
    for flow in range(4):
        rng = random_bytes(800_000, 500 + flow)
        out, pos, k = bytearray(), 0, 0
        while pos < len(rng):
            step = 2000 + rng[pos] * 8
            out += rng[pos : pos + step]
            fmt = PLANTED[(k + flow) % len(PLANTED)]
            out += planted(fmt, rng[pos : pos + 32])
            counts[fmt] += 1
            pos += step
            k += 1
        out += random_bytes(3000, 600 + flow)  # every header is followed by random bytes, the last one too
        conv = Conv(f"10.1.3.{flow + 1}", 50_000 + flow, f"203.0.113.{flow + 1}", 443, sends=[("c2s", bytes(out))])
        conv.start = 1_763_800_000 + flow * 0.0002
        lists.append(segments(conv))
    pcap = write_pcap(tmp_path / "random.pcap", interleave(*lists))
    run = scan(rule_cache, pcap)
    assert run.findings == []
    assert run.stats.findings == 0 and run.stats.alerts == 0
    assert len(run.flows) == 4
    for fmt, n in counts.items():
        assert run.stats.rejected[fmt] >= n, (fmt, n, dict(run.stats.rejected))
    assert sum(counts.values()) > 1000


# -- UDP --------------------------------------------------------------------------------------------


def test_udp_datagram_with_a_zlib_member(tmp_path, rule_cache):
    prefix = b"\x00\x01\x02\x03 beacon v2\n"
    dgrams = [b"hello", prefix + ZLIB, ("s2c", b"ack")]
    pkts = udp_datagrams(IN4, OUT4, 53_001, 9_999, dgrams)
    pcap = write_pcap(tmp_path / "udp.pcap", pkts)
    run = scan(rule_cache, pcap)
    assert len(run.findings) == 1
    rec = expect(
        run.findings[0],
        ZLIB,
        pcap=pcap,
        pkts=pkts,
        packet=2,
        offset=len(prefix),
        ends=Ends(IN4, 53_001, OUT4, 9_999),
        direction="outbound",
        kind="alert",
        transport="udp",
        object_index=1,  # datagrams are numbered from 0 in their flow, like TCP objects
    )
    assert rec["stagewatch"]["container"]["size"] == len(prefix + ZLIB)
    flow = one_flow(run)
    assert (flow.transport, flow.packets, flow.bytes, flow.end_reason) == (
        "udp",
        (2, 1),
        (5 + len(prefix + ZLIB), 3),
        "eof",
    )
    assert flow.community_id == ref_community_id(IN4, 53_001, OUT4, 9_999, 17)


# -- CLI: workers, flows, determinism ---------------------------------------------------------------


def client_hello(sni: str) -> bytes:
    """A minimal TLS 1.3 ClientHello record (legacy version TLS 1.2) with a server_name extension.

    OpenSSL's server side parses it up to certificate selection (its SNI callback sees `sni`).
    """

    def ext(kind: int, body: bytes) -> bytes:
        return struct.pack("!HH", kind, len(body)) + body

    name = sni.encode()
    extensions = b"".join(
        [
            ext(0x0000, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name),  # server_name: host_name
            ext(0x000A, struct.pack("!HHH", 4, 0x001D, 0x0017)),  # supported_groups: x25519, secp256r1
            ext(0x000D, struct.pack("!HHHH", 6, 0x0403, 0x0804, 0x0401)),  # signature_algorithms
            ext(0x002B, bytes([4]) + struct.pack("!HH", 0x0304, 0x0303)),  # supported_versions: 1.3, 1.2
            ext(0x0033, struct.pack("!HHH", 36, 0x001D, 32) + bytes(range(32))),  # key_share: x25519
        ]
    )
    hello = (
        struct.pack("!H", 0x0303)  # legacy_version
        + bytes(range(32, 64))  # random
        + bytes([32])
        + bytes(range(64, 96))  # legacy_session_id
        + struct.pack("!HHHH", 6, 0x1301, 0x1302, 0xC02F)  # cipher_suites
        + b"\x01\x00"  # compression_methods: null
        + struct.pack("!H", len(extensions))
        + extensions
    )
    handshake = b"\x01" + len(hello).to_bytes(3, "big") + hello
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def cli_config(tmp_path: Path, cache: Path) -> Path:
    cfg = tmp_path / "stagewatch.toml"
    cfg.write_text(f'cache_dir = "{cache}"\nobserver = "test"\n')
    return cfg


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_flows_output(tmp_path, rule_cache):
    """--flows: one line per flow, with its end (fin, rst, eof), counts per direction, gaps and TLS SNI."""
    t0 = 1_763_800_000
    tls = Conv(IN4, 50_443, OUT4, 443, start=t0, sends=[
        ("c2s", client_hello("files.example.net")),
        ("s2c", random_bytes(2500, 1)),
        ("c2s", random_bytes(300, 2)),
    ])  # fmt: skip
    reset = Conv(IN4, 50_444, "203.0.113.50", 8080, start=t0 + 1, close="rst", sends=[("c2s", random_bytes(500, 3))])
    still_open = Conv(IN6, 50_445, OUT6, 22, start=t0 + 2, close=None, sends=[("c2s", random_bytes(900, 4))])
    holed = Conv(IN4, 50_446, IN4B, 445, start=t0 + 3, close="rst", sends=[("c2s", random_bytes(5000, 5))])
    flows = {
        "tls": segments(tls),
        "reset": segments(reset),
        "open": segments(still_open),
        "holed": drop(segments(holed), nth_data(holed, "c2s", 2)),
        "udp": udp_datagrams(IN4, "192.0.2.53", 53_530, 53, [b"q" * 40, ("s2c", b"a" * 120)], start=t0 + 4),
    }
    pcap = write_pcap(tmp_path / "flows.pcap", interleave(*flows.values()))
    out, jsonl = tmp_path / "flows.jsonl", tmp_path / "findings.jsonl"
    args = ["-q", "scan", str(pcap), "--flows", str(out), "--jsonl", str(jsonl), "--no-db", "--observer-ip", "10.0.0.2"]
    rc = cli_main([*args, "--home-net", ",".join(HOME), "--config", str(cli_config(tmp_path, rule_cache))])
    assert rc == 0
    assert jsonl.read_text() == ""
    records = {(r["source"]["port"], r["network"]["transport"]): r for r in read_jsonl(out)}
    assert len(records) == 5
    for r in records.values():  # checked apart, in test_flow_duration_is_exact
        del r["event"]["duration"]
        assert uuid.UUID(r["event"].pop("id")).version == 5  # the store's flow id: `objects --flow` takes it
        assert r.pop("observer")["ip"] == ["10.0.0.2"]

    def expected(conv_pkts, c, cp, s, sp, proto, direction, end, counted=None, gaps=(0, 0), sni=None) -> dict:
        pk = conv_pkts if counted is None else conv_pkts[:counted]
        up = [p for p in pk if _sport(p) == cp]
        down = [p for p in pk if _sport(p) != cp]
        start, stop = us_of(pk[0]), us_of(pk[-1])
        rec = {
            "@timestamp": iso_us(start),
            "event": {
                "kind": "event",
                "category": ["network"],
                "type": ["connection", "end"],
                "module": "stagewatch",
                "dataset": "stagewatch.flow",
                "start": iso_us(start),
                "end": iso_us(stop),
            },
            "source": {"ip": c, "port": cp, "packets": len(up), "bytes": sum(_payload_len(p) for p in up)},
            "destination": {"ip": s, "port": sp, "packets": len(down), "bytes": sum(_payload_len(p) for p in down)},
            "network": {
                "transport": "tcp" if proto == 6 else "udp",
                "direction": direction,
                "community_id": ref_community_id(c, cp, s, sp, proto),
                "packets": len(pk),
                "bytes": sum(_payload_len(p) for p in pk),
            },
            "stagewatch": {
                "flow": {
                    "end_reason": end,
                    "gaps": gaps[0],
                    "gap_bytes": gaps[1],
                    "overlaps": 0,
                    "overlap_conflicts": 0,
                    "mid_stream": False,
                    "depth_hit": False,
                },
                "source": {"path": str(pcap)},
            },
        }
        if sni:
            rec["tls"] = {"client": {"server_name": sni}}
        return rec

    # after both FINs the connection is closed: its last ACK belongs to no flow (TIME_WAIT)
    assert records[(50_443, "tcp")] == expected(
        flows["tls"], IN4, 50_443, OUT4, 443, 6, "outbound", "fin", counted=-1, sni="files.example.net"
    )
    assert records[(50_444, "tcp")] == expected(flows["reset"], IN4, 50_444, "203.0.113.50", 8080, 6, "outbound", "rst")
    assert records[(50_445, "tcp")] == expected(flows["open"], IN6, 50_445, OUT6, 22, 6, "outbound", "eof")
    assert records[(50_446, "tcp")] == expected(
        flows["holed"], IN4, 50_446, IN4B, 445, 6, "internal", "rst", gaps=(1, 1460)
    )
    assert records[(53_530, "udp")] == expected(flows["udp"], IN4, 53_530, "192.0.2.53", 53, 17, "outbound", "eof")


def test_flow_duration_is_exact(tmp_path, rule_cache):
    conv = conv4([("c2s", random_bytes(3000, 1)), ("s2c", b"ok")], gap_us=500)
    pkts = segments(conv)
    pcap = write_pcap(tmp_path / "dur.pcap", pkts)
    record = flow_record(one_flow(scan(rule_cache, pcap)))
    # the flow ends with the server's FIN (the last ACK comes after the close)
    assert record["event"]["duration"] == (us_of(pkts[-2]) - us_of(pkts[0])) * 1000 == 5_500_000


def _sport(p: Packet) -> int:
    return p.payload.payload.sport


def _payload_len(p: Packet) -> int:
    return len(p.payload.payload.payload)


def many_flows() -> tuple[list[Packet], list[bytes]]:
    """20 connections between 20 different IP pairs, interleaved; 7 carry members, some both ways."""
    lists, members = [], []
    for i in range(20):
        sends: list[tuple[str, bytes]] = [("c2s", random_bytes(700 + 37 * i, 700 + i))]
        if i % 3 == 0:
            member = (ZLIB, GZIP, XZ, BZIP2, ZIP)[i % 5] if i % 2 else zlib_member(sample_text(9000 + i, 900 + i))
            sends.append(("c2s", member))
            members.append(member)
            if i % 6 == 0:
                reply = xz_member(sample_text(7000 + i, 950 + i))
                sends.append(("s2c", random_bytes(50, i) + reply))
                members.append(reply)
        sends.append(("s2c", b"done"))
        conv = Conv(f"10.1.{i}.5", 42_000 + i, f"198.51.100.{100 + i}", 443, sends=sends)  # type: ignore[arg-type]
        conv.start = 1_763_800_000 + i * 0.00013
        lists.append(segments(conv))
    return interleave(*lists), members


def test_workers_2_give_the_same_findings_as_workers_1(tmp_path, rule_cache):
    pkts, members = many_flows()
    pcap = write_pcap(tmp_path / "many.pcap", pkts)
    cfg = cli_config(tmp_path, rule_cache)
    ids, lines_of, stored = {}, {}, {}
    for workers in (1, 2):
        out, db = tmp_path / f"w{workers}.jsonl", tmp_path / f"w{workers}.db"
        args = ["-q", "scan", str(pcap), "--jsonl", str(out), "--db", str(db), "--workers", str(workers)]
        assert cli_main([*args, "--home-net", ",".join(HOME), "--config", str(cfg)]) == 0
        lines = read_jsonl(out)
        ids[workers] = {r["event"]["id"] for r in lines}
        for r in lines:
            del r["event"]["created"]  # the only field that depends on when the record was written
        lines_of[workers] = sorted(json.dumps(r, sort_keys=True) for r in lines)
        assert len(ids[workers]) == len(lines)
        assert sorted(r["file"]["hash"]["sha256"] for r in lines) == sorted(
            hashlib.sha256(m).hexdigest() for m in members
        )
        with FindingStore(str(db)) as store:
            stored[workers] = (store.count(), store.flow_count())
    assert len(members) == 11
    assert ids[1] == ids[2]
    assert lines_of[1] == lines_of[2]
    assert stored[1] == stored[2] == (len(members), 20)


def test_event_ids_are_deterministic(tmp_path, rule_cache):
    pkts, members = many_flows()
    pcap = write_pcap(tmp_path / "det.pcap", pkts)
    copy = tmp_path / "renamed-copy.pcap"
    copy.write_bytes(pcap.read_bytes())
    first, again, renamed = (scan(rule_cache, p) for p in (pcap, pcap, copy))
    ids = [f.event_id for f in first.findings]
    assert len(ids) == len(set(ids)) == len(members)
    assert [f.event_id for f in again.findings] == ids
    # DESIGN.md: the id hashes the flow (community ID, first-packet time, direction), not the file's name
    assert [f.event_id for f in renamed.findings] == ids
    assert all(uuid.UUID(i).version == 5 for i in ids)
