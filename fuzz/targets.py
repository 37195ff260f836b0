"""Fuzz targets: one function per parser stagewatch points at hostile bytes (issue "Hostile input").

A target takes the fuzzer's bytes and either returns or raises one of the errors its parser documents
(`ALLOWED`); any other exception, a crash or a sanitizer report is a bug. Where a parser has a compiled twin
(sensor/_core.pyx, sensor/_flow.pyx) the target runs both on the same bytes and fails when they disagree, so
the fuzzer hunts memory errors in the C code and differences from the reference at once.

Each target runs with small limits (1 MiB of output, 0.5 s per member) so one input never takes a second.
`fuzz/run.py` runs a target under atheris; tests/test_fuzz.py replays every corpus in `make test`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensor import native
from sensor.config import Limits, Settings
from sensor.errors import ConfigError, InputError, RuleError
from sensor.model import Candidate, FileOrigin, Format, Packet, Segment
from sensor.stats import RunStats

LIMITS = Limits(max_output=1 << 20, max_seconds=0.5, max_encoded=1 << 20, stream_depth=1 << 20, memcap=8 << 20)
_SHM = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
SCRATCH = Path(os.environ.get("STAGEWATCH_FUZZ_SCRATCH", _SHM))  # temporary files of the file-reading targets


@dataclass(frozen=True)
class Target:
    """One fuzz target: its function and the errors its parser may raise on bad input."""

    name: str
    run: Callable[[bytes], None]
    allowed: tuple[type[BaseException], ...] = ()
    # the packages imported under atheris' coverage instrumentation before fuzzing: all of sensor by default;
    # a target that reaches one package only names it (instrumenting every module costs ~5 s per start)
    modules: tuple[str, ...] = ("sensor",)


TARGETS: dict[str, Target] = {}


def target(
    name: str, allowed: tuple[type[BaseException], ...] = (), modules: tuple[str, ...] = ("sensor",)
) -> Callable[[Callable[[bytes], None]], Any]:
    def deco(fn: Callable[[bytes], None]) -> Callable[[bytes], None]:
        TARGETS[name] = Target(name, fn, allowed, modules)
        return fn

    return deco


class Mismatch(AssertionError):
    """The compiled core and its reference disagree on the same bytes."""


def _same(what: str, got: object, ref: object) -> None:
    if got != ref:
        raise Mismatch(f"{what}: compiled {got!r:.300} != reference {ref!r:.300}")


def _compiled() -> Any:
    return native.compiled  # None when the core did not build: the reference alone is fuzzed


# -- capture readers and the decoder ---------------------------------------------------------------------------


@target("pcap", modules=("sensor.capture",))
def fuzz_pcap(data: bytes) -> None:
    """The classic-pcap record loop over any bytes, both byte orders and time units, both cores."""
    from sensor.capture.pcapfile import MAX_RECORD, pcap_records

    if not data:
        return
    big, units = bool(data[0] & 1), 1e9 if data[0] & 2 else 1e6
    max_record = (MAX_RECORD, 64, 0)[data[0] >> 2 & 3 if data[0] >> 2 & 3 < 3 else 0]
    buf = data[1:]
    ref: list[Packet] = []
    want = pcap_records(buf, 0, big, units, 1, 0, "f.pcap", max_record, ref)
    core = _compiled()
    if core is not None:
        got: list[Packet] = []
        result = core.pcap_records(buf, 0, big, units, 1, 0, "f.pcap", max_record, got)
        _same("pcap_records", (result, got), (want, ref))


@target("pcapng", modules=("sensor.capture",))
def fuzz_pcapng(data: bytes) -> None:
    """The pcapng block loop over any bytes (sections, interfaces, every packet block kind), both cores,
    refilled in two pieces as the reader does."""
    from sensor.capture.pcapfile import NgState, pcapng_blocks

    def read(blocks: Callable[..., Any]) -> tuple:
        st, out, off, base, steps = NgState(), [], 0, 0, []
        cut = len(data) // 2
        for piece_end in (cut, len(data)):
            piece = data[base:piece_end]
            off, nbytes, bad = blocks(piece, off, base, st, "f.pcapng", out)
            steps.append((off, nbytes, str(bad) if bad else None))
            if bad is not None:
                break
            base, off = base + off, 0
        return steps, out, (st.order, st.interfaces, st.sections, st.last_ts, st.index)

    want = read(pcapng_blocks)
    core = _compiled()
    if core is not None:
        _same("pcapng_blocks", read(core.pcapng_blocks), want)


_LINKTYPES = (1, 0, 101, 113, 228, 229, 276, 12, 14, 108)


@target("decode", modules=("sensor.flow",))
def fuzz_decode(data: bytes) -> None:
    """One frame of any link type: the fast path in both cores, then the dpkt path, which must decide."""
    from sensor.flow.decode import Decoder, decode_fast

    if not data:
        return
    linktype, frame = _LINKTYPES[data[0] % len(_LINKTYPES)], data[1:]
    want = decode_fast(1.5, linktype, frame, 7)
    core = _compiled()
    if core is not None:
        _same("decode_fast", core.decode_fast(1.5, linktype, frame, 7), want)
    decoder = Decoder(RunStats(), max_fragments=8)
    decoder.decode(Packet(1.5, linktype, frame, 7, len(frame) + (data[0] & 1), "f.pcap"))
    decoder.decode_dpkt(Packet(1.5, linktype, frame, 7, len(frame), "f.pcap"))
    decoder.close()


@target("ring", modules=("sensor.capture",))
def fuzz_ring(data: bytes) -> None:
    """The live ring's block walk over any block bytes (headers the kernel would never write), both cores."""
    from sensor.capture.live import ring_block

    ref: list[Packet] = []
    want = ring_block(data, 0, "live:x", 0, ref)
    core = _compiled()
    if core is not None:
        got: list[Packet] = []
        _same("ring_block", (core.ring_block(data, 0, "live:x", 0, got), got), (want, ref))


# -- the flow stage -----------------------------------------------------------------------------------------------


class _Recorder:
    """A chunk sink writing down what it is told; it keeps everything, so peek answers for any delivered byte."""

    def __init__(self, log: list, name: tuple) -> None:
        self.log, self.name, self.data, self.base = log, name, bytearray(), None

    def chunk(self, c: Any) -> None:
        self.log.append(("chunk", self.name, c.offset, c.data, list(c.marks_off), list(c.marks)))
        if self.base is None:
            self.base = c.offset
        self.data += c.data

    def gap(self, offset: int, size: int) -> None:
        self.log.append(("gap", self.name, offset, size))
        self.data.clear()
        self.base = offset + size

    def end(self, reason: object) -> None:
        self.log.append(("end", self.name, str(reason)))

    def peek(self, offset: int, size: int) -> bytes | None:
        if self.base is None or offset < self.base or offset + size > self.base + len(self.data):
            return None
        return bytes(self.data[offset - self.base : offset - self.base + size])


_A, _B = bytes([10, 0, 0, 5]), bytes([198, 51, 100, 7])


def segments_of(data: bytes, ports: tuple[int, int] = (40000, 80)) -> list[Segment]:
    """Bytes to a TCP conversation the fuzzer steers: per segment a 6-byte header (direction and flags, a
    sequence offset that may reorder, overlap or jump, a length) then its payload; time advances slowly so
    idle timeouts and chunk delays happen too."""
    out: list[Segment] = []
    isn = (0xFFFFFF00, 1000)  # the client's sequence numbers wrap
    nxt = [0, 0]
    pos, ts = 0, 1000.0
    while pos + 6 <= len(data) and len(out) < 400:
        ctl, flags, back, size = data[pos], data[pos + 1], struct.unpack_from(">h", data, pos + 2)[0], data[pos + 4]
        size |= (data[pos + 5] & 3) << 8
        pos += 6
        d = ctl & 1
        payload = data[pos : pos + size]
        pos += len(payload)
        seq = (isn[d] + nxt[d] + (back if ctl & 2 else 0)) & 0xFFFFFFFF
        if not ctl & 2:
            nxt[d] += len(payload)
        ts += (ctl >> 2) * 0.05 + (400.0 if ctl == 0xFF else 0.0)
        src, dst, sport, dport = (_A, _B, ports[0], ports[1]) if d == 0 else (_B, _A, ports[1], ports[0])
        out.append(Segment(ts, len(out) + 1, src, dst, sport, dport, 6, seq, flags & 0x1F, payload))
    return out


def _flow_run(table_cls: type, budget_cls: type, segs: list[Segment], limits: Limits) -> tuple:
    from sensor.flow.direction import HomeNet

    log: list = []
    budget = budget_cls()
    stats = RunStats()

    def sink(flow: Any, d: int) -> _Recorder:
        return _Recorder(log, (flow.key, d))

    table = table_cls(limits, HomeNet(), stats, sink, lambda *a: None, log.append, budget)
    table.source = "f.pcap"
    for seg in segs:
        table.process(seg)
    table.flush()
    return log, dict(stats.net), budget.used


@target("flow")
def fuzz_flow(data: bytes) -> None:
    """Reassembly fed any segment sequence (reordering, overlaps that differ, wrap, RST, FIN, gaps, depth,
    chunk size and delay): the compiled table, reassembly and chunker give the reference's chunks and records."""
    from sensor.flow.table import Budget, FlowTable

    limits = dataclasses.replace(LIMITS, chunk_size=512, stream_depth=4096, max_pending=2048, flow_timeout=300.0)
    segs = segments_of(data)
    want = _flow_run(FlowTable, Budget, segs, limits)
    core = _compiled()
    if core is not None:
        _same("flow stage", _flow_run(core.FlowTable, core.Budget, segs, limits), want)


# -- the application layer and detection, whole -------------------------------------------------------------------

_detector: Any = None


def detector() -> Any:
    """One real detector (bundled rules, yara-x) for the process, with the fuzzing limits."""
    global _detector
    if _detector is None:
        from sensor.detect.detector import Detector

        cache = SCRATCH / "stagewatch-fuzz-rules"
        _detector = Detector(Settings(limits=LIMITS, cache_dir=cache, objects=True), RunStats())
    return _detector


def _conversation(data: bytes, ports: tuple[int, int]) -> None:
    from sensor.netscan import NetScanner

    det = detector()
    settings = Settings(limits=LIMITS, objects=True, cache_dir=SCRATCH / "stagewatch-fuzz-rules")
    net = NetScanner(settings, det, RunStats())
    net.table.source = "f.pcap"
    syn = Segment(999.0, 0, _A, _B, ports[0], ports[1], 6, 0xFFFFFEFF, 0x02, b"")
    net.table.process(syn)
    for seg in segments_of(data, ports):
        net.table.process(seg)
    list(net.finish())


@target("http")
def fuzz_http(data: bytes) -> None:
    """An HTTP/1 connection both ways (framing, codings, multipart, forms, JSON), scanned as the sensor does."""
    _conversation(data, (40000, 80))


@target("framing")
def fuzz_framing(data: bytes) -> None:
    """HTTP/1 heads read as receivers read them, the framings they imply, chunk-size lines and Content-Encoding
    lists: never an error, at most [limits] max_readings readings, the stream's own first and a known mode."""
    from sensor.content import codings
    from sensor.protocols.http_head import chunk_size, framings, head_end, parse_head

    found = head_end(data, 64 * 1024)
    block = data[: found[0]] if found else data
    head = parse_head(block, 0)
    for line in data.split(b"\n")[:64]:
        chunk_size(line)
    if head is None:
        return
    readings, extra = framings(head, None, not head.request, LIMITS.max_readings)
    if not readings or len(readings) > LIMITS.max_readings or extra < 0:
        raise AssertionError(f"framings gave {readings} (+{extra})")
    if any(r.mode not in ("length", "chunked", "close", "none") or r.length < 0 for r in readings):
        raise AssertionError(f"a reading out of its vocabulary: {readings}")
    known, unknown = codings.parse_codings(head.get("content-encoding"))
    if any(k not in codings.CODINGS for k in known) or any(u in codings.CODINGS for u in unknown):
        raise AssertionError(f"codings split wrong: {known} {unknown}")


@target("websocket")
def fuzz_websocket(data: bytes) -> None:
    """WebSocket frames of one direction (the first byte picks masking expectations, permessage-deflate and
    context takeover), fed in two pieces and then again after a gap: never an error, messages within bounds."""
    from sensor.protocols import websocket

    if not data:
        return
    flags, body = data[0], data[1:]
    deflate = websocket.Deflate(bool(flags & 1), bool(flags & 2), 8 + (flags >> 4) % 8)
    reader = websocket.Reader(deflate, bool(flags & 4), 1 << 20, LIMITS.max_encoded)
    cut = len(body) // 2
    used, first, stop = reader.feed(body[:cut], 0, False)
    if stop is None:
        rest = body[used:]
        used2, more, stop = reader.feed(rest, used, bool(flags & 8))
        if flags & 8 == 0:
            reader.gap()
            reader.feed(rest[used2:], used + used2, True)
    for msg in first:
        if len(msg.data) > LIMITS.max_encoded or msg.offset < 0:
            raise AssertionError(f"a message out of bounds: {len(msg.data)} bytes at {msg.offset}")


@target("smtp")
def fuzz_smtp(data: bytes) -> None:
    """An SMTP session both ways (DATA, BDAT, MIME parts), scanned as the sensor does."""
    _conversation(data, (40001, 25))


@target("imap")
def fuzz_imap(data: bytes) -> None:
    """An IMAP connection both ways (literals of every kind, APPEND and FETCH messages), scanned as the sensor
    does."""
    _conversation(data, (40005, 143))


@target("pop3")
def fuzz_pop3(data: bytes) -> None:
    """A POP3 connection both ways (pipelined commands, RETR messages, multi-line answers), scanned as the sensor
    does."""
    _conversation(data, (40006, 110))


@target("dns")
def fuzz_dns(data: bytes) -> None:
    """DNS messages, each behind a two-byte length (as over TCP) and a byte choosing its sender: read strictly
    and leniently, fed to the tunnel tracker (grouping, zones, counters, decodings) whose objects the detector
    scans; then the same bytes as a DNS-over-TCP connection. Bounded: no object over stream_depth."""
    from sensor.model import NetworkOrigin
    from sensor.protocols import dns_message
    from sensor.protocols.dns_tunnel import DnsTunnels

    det = detector()
    sizes: list[int] = []

    def scan(obj: Any, _scan: bool) -> None:
        sizes.append(len(obj.data))
        det.scan(obj)

    tunnels = DnsTunnels(LIMITS, ("corp.example",), scan, RunStats())
    pos, n = 0, 0
    while pos + 3 <= len(data) and n < 4096:
        who, size = data[pos], int.from_bytes(data[pos + 1 : pos + 3], "big")
        msg_bytes = data[pos + 3 : pos + 3 + size]
        pos += 3 + size
        n += 1
        for strict in (True, False):
            try:
                msg = dns_message.parse(msg_bytes, strict=strict)
            except dns_message.DnsError:
                continue
            client, server = f"10.0.0.{who % 4}", "198.51.100.53" if who & 4 else "10.0.0.53"
            src, dst = (server, client) if msg.response else (client, server)
            direction = {"10.0.0.53": "internal"}.get(server, "outbound" if not msg.response else "inbound")
            origin = NetworkOrigin(
                src, 53, dst, 40000, "udp", direction, "1:x", 1000.0, 1000.0 + n * (who >> 3), n, "f.pcap", True
            )
            tunnels.message(msg, origin)
    tunnels.flush()
    if any(s > LIMITS.stream_depth for s in sizes):
        raise AssertionError(f"a DNS object over stream_depth: {max(sizes)}")
    _conversation(data, (40007, 53))


@target("smb")
def fuzz_smb(data: bytes) -> None:
    """An SMB2/3 connection both ways (NetBIOS framing, compounds, CREATE/WRITE/READ/CLOSE pairing, files put
    together by offset, transform headers, resynchronising after a gap), scanned as the sensor does."""
    _conversation(data, (40008, 445))


@target("identity", modules=("sensor.protocols.identity",))
def fuzz_identity(data: bytes) -> None:
    """The host-identity readers (DHCP, NetBIOS, LLMNR, mDNS, Kerberos AS-REQ DER, NTLMSSP) on hostile bytes: the
    first byte picks the port; never an error, every identity with an address and a known source."""
    from sensor.model import NetworkOrigin
    from sensor.protocols.identity import Identities, kerberos, ntlm

    if not data:
        return
    ports = (67, 68, 137, 5353, 5355, 88)
    port, body = ports[data[0] % len(ports)], data[1:]
    found: list[Any] = []
    ids = Identities(found.append)
    origin = NetworkOrigin("10.0.0.9", 40000, "10.0.0.1", port, "udp", "internal", "1:x", 1.0, 1.0, 1, "f.pcap", True)
    ids.datagram(port if port != 88 else 40000, port, body, origin)
    kerberos.identity(body, origin)
    ntlm.identity(b"NTLMSSP\x00\x03\x00\x00\x00" + body, origin, "fuzz")
    for i in found:
        if not i.address or i.source not in ("dhcp", "nbns", "llmnr", "mdns", "kerberos", "ntlm"):
            raise AssertionError(f"an identity out of its vocabulary: {i}")


@target("ftp")
def fuzz_ftp(data: bytes) -> None:
    """An FTP control connection both ways (commands, replies, PORT/PASV), scanned as the sensor does."""
    _conversation(data, (40002, 21))


@target("detect")
def fuzz_detect(data: bytes) -> None:
    """A staged file of any bytes through detection: YARA candidates and hints, every verifier they reach,
    base64/hex peeling, archives and their entries."""
    from sensor.model import ContentObject

    obj = ContentObject(origin=FileOrigin("/tmp/x/Temp/f.bin", len(data), 0.0, None, "h", "/tmp/x"), data=data)
    list(detector().scan(obj))


@target("verify")
def fuzz_verify(data: bytes) -> None:
    """Every verifier at offset 0 of any bytes (the first byte picks the format), as a candidate would call it."""
    from sensor.detect.verifiers import Context, verifiers

    if not data:
        return
    formats = sorted(verifiers.names())
    fmt = formats[data[0] % len(formats)]
    ctx = Context(limits=LIMITS, where="fuzz", at_object_start=bool(data[0] & 0x80))
    verifiers.get(fmt)().verify(data[1:], Candidate("fuzz", Format(fmt), 0), ctx)


def _encrypted_target(fmt: Format) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        from sensor.detect.verifiers import Context, verifiers

        ctx = Context(limits=LIMITS, where="fuzz", at_object_start=True)
        verifier = verifiers.get(fmt)()
        for off in (0, len(data) // 3):
            found = verifier.verify(data, Candidate("fuzz", fmt, off), ctx)
            if found is not None and not (found.offset >= 0 and found.offset + found.length <= len(data)):
                raise AssertionError(f"{fmt} member out of the data: {found.offset}+{found.length} of {len(data)}")

    run.__doc__ = f"The {fmt} verifier at the start and a third of the way into any bytes: a member, if any, in bounds."
    return run


_VERIFIER_TARGETS = (Format.OPENSSL, Format.OPENPGP, Format.AGE, Format.FERNET, Format.CMS, Format.JWE)
VERIFIERS = ("sensor.detect.verifiers",)
for _fmt in (*_VERIFIER_TARGETS, Format.LZNT1):
    target(str(_fmt), modules=VERIFIERS)(_encrypted_target(_fmt))


def _xpress_target(fmt: Format) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        from dissect.util.compression import lzxpress, lzxpress_huffman

        from sensor.detect.verifiers import xpress, xpress_huffman

        _encrypted_target(fmt)(data)
        ours = (xpress if fmt is Format.XPRESS else xpress_huffman).decode(data, 0, 1 << 20)
        if ours.status != "end" or ours.wide or len(data) > 4096:
            return  # dissect.util's Huffman decoder reads no 32-bit lengths (a 16-bit 0 is a length of 3 there)
        try:
            ref = (lzxpress if fmt is Format.XPRESS else lzxpress_huffman).decompress(data)
        except Exception:  # noqa: BLE001 - dissect decodes past the end symbol and can run off the input there
            return
        # dissect reads a Huffman stream to the input's end: the end symbol comes out as a 3-byte copy, or the
        # last symbols are never reached; on what both decoded they must agree
        same = ref == ours.output if fmt is Format.XPRESS else ref[: len(ours.output)] == ours.output[: len(ref)]
        if not same:
            raise AssertionError(f"{fmt}: our decoder and dissect.util's disagree on a stream both read to its end")

    run.__doc__ = f"The {fmt} verifier as the others, and its decoder against dissect.util's on streams that end."
    return run


for _fmt in (Format.XPRESS, Format.XPRESS_HUFFMAN):
    target(str(_fmt), modules=VERIFIERS)(_xpress_target(_fmt))


@target("content")
def fuzz_content(data: bytes) -> None:
    """The content decoders: base64 and hex peeling around any offset, multipart splitting, form and JSON
    values, HTTP content codings."""
    from sensor.content import codings, forms, multipart
    from sensor.content.base import decoders

    if len(data) < 2:
        return
    pick, offset, body = data[0] % 6, data[1] * 4, data[2:]
    if pick < 2:
        for _ in decoders.get(("base64", "hex")[pick])().peel(body, min(offset, len(body)), LIMITS.max_encoded):
            pass
    elif pick == 2:
        boundary = multipart.boundary_of(body[:70].decode("latin-1")) or "b"
        multipart.split(body, boundary)
    elif pick == 3:
        list(forms.urlencoded(body))
    elif pick == 4:
        list(forms.json_strings(body))
    else:
        codings.undo(("gzip", "deflate", "br", "zstd", "x-gzip")[offset % 5], body, LIMITS, "fuzz")


# -- host telemetry and configuration -------------------------------------------------------------------------------


def _as_file(data: bytes, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix, dir=SCRATCH, prefix="stagewatch-fuzz-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Path(name)


@target("hostevents", allowed=(InputError,), modules=("sensor.hostevents",))
def fuzz_hostevents(data: bytes) -> None:
    """Every host-telemetry parser (the first byte picks EVTX, Windows XML or JSON, auditd, QRadar) over a file
    of any bytes; InputError (one line naming the file) is the only way out besides records."""
    from sensor.hostevents.base import parsers

    if not data:
        return
    names = sorted(parsers.names())
    parser = parsers.get(names[data[0] % len(names)])()
    path = _as_file(data[1:], ".log")
    try:
        for _ in parser.parse(str(path), RunStats(), dt.UTC):
            pass
    finally:
        path.unlink()


@target("config", allowed=(ConfigError, RuleError, InputError))
def fuzz_config(data: bytes) -> None:
    """The TOML config, the tuning YAML and Sigma YAML loaders over any text: a one-line error or a result."""
    from sensor.config import load_settings
    from sensor.hostrules.sigma import load_rules
    from sensor.tuning.tuner import Tuner

    if not data:
        return
    pick, body = data[0] % 3, data[1:]
    path = _as_file(body, (".toml", ".yaml", ".yml")[pick])
    try:
        if pick == 0:
            load_settings(path)
        elif pick == 1:
            Tuner.load(path)
        else:
            load_rules([path])
    finally:
        path.unlink()
