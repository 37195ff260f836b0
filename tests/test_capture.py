"""Capture files: pcap (both byte orders, µs and ns), pcapng (sections, interfaces, EPB/SPB/PB), gzip,
truncated and corrupt files. Captures are written by scapy or, where scapy cannot (big-endian, several
interfaces, time-stamp resolutions, SPB), built block by block with struct."""

from __future__ import annotations

import gzip
import io
import random
import struct
import zlib
from decimal import Decimal
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import CookedLinux, Ether
from scapy.packet import Raw
from scapy.utils import PcapNgWriter, PcapWriter, wrpcap

from sensor.capture import HEAD_BYTES, is_capture, pcapfile, read_packets
from sensor.errors import InputError
from sensor.model import Packet
from sensor.stats import RunStats

MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def frames(count: int = 5, size: int = 100) -> list[bytes]:
    """Distinct Ethernet/IPv4/TCP frames with `size` random payload bytes each."""
    rng = random.Random(count)
    return [
        bytes(
            Ether(**MAC)
            / IP(src="10.0.0.1", dst="192.0.2.9")
            / TCP(sport=40000 + i, dport=80)
            / Raw(rng.randbytes(size))
        )
        for i in range(count)
    ]


# -- hand-built captures ------------------------------------------------------------------------


def pcap(records: list[tuple[int, int, bytes, int]], order: str = "<", nano: bool = False, linktype: int = 1) -> bytes:
    """A classic pcap: records are (seconds, fraction, data, wire length)."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)]
    for sec, frac, data, wirelen in records:
        out.append(struct.pack(order + "IIII", sec, frac, len(data), wirelen) + data)
    return b"".join(out)


def block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack(order + "II", btype, 12 + len(body)) + body + struct.pack(order + "I", 12 + len(body))


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def shb(order: str) -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order: str, linktype: int, snaplen: int = 0, tsresol: int | None = None, tsoffset: int | None = None) -> bytes:
    opts = option(order, 2, b"eth0")  # if_name, to be skipped
    if tsresol is not None:
        opts += option(order, 9, bytes([tsresol]))
    if tsoffset is not None:
        opts += option(order, 14, struct.pack(order + "q", tsoffset))
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + opts + option(order, 0, b""))


def epb(order: str, iface: int, ts: int, data: bytes, wirelen: int | None = None) -> bytes:
    head = struct.pack(order + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), wirelen or len(data))
    body = head + data + b"\0" * (-len(data) % 4) + option(order, 1, b"a comment") + option(order, 0, b"")
    return block(order, 6, body)


def spb(order: str, data: bytes, wirelen: int | None = None) -> bytes:
    return block(order, 3, struct.pack(order + "I", wirelen or len(data)) + data)


def opb(order: str, iface: int, ts: int, data: bytes) -> bytes:
    """The obsolete Packet Block (type 2)."""
    head = struct.pack(order + "HHIIII", iface, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
    return block(order, 2, head + data)


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def read(path: str) -> tuple[list[Packet], RunStats]:
    stats = RunStats()
    return list(read_packets(path, stats)), stats


# -- recognising a capture ----------------------------------------------------------------------

PCAP_LE = pcap([(1, 2, b"x", 1)])


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (pcap([], "<"), True),
        (pcap([], ">"), True),
        (pcap([], "<", nano=True), True),
        (pcap([], ">", nano=True), True),
        (shb("<"), True),
        (shb(">"), True),
        (gzip.compress(PCAP_LE), True),
        (gzip.compress(shb(">")), True),
        (gzip.compress(b"just some text that was gzipped\n" * 10), False),
        (b"\x1f\x8b\x08\x00garbage", False),
        (b"\n\r\r\nplain text that starts with blank lines", False),  # no byte-order magic
        (b"\xd4\xc3\xb2\xa1\x07\x00\x04\x00", False),  # version 7 is no pcap
        (b"GIF89a", False),
        (b"", False),
    ],
)
def test_is_capture(head: bytes, expected: bool) -> None:
    assert is_capture(head[:HEAD_BYTES]) is expected


def test_is_capture_on_gzip_needs_more_than_64_bytes() -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(
        filename="capture-from-the-span-port-on-sensor-07-" + "x" * 40 + ".pcap", mode="wb", fileobj=buf
    ) as z:
        z.write(PCAP_LE)
    assert is_capture(buf.getvalue()[:HEAD_BYTES])
    assert not is_capture(buf.getvalue()[:64])  # the stored file name alone fills the first 64 bytes


# -- pcap -----------------------------------------------------------------------------------------


def test_pcap_written_by_scapy_in_microseconds(tmp_path: Path) -> None:
    pkts = [Ether(f) for f in frames(3)]
    for i, p in enumerate(pkts):
        p.time = Decimal("1700000000.25") + i
    path = str(tmp_path / "a.pcap")
    wrpcap(path, pkts)
    got, stats = read(path)
    assert got == [Packet(1700000000.25 + i, 1, bytes(p), i + 1, len(bytes(p)), path) for i, p in enumerate(pkts)]
    assert (stats.captures, stats.packets, stats.packet_bytes) == (1, 3, sum(len(bytes(p)) for p in pkts))


def test_pcap_written_by_scapy_in_nanoseconds(tmp_path: Path) -> None:
    p = Ether(frames(1)[0])
    p.time = Decimal("1000.123456789")
    path = str(tmp_path / "ns.pcap")
    with PcapWriter(path, nano=True) as w:
        w.write(p)
    (got,), _ = read(path)
    assert got.ts == pytest.approx(1000.123456789, abs=1e-12)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_by_hand_in_both_byte_orders(tmp_path: Path, order: str, nano: bool) -> None:
    fs = frames(3)
    frac = 123456789 if nano else 123456
    records = [(1700000000 + i, frac, f, len(f) + 10 * i) for i, f in enumerate(fs)]  # wire length kept
    path = write(tmp_path, "h.pcap", pcap(records, order, nano, linktype=113))
    got, _ = read(path)
    scale = 1e-9 if nano else 1e-6
    assert [(p.linktype, p.data, p.index, p.wirelen) for p in got] == [
        (113, f, i + 1, len(f) + 10 * i) for i, f in enumerate(fs)
    ]
    assert [p.ts for p in got] == [pytest.approx(1700000000 + i + frac * scale, abs=1e-6) for i in range(3)]


def test_pcap_link_type_drops_the_fcs_bits(tmp_path: Path) -> None:
    # LT_FCS_DATALINK_EXT(2) | LINKTYPE_ETHERNET: the FCS-present flag (0x04000000) and a length of 2 words
    path = write(tmp_path, "fcs.pcap", pcap([(1, 0, frames(1)[0], 114)], linktype=0x24000001))
    (got,), _ = read(path)
    assert got.linktype == 1


# -- pcapng ---------------------------------------------------------------------------------------


def test_pcapng_written_by_scapy(tmp_path: Path) -> None:
    pkts = [Ether(f) for f in frames(3)]
    for i, p in enumerate(pkts):
        p.time = 1700000000.5 + i
    path = str(tmp_path / "s.pcapng")
    with PcapNgWriter(path) as w:
        for p in pkts:
            w.write(p)
    got, stats = read(path)
    assert [(p.ts, p.linktype, p.data, p.index, p.source) for p in got] == [
        (1700000000.5 + i, 1, bytes(p), i + 1, path) for i, p in enumerate(pkts)
    ]
    assert stats.packets == 3


def test_pcapng_two_interfaces_with_their_own_link_type_and_resolution(tmp_path: Path) -> None:
    eth = frames(1)[0]
    sll = bytes(CookedLinux(proto=0x0800) / IP() / UDP() / Raw(b"dns?"))
    data = b"".join(
        [
            shb("<"),
            idb("<", 1),  # default resolution: microseconds
            block("<", 4, b"\0\0\0\0"),  # name resolution block: skipped
            idb("<", 113, tsresol=9, tsoffset=1_700_000_000),  # nanoseconds, plus an offset in seconds
            epb("<", 0, 1_700_000_000_250_000, eth),
            epb("<", 1, 1_500_000_000, sll, wirelen=len(sll) + 4),
            block("<", 0x00000BAD, b"custom block"),  # custom: skipped by length
            epb("<", 0, 1_700_000_001_000_000, eth),
            block("<", 5, b"\0" * 20),  # interface statistics: skipped
        ]
    )
    path = write(tmp_path, "two.pcapng", data)
    got, stats = read(path)
    assert [(p.ts, p.linktype, p.data, p.index, p.wirelen) for p in got] == [
        (1_700_000_000.25, 1, eth, 1, len(eth)),
        (1_700_000_001.5, 113, sll, 2, len(sll) + 4),
        (1_700_000_001.0, 1, eth, 3, len(eth)),
    ]
    assert (stats.packets, stats.packet_bytes) == (3, 2 * len(eth) + len(sll))


def test_pcapng_power_of_two_resolution(tmp_path: Path) -> None:
    path = write(tmp_path, "p2.pcapng", shb(">") + idb(">", 1, tsresol=0x80 | 10) + epb(">", 0, 3 * 1024 + 256, b"x"))
    (got,), _ = read(path)
    assert got.ts == 3.25


def test_pcapng_sections_each_with_their_byte_order_and_interfaces(tmp_path: Path) -> None:
    a, b = frames(2)
    data = shb("<") + idb("<", 1) + epb("<", 0, 1_000_000, a) + shb(">") + idb(">", 101) + epb(">", 0, 2_000_000, b)
    path = write(tmp_path, "sections.pcapng", data)
    got, _ = read(path)
    assert [(p.ts, p.linktype, p.data, p.index) for p in got] == [(1.0, 1, a, 1), (2.0, 101, b, 2)]


def test_pcapng_simple_packet_blocks_use_interface_0_its_snaplen_and_the_last_time(tmp_path: Path) -> None:
    a, b = frames(2, size=200)
    data = (
        shb("<") + idb("<", 1, snaplen=64) + epb("<", 0, 5_000_000, a[:64], wirelen=len(a)) + spb("<", b[:64], len(b))
    )
    path = write(tmp_path, "spb.pcapng", data)
    got, _ = read(path)
    assert got == [Packet(5.0, 1, a[:64], 1, len(a), path), Packet(5.0, 1, b[:64], 2, len(b), path)]


def test_pcapng_simple_packet_block_without_snaplen(tmp_path: Path) -> None:
    a = frames(1)[0]
    data = shb("<") + idb("<", 1) + spb("<", a) + spb("<", a)
    got, _ = read(write(tmp_path, "spb0.pcapng", data))
    assert [(p.ts, p.data, p.wirelen, p.index) for p in got] == [(0.0, a, len(a), 1), (0.0, a, len(a), 2)]


def test_pcapng_obsolete_packet_block(tmp_path: Path) -> None:
    a = frames(1)[0]
    data = shb(">") + idb(">", 1) + opb(">", 0, 7_500_000, a)
    (got,), _ = read(write(tmp_path, "pb.pcapng", data))
    assert (got.ts, got.linktype, got.data, got.index) == (7.5, 1, a, 1)


def test_pcapng_unknown_interface_stops_with_its_record_and_offset(tmp_path: Path) -> None:
    a = frames(1)[0]
    data = shb("<") + idb("<", 1) + epb("<", 0, 1, a) + epb("<", 3, 2, a)
    path = write(tmp_path, "if.pcapng", data)
    offset = len(shb("<") + idb("<", 1) + epb("<", 0, 1, a))
    seen: list[Packet] = []
    with pytest.raises(InputError, match=rf"if\.pcapng: record 2 at byte {offset}: unknown interface id 3") as e:
        seen.extend(read_packets(path, RunStats()))
    assert e.value.where == path and e.value.reason == "format"
    assert [p.index for p in seen] == [1]


def test_pcapng_simple_packet_block_without_interface(tmp_path: Path) -> None:
    path = write(tmp_path, "noif.pcapng", shb("<") + spb("<", b"abcd"))
    with pytest.raises(InputError, match="record 1 at byte 28: unknown interface id 0"):
        read(path)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (struct.pack("<II", 6, 13) + b"\0" * 20, "record 2 at byte {}: bad block length 13"),
        (struct.pack("<III", 6, 12, 12), "record 2 at byte {}: bad block length 12"),  # no room for its fields
        (struct.pack("<III", 3, 12, 12), "record 2 at byte {}: bad block length 12"),  # an SPB without its length
        (struct.pack("<II", 4, 8), "block at byte {}: bad block length 8"),
        (
            struct.pack("<II", 4, 16) + b"\0" * 4 + struct.pack("<I", 20),
            "block at byte {}: block length 16 does not match",
        ),
        (struct.pack("<II", 6, 0x7FFFFFF0) + b"\0" * 16, "block at byte {}: block length 2147483632 is not credible"),
    ],
)
def test_pcapng_bad_block_length_stops_with_its_offset(tmp_path: Path, bad: bytes, message: str) -> None:
    good = shb("<") + idb("<", 1) + epb("<", 0, 1, frames(1)[0])
    path = write(tmp_path, "bad.pcapng", good + bad)
    seen: list[Packet] = []
    with pytest.raises(InputError, match=message.format(len(good))):
        seen.extend(read_packets(path, RunStats()))
    assert len(seen) == 1


def test_pcapng_bad_byte_order_magic(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.pcapng", shb("<") + idb("<", 1) + shb("<")[:8] + b"\1\2\3\4" + shb("<")[12:])
    with pytest.raises(InputError, match="block at byte 60: bad section byte-order magic"):
        read(path)


# -- buffering, naming, gzip ------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_records_that_straddle_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    fs = frames(20, size=300)
    p1 = write(tmp_path, "c.pcap", pcap([(i, 0, f, len(f)) for i, f in enumerate(fs)]))
    p2 = write(tmp_path, "c.pcapng", shb("<") + idb("<", 1) + b"".join(epb("<", 0, i, f) for i, f in enumerate(fs)))
    monkeypatch.setattr(pcapfile, "CHUNK", chunk)
    for path in (p1, p2):
        got, stats = read(path)
        assert [p.data for p in got] == fs
        assert [p.index for p in got] == list(range(1, 21))
        assert (stats.packets, stats.packet_bytes, stats.truncated_records) == (20, sum(map(len, fs)), 0)


def test_opened_by_magic_not_by_name(tmp_path: Path) -> None:
    a = frames(1)[0]
    ng = write(tmp_path, "looks-like.pcap", shb("<") + idb("<", 1) + epb("<", 0, 1, a))
    classic = write(tmp_path, "notes.txt", pcap([(1, 0, a, len(a))]))
    assert [p.data for p in read(ng)[0]] == [a]
    assert [p.data for p in read(classic)[0]] == [a]


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_gzip_compressed_capture(tmp_path: Path, kind: str) -> None:
    fs = frames(50, size=500)
    if kind == "pcap":
        raw = pcap([(i, 0, f, len(f)) for i, f in enumerate(fs)])
    else:
        raw = shb("<") + idb("<", 1) + b"".join(epb("<", 0, i, f) for i, f in enumerate(fs))
    plain = write(tmp_path, f"x.{kind}", raw)
    packed = write(tmp_path, f"x.{kind}.gz", gzip.compress(raw))
    head = Path(packed).read_bytes()[:HEAD_BYTES]
    assert is_capture(head)
    got, stats = read(packed)
    assert [p[:5] for p in got] == [p[:5] for p in read(plain)[0]]
    assert got[0].source == packed
    assert (stats.captures, stats.packets) == (1, 50)


def test_gzip_of_something_else_is_not_a_capture(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.gz", gzip.compress(b"hello\n" * 100))
    with pytest.raises(InputError, match="not a pcap or pcapng capture"):
        read(path)


def test_not_a_capture(tmp_path: Path) -> None:
    path = write(tmp_path, "report.pcap", b"%PDF-1.7 this is not a capture")
    stats = RunStats()
    with pytest.raises(InputError) as e:
        list(read_packets(path, stats))
    assert str(e.value) == f"{path}: not a pcap or pcapng capture"
    assert (e.value.where, e.value.what, e.value.reason) == (path, "not a pcap or pcapng capture", "format")
    assert stats.captures == 0


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty file") as e:
        read(write(tmp_path, "empty.pcap", b""))
    assert e.value.reason == "empty"
    with pytest.raises(InputError, match="no such file") as e:
        read(str(tmp_path / "nope.pcap"))
    assert e.value.reason == "missing"


def test_file_header_cut_off(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"capture cut off in its file header \(got 10 of 24 bytes\)") as e:
        read(write(tmp_path, "h.pcap", pcap([])[:10]))
    assert e.value.reason == "truncated"
    with pytest.raises(InputError, match=r"cut off in its section header block \(got 20 of 28 bytes\)"):
        read(write(tmp_path, "h.pcapng", shb("<")[:20]))


# -- truncated captures -----------------------------------------------------------------------------


def five_record_pcap() -> tuple[bytes, list[bytes], int]:
    """A pcap of five 154-byte frames, and the file offset of record 4."""
    fs = frames(5)
    return pcap([(i, 0, f, len(f)) for i, f in enumerate(fs)]), fs, 24 + 3 * (16 + len(fs[0]))


@pytest.mark.parametrize(
    ("cut", "got", "want"),
    [
        (40, 40, 16 + 154),  # mid-data: 16 header bytes and 24 of the frame's 154
        (10, 10, 16),  # mid-header
    ],
)
def test_pcap_cut_off_mid_record(tmp_path: Path, warnings: list[str], cut: int, got: int, want: int) -> None:
    raw, fs, rec4 = five_record_pcap()
    assert len(fs[0]) == 154
    path = write(tmp_path, "cut.pcap", raw[: rec4 + cut])
    pkts, stats = read(path)
    assert [p.data for p in pkts] == fs[:3]
    assert warnings == [
        f"{path}: capture cut off in record 4 (got {got} of {want} bytes); the 3 records before it were read"
    ]
    assert (stats.truncated_records, stats.packets) == (1, 3)


def test_pcapng_cut_off_mid_block(tmp_path: Path, warnings: list[str]) -> None:
    fs = frames(3)
    good = shb("<") + idb("<", 1) + epb("<", 0, 1, fs[0]) + epb("<", 0, 2, fs[1])
    last = epb("<", 0, 3, fs[2])
    path = write(tmp_path, "cut.pcapng", good + last[:50])
    pkts, stats = read(path)
    assert [p.data for p in pkts] == fs[:2]
    assert warnings == [
        f"{path}: capture cut off in record 3 (got 50 of {len(last)} bytes); the 2 records before it were read"
    ]
    assert stats.truncated_records == 1


def test_gzip_cut_off(tmp_path: Path, warnings: list[str]) -> None:
    fs = frames(400, size=1000)
    raw = pcap([(i, 0, f, len(f)) for i, f in enumerate(fs)])
    packed = gzip.compress(raw, compresslevel=1)
    path = write(tmp_path, "cut.pcap.gz", packed[: len(packed) // 2])
    pkts, stats = read(path)
    assert 0 < len(pkts) < 400
    assert [p.data for p in pkts] == fs[: len(pkts)]
    assert stats.truncated_records == 1
    (message,) = warnings
    n = len(pkts) + 1
    assert message.startswith(f"{path}: capture cut off in record {n} (got ")
    assert message.endswith(f"bytes); the {n - 1} records before it were read")


def test_corrupt_gzip_stops_with_an_error(tmp_path: Path) -> None:
    raw, fs, _ = five_record_pcap()
    packed = bytearray(gzip.compress(raw))
    packed[-8] ^= 0xFF  # the CRC-32 of the uncompressed data
    seen: list[Packet] = []
    with pytest.raises(InputError, match=r"gzip data is corrupt after \d+ uncompressed bytes") as e:
        seen.extend(read_packets(write(tmp_path, "crc.pcap.gz", bytes(packed)), RunStats()))
    assert e.value.reason == "format"
    assert [p.data for p in seen] == fs


def test_gzip_cut_off_at_a_record_boundary(tmp_path: Path, warnings: list[str]) -> None:
    raw, fs, rec4 = five_record_pcap()
    z = zlib.compressobj(9, wbits=31)
    packed = z.compress(raw[:rec4]) + z.flush(zlib.Z_SYNC_FLUSH)  # no end-of-stream marker
    pkts, stats = read(write(tmp_path, "sync.pcap.gz", packed))
    assert [p.data for p in pkts] == fs[:3]
    assert stats.truncated_records == 1
    assert "cut off in record 4 (got 0 of 16 bytes)" in warnings[0]


def test_stopping_early_still_counts_what_was_read(tmp_path: Path) -> None:
    raw, fs, _ = five_record_pcap()
    stats = RunStats()
    it = read_packets(write(tmp_path, "x.pcap", raw), stats)
    next(it), next(it)
    it.close()
    assert (stats.packets, stats.packet_bytes) == (2, 2 * len(fs[0]))
