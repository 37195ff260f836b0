"""The compiled core against its Python reference (shared/STYLE.md §9): the same frames give the same
segments, the same captures the same findings and flow records. A divergence is a bug in one of them.

Under CI (CI=true) the compiled core must have built: the suite runs on it.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor import native as core
from sensor.capture.pcapfile import read_packets
from sensor.flow.decode import decode_fast as reference
from sensor.stats import RunStats

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "pcaps" / "real"

compiled = pytest.mark.skipif(core.compiled is None, reason=f"no compiled core: {core.why_reference}")


def test_ci_runs_on_the_compiled_core():
    if os.environ.get("CI") == "true" and os.environ.get(core.ENV, "") in ("", "0"):
        assert core.compiled is not None, f"the compiled core must build in CI: {core.why_reference}"
    elif core.compiled is None:
        pytest.skip(f"no compiled core here: {core.why_reference}")
    assert "compiled" in core.name()


def _captures(tmp: Path) -> list[Path]:
    subprocess.run([sys.executable, str(ROOT / "pcaps" / "make_samples.py"), str(tmp)], check=True, capture_output=True)
    found = sorted(tmp.glob("*.pcap*"))
    if SHARED.is_dir():
        found += sorted(p for p in SHARED.iterdir() if p.suffix in (".pcap", ".pcapng", ".gz", ".cap"))
    return found


@compiled
def test_every_frame_of_every_capture_decodes_alike(tmp_path):
    fast = core.compiled.decode_fast
    frames = 0
    for path in _captures(tmp_path):
        for pkt in read_packets(str(path), RunStats()):
            args = (pkt.ts, pkt.linktype, pkt.data, pkt.index)
            assert fast(*args) == reference(*args), f"{path.name} packet {pkt.index}"
            frames += 1
    assert frames > 200


def _frame(vlans: list[int], ethertype: int, l3: bytes) -> bytes:
    out = b"\x02" * 6 + b"\x04" * 6
    for tpid in vlans:
        out += struct.pack("!H", tpid) + b"\x00\x07"
    return out + struct.pack("!H", ethertype) + l3


@st.composite
def _l4(draw: st.DrawFn, proto: int) -> bytes:
    """A TCP or UDP header and payload, its fields mostly sane, sometimes not."""
    payload = draw(st.binary(max_size=40))
    ports = struct.pack("!HH", draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)))
    if proto == 17:
        return ports + struct.pack("!HH", 8 + len(payload), 0) + payload
    doff = draw(st.one_of(st.sampled_from([0x50, 0x60, 0x80, 0xF0]), st.integers(0, 255)))
    options = b"\x01" * max(0, ((doff >> 4) << 2) - 20)
    head = ports + struct.pack("!II", draw(st.integers(0, 0xFFFFFFFF)), 7)
    return head + bytes([doff, draw(st.integers(0, 255))]) + b"\xff\xff\x00\x00" + options + payload


def _within(size: int) -> st.SearchStrategy[int]:
    """A length field for `size` bytes: right, or ending anywhere inside them or a little past, or anything."""
    return st.one_of(st.just(size), st.integers(0, size + 8), st.integers(0, 0xFFFF - 60))


@st.composite
def _ip(draw: st.DrawFn) -> tuple[int, bytes]:
    """(ethertype, IPv4 or IPv6 packet) whose lengths are right, or off by a little, or by a lot."""
    proto = draw(st.sampled_from([6, 17, 6, 17, 1, 0, 44]))
    l4 = draw(_l4(17 if proto == 17 else 6))
    if draw(st.booleans()):
        ihl = draw(st.one_of(st.just(5), st.integers(0, 15)))
        opts = b"\x01" * max(0, ihl * 4 - 20)
        version = draw(st.one_of(st.just(4), st.integers(0, 15)))
        total = 20 + len(opts) + draw(_within(len(l4)))
        if draw(st.integers(0, 9)) == 0:
            total = 0  # segmentation offload
        frag = draw(st.one_of(st.just(0), st.just(0x4000), st.integers(0, 0xFFFF)))
        head = bytes([version << 4 | ihl, 0]) + struct.pack("!HHHBB", total, 1, frag, 64, proto) + b"\x00\x00"
        return 0x0800, head + bytes(range(1, 9)) + opts + l4
    first = draw(st.one_of(st.just(0x60), st.integers(0, 255)))
    plen = draw(_within(len(l4)))
    head = bytes([first, 0, 0, 0]) + struct.pack("!HBB", plen, proto, 64) + bytes(range(32))
    return 0x86DD, head + l4


@compiled
@settings(max_examples=3000, deadline=None)
@given(
    vlans=st.lists(st.sampled_from([0x8100, 0x88A8, 0x9100, 0x0800]), max_size=3),
    ip=_ip(),
    other=st.sampled_from([None, None, None, None, None, 0x0806, 0x05DC, 0x8100]),
    pad=st.binary(max_size=20),
    cut=st.one_of(st.just(0), st.integers(0, 80)),
    linktype=st.sampled_from([1, 1, 1, 1, 101, 113]),
)
def test_any_frame_decodes_alike(vlans, ip, other, pad, cut, linktype):
    """Random frames around the fast path's edges: tags, header lengths, lengths that lie, padding, truncation."""
    ethertype, packet = ip
    frame = _frame(vlans, other or ethertype, packet) + pad
    frame = frame[: max(0, len(frame) - cut)]
    args = (1.5, linktype, frame, 7)
    assert core.compiled.decode_fast(*args) == reference(*args)


@compiled
def test_every_length_around_the_header_boundaries_decodes_alike():
    """Exhaustive near the edges: tag stacks x IP versions and header lengths x TCP data offsets and UDP x every
    value of the IP length field up to past the end x every truncation of the frame."""
    fast = core.compiled.decode_fast
    payload = b"0123456789"
    cases = 0
    for vlans in ([], [0x8100], [0x88A8, 0x8100], [0x9100], [0x9100, 0x88A8]):
        for version, ihl in ((4, 5), (4, 6), (4, 4), (6, 0)):
            for proto, doff in ((6, 0x50), (6, 0x60), (6, 0x40), (17, 0)):
                if proto == 6:
                    l4 = struct.pack("!HHIIBBHH", 1, 2, 3, 4, doff, 0x18, 5, 0) + b"\x01" * max(0, (doff >> 4) * 4 - 20)
                else:
                    l4 = struct.pack("!HHHH", 1, 2, 8 + len(payload), 0)
                l4 += payload
                for length in range(0, len(l4) + 30):
                    if version == 4:
                        opts = b"\x01" * max(0, ihl * 4 - 20)
                        head = bytes([0x40 | ihl, 0]) + struct.pack("!HHHBB", length, 1, 0x4000, 64, proto)
                        packet, ethertype = head + b"\x00\x00" + bytes(range(1, 9)) + opts + l4, 0x0800
                    else:
                        head = bytes([0x60, 0, 0, 0]) + struct.pack("!HBB", length, proto, 64) + bytes(range(32))
                        packet, ethertype = head + l4, 0x86DD
                    frame = _frame(vlans, ethertype, packet) + b"\x00" * 6
                    for cut in range(0, len(frame) - 10, 3):
                        args = (2.0, 1, frame[: len(frame) - cut], 9)
                        assert fast(*args) == reference(*args), (vlans, version, ihl, proto, doff, length, cut)
                        cases += 1
    assert cases > 50_000


def _scan(path: Path, cache: Path, reference_core: bool) -> tuple[list[dict], list[dict], str]:
    env = dict(os.environ)
    env.pop(core.ENV, None)
    if reference_core:
        env[core.ENV] = "1"
    cfg = path.parent / "core.toml"
    cfg.write_text(f'cache_dir = "{cache}"\nobserver = "test"\n')
    findings, flows = path.parent / f"f-{reference_core}.jsonl", path.parent / f"flows-{reference_core}.jsonl"
    cmd = [sys.executable, "-m", "sensor", "scan", str(path), "--no-db", "--config", str(cfg), "--truncate"]
    cmd += ["--jsonl", str(findings), "--flows", str(flows), "--home-net", "10.0.0.0/8,2001:db8::/48"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr

    def records(f: Path) -> list[dict]:
        out = []
        for line in f.read_text().splitlines():
            r = json.loads(line)
            r["event"].pop("created", None)
            out.append(r)
        return sorted(out, key=lambda r: json.dumps(r, sort_keys=True))

    return records(findings), records(flows), done.stderr


@compiled
def test_the_reference_core_runs_when_asked_says_so_once_and_finds_the_same(tmp_path, rule_cache):
    subprocess.run([sys.executable, str(ROOT / "pcaps" / "make_samples.py"), str(tmp_path)], check=True,
                   capture_output=True)  # fmt: skip
    merged = tmp_path / "all"
    merged.mkdir()
    for p in tmp_path.glob("*.pcap*"):
        p.rename(merged / p.name)
    found_c, flows_c, err_c = _scan(merged, rule_cache, reference_core=False)
    found_r, flows_r, err_r = _scan(merged, rule_cache, reference_core=True)
    assert found_c and found_c == found_r
    assert flows_c and flows_c == flows_r
    assert "reference core" not in err_c
    notes = [line for line in err_r.splitlines() if "reference core" in line]
    assert len(notes) == 1 and core.ENV in notes[0]


def _pcap_records_alike(buf: bytes, big: bool, units: float, max_record: int = 64 << 20) -> None:
    from sensor.capture.pcapfile import pcap_records

    out_c: list = []
    out_r: list = []
    got_c = core.compiled.pcap_records(buf, 24, big, units, 1, 0, "x.pcap", max_record, out_c)
    got_r = pcap_records(buf, 24, big, units, 1, 0, "x.pcap", max_record, out_r)
    assert got_c == got_r
    assert out_c == out_r


@compiled
def test_every_classic_pcap_reads_alike(tmp_path):
    checked = 0
    for path in _captures(tmp_path):
        data = path.read_bytes()
        if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
            big = data[:1] in (b"\xa1",)
            units = 1e9 if data[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e6
            _pcap_records_alike(data, big, units)
            _pcap_records_alike(data[: len(data) - 7], big, units)  # a record cut off
            checked += 1
    assert checked >= 3


@compiled
@settings(max_examples=1500, deadline=None)
@given(
    records=st.lists(
        st.tuples(st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF), st.binary(max_size=70), st.integers(-3, 3)),
        max_size=12,
    ),
    big=st.booleans(),
    nano=st.booleans(),
    cut=st.integers(0, 40),
    max_record=st.sampled_from([64 << 20, 50, 0]),
)
def test_any_record_stream_reads_alike(records, big, nano, cut, max_record):
    """Record headers whose lengths are right or lie (a little, or past any credible size), in both byte
    orders and timestamp units, cut anywhere."""
    order = ">" if big else "<"
    buf = bytearray(24)
    for sec, frac, data, lie in records:
        incl = max(0, len(data) + lie) if lie != 3 else 0x7FFFFFFF
        buf += struct.pack(order + "IIII", sec, frac, incl, len(data) + 4) + data
    buf = bytes(buf[: max(24, len(buf) - cut)])
    _pcap_records_alike(buf, big, 1e9 if nano else 1e6, max_record)


def _pcapng_alike(buf: bytes) -> None:
    """Both block loops over `buf` in pieces (as the reader refills), their packets, state and errors compared."""
    from sensor.capture.pcapfile import NgState, pcapng_blocks

    def read(blocks) -> tuple:  # noqa: ANN001
        st, out, off, base, steps = NgState(), [], 0, 0, []
        for step in (len(buf) // 3, len(buf)):  # a refill in the middle, like stream.read()
            piece = buf[base : base + step] if step < len(buf) else buf[base:]
            off, nbytes, bad = blocks(piece, off, base, st, "x.pcapng", out)
            steps.append((off, nbytes, str(bad) if bad else None))
            if bad is not None:
                break
            base, off = base + off, 0
        return steps, out, (st.order, st.interfaces, st.sections, st.last_ts, st.index)

    assert read(core.compiled.pcapng_blocks) == read(pcapng_blocks)


def _block(order: str, btype: int, body: bytes, lie: int = 0) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    blen = 12 + len(body)
    return struct.pack(order + "II", btype, blen + lie) + body + struct.pack(order + "I", blen)


@compiled
def test_every_pcapng_reads_alike(tmp_path):
    checked = 0
    for path in _captures(tmp_path):
        data = path.read_bytes()
        if data[:4] == b"\x0a\x0d\x0d\x0a":
            _pcapng_alike(data)
            _pcapng_alike(data[: len(data) - 5])
            checked += 1
    if SHARED.is_dir():
        assert checked >= 1


@compiled
@settings(max_examples=1500, deadline=None)
@given(
    sections=st.lists(
        st.tuples(
            st.booleans(),  # big-endian section
            st.lists(  # interfaces: linktype, snaplen, tsresol option (None, 10^-n or 2^-n), tsoffset
                st.tuples(
                    st.sampled_from([1, 101, 113]),
                    st.sampled_from([0, 60, 65535]),
                    st.sampled_from([None, 6, 9, 0x80 | 20, 3]),
                    st.sampled_from([None, 0, 1_000_000]),
                ),
                max_size=3,
            ),
            st.lists(  # blocks: kind, interface, timestamp, data, a length that lies
                st.tuples(
                    st.sampled_from(["epb", "spb", "pb", "other", "short"]),
                    st.integers(0, 3),
                    st.integers(0, (1 << 64) - 1),
                    st.binary(max_size=80),
                    st.sampled_from([0, 0, 0, 4, -4, 1, 1 << 30]),
                ),
                max_size=6,
            ),
        ),
        min_size=1,
        max_size=3,
    ),
    cut=st.integers(0, 30),
    bad_magic=st.booleans(),
)
def test_any_pcapng_stream_reads_alike(sections, cut, bad_magic):
    """Sections in both byte orders, interfaces with time resolutions and offsets, EPB, SPB, the obsolete PB,
    unknown blocks, blocks too short for their fields, lengths that lie, a bad byte-order magic, cut anywhere."""
    buf = bytearray()
    for i, (big, interfaces, blocks) in enumerate(sections):
        o = ">" if big else "<"
        magic = b"\x1a\x2b\x3c\x4d" if big else b"\x4d\x3c\x2b\x1a"
        if bad_magic and i == len(sections) - 1:
            magic = b"ABCD"
        buf += _block(o, 0x0A0D0D0A, magic + struct.pack(o + "HHq", 1, 0, -1))
        for linktype, snaplen, resol, tsoffset in interfaces:
            opts = b""
            if resol is not None:
                opts += struct.pack(o + "HH", 9, 1) + bytes([resol]) + b"\x00" * 3
            if tsoffset is not None:
                opts += struct.pack(o + "HHq", 14, 8, tsoffset)
            buf += _block(o, 1, struct.pack(o + "HHI", linktype, 0, snaplen) + opts + struct.pack(o + "HH", 0, 0))
        for kind, iface, ts, data, lie in blocks:
            hi, lo = ts >> 32, ts & 0xFFFFFFFF
            if kind == "epb":
                buf += _block(o, 6, struct.pack(o + "IIIII", iface, hi, lo, len(data), len(data) + 9) + data, lie)
            elif kind == "pb":
                buf += _block(o, 2, struct.pack(o + "HHIIII", iface, 0, hi, lo, len(data), len(data)) + data, lie)
            elif kind == "spb":
                buf += _block(o, 3, struct.pack(o + "I", len(data) + 3) + data, lie)
            elif kind == "short":  # an EPB of 12 bytes: no room for its own fields
                buf += struct.pack(o + "III", 6, 12, 12)
            else:
                buf += _block(o, 0x0BAD, data, lie)
    _pcapng_alike(bytes(buf[: max(0, len(buf) - cut)]))


@compiled
def test_pcapng_edges_read_alike():
    """What random streams rarely hit: 64-bit timestamps whose quotient rounds differently when the count is
    first made a double (the reader divides exact integers, as the reference does), and a Simple Packet Block
    cut to its interface's snaplen."""
    for o in "<>":
        magic = b"\x1a\x2b\x3c\x4d" if o == ">" else b"\x4d\x3c\x2b\x1a"
        shb = _block(o, 0x0A0D0D0A, magic + struct.pack(o + "HHq", 1, 0, -1))
        us = _block(o, 1, struct.pack(o + "HHI", 1, 0, 60) + struct.pack(o + "HH", 0, 0))
        ns = _block(
            o, 1, struct.pack(o + "HHI", 1, 0, 0) + struct.pack(o + "HH", 9, 1) + b"\x09\x00\x00\x00" + b"\x00" * 4
        )
        buf = shb + us + ns
        for iface, ts in ((0, 11614350878450830363), (1, 11802389319169389490)):
            assert float(ts) / (10**6 if iface == 0 else 10**9) != ts / (10**6 if iface == 0 else 10**9)
            buf += _block(o, 6, struct.pack(o + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, 4, 4) + b"abcd")
        buf += _block(o, 3, struct.pack(o + "I", 100) + bytes(range(100)))  # snaplen 60 on interface 0
        _pcapng_alike(buf)
        from sensor.capture.pcapfile import NgState

        out: list = []
        core.compiled.pcapng_blocks(buf, 0, 0, NgState(), "x.pcapng", out)
        assert [len(p.data) for p in out] == [4, 4, 60]
        assert out[0].ts == 11614350878450830363 / 10**6


def _ring(frames: list[tuple[int, int, int, int, int, int, int, bytes]], slack: int) -> bytes:
    """A TPACKET_V3 block as the kernel lays it out: the block header, then per frame the 48-byte
    tpacket3_hdr, the sockaddr_ll (packet type at +10) and the frame at tp_mac; `slack` cuts the ring short."""
    body = bytearray()
    first = 48
    for i, (sec, nsec, wirelen, status, tci, tpid, pkttype, data) in enumerate(frames):
        mac = 48 + 20 + 2  # an Ethernet frame placed as the kernel does: its IP header 16-aligned
        size = (mac + len(data) + 15) & ~15
        nxt = 0 if i == len(frames) - 1 else size
        hdr = struct.pack("=IIIIIIHHIIH", nxt, sec, nsec, len(data), wirelen, status, mac, mac + 14, 0, tci, tpid)
        frame = bytearray(size)
        frame[: len(hdr)] = hdr
        frame[48 + 10] = pkttype
        frame[mac : mac + len(data)] = data
        body += frame
    block = struct.pack("=IIIII", 3, 0, 1, len(frames), first) + b"\x00" * (first - 20) + bytes(body)
    return block[: max(0, len(block) - slack)]


@compiled
@settings(max_examples=600, deadline=None)
@given(
    frames=st.lists(
        st.tuples(
            st.integers(0, 0xFFFFFFFF),
            st.integers(0, 999_999_999),
            st.integers(0, 70000),
            st.sampled_from([0, 1, 0x11, 0x51, 0x41]),  # user; VLAN valid; with its TPID; TPID bit alone
            st.integers(0, 0xFFFFFFFF),
            st.sampled_from([0, 0x88A8, 0x8100]),
            st.sampled_from([0, 3, 4]),  # host, other host, our own outgoing (skipped)
            st.binary(max_size=40),
        ),
        max_size=6,
    ),
    slack=st.sampled_from([0, 0, 1, 7, 30, 90]),
    offset=st.integers(0, 3),
)
def test_any_ring_block_reads_alike(frames, slack, offset):
    """The live ring's block walk (sensor/capture/live.py `ring_block` and its compiled twin): the same Packets,
    VLAN tags put back the same way (short frames too), our own frames skipped, a ring cut short not read past;
    at any alignment of the buffer."""
    from sensor.capture.live import ring_block

    ring = bytearray(b"\xee" * offset) + _ring(frames, slack)
    ref: list = []
    got: list = []
    assert core.compiled.ring_block(ring, offset, "live:x", 5, got) == ring_block(ring, offset, "live:x", 5, ref)
    assert got == ref
    if not slack:
        assert len(got) == sum(1 for f in frames if f[6] != 4)
