"""pcap and pcapng capture files, also gzip-compressed, read into Packets.

Records are parsed with `struct.unpack_from` over large buffered chunks rather than with dpkt's readers:
dpkt's readers build objects per record and do not check lengths, so a cut record comes back short and
silent (STYLE.md §4; BASELINE.md measures struct at 7x dpkt). Here a capture cut off mid-record is logged
with its record number and counted, and everything before it is still read.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Callable, Generator, Iterator

from loguru import logger

from sensor import native
from sensor.errors import InputError
from sensor.model import Packet
from sensor.stats import RunStats

CHUNK = 1 << 20  # bytes read at a time
HEAD_BYTES = 4096  # what is_capture needs to see: 64 bytes of gzip may not inflate to a single byte
MAX_RECORD = 64 << 20  # a record or block claiming more than this is corruption, not data

# magic -> (byte order, timestamp fraction units per second)
_PCAP_MAGICS = {
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
}
_SHB_MAGIC = b"\x0a\x0d\x0d\x0a"
_BYTE_ORDER_MAGICS = {b"\x1a\x2b\x3c\x4d": ">", b"\x4d\x3c\x2b\x1a": "<"}
_GZIP_MAGIC = b"\x1f\x8b"
_new = tuple.__new__  # Packet(...) without the NamedTuple's Python-level __new__: about 100 ns a record

# pcapng block types and options
_SHB, _IDB, _PB, _SPB, _EPB = 0x0A0D0D0A, 1, 2, 3, 6
_OPT_END, _OPT_TSRESOL, _OPT_TSOFFSET = 0, 9, 14
_MIN_PACKET_BLOCK = {_EPB: 32, _PB: 32, _SPB: 16}


def _kind(head: bytes) -> str | None:
    """'pcap', 'pcapng' or None from a file's first bytes (the version or byte-order magic when present)."""
    magic = head[:4]
    if magic in _PCAP_MAGICS:
        if len(head) >= 6 and struct.unpack_from(_PCAP_MAGICS[magic][0] + "H", head, 4)[0] != 2:
            return None
        return "pcap"
    if magic == _SHB_MAGIC and (len(head) < 12 or head[8:12] in _BYTE_ORDER_MAGICS):
        return "pcapng"
    return None


def is_capture(head: bytes) -> bool:
    """True when `head` (a file's first HEAD_BYTES bytes) starts a pcap or pcapng capture, gzip-compressed or not.

    For gzip, the first 64 bytes that `head` inflates to are tested: a dynamic Huffman table alone can
    take a hundred compressed bytes, so a short head makes a .pcap.gz look like any other file.
    """
    if head[:2] == _GZIP_MAGIC:
        try:
            head = zlib.decompressobj(31).decompress(head, 64)
        except zlib.error:
            return False
    return _kind(head) is not None


class _Stream:
    """A capture file's bytes in large chunks, gunzipped on the fly; `cut` is set when a gzip stream ends early."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.cut = False
        self.delivered = 0  # bytes handed out (uncompressed)
        try:
            self._raw = open(path, "rb")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise InputError(path, "no such file", "missing") from None
        except PermissionError:
            raise InputError(path, "permission denied", "permission") from None
        except IsADirectoryError:
            raise InputError(path, "is a directory, not a capture", "special") from None
        except OSError as e:
            raise InputError(path, e.strerror or str(e)) from None
        self._gz: gzip.GzipFile | None = None
        self._read: Callable[[int], bytes] = self._raw.read
        try:
            if self._raw.peek(2)[:2] == _GZIP_MAGIC:  # peek: works on pipes too
                self._gz = gzip.GzipFile(fileobj=self._raw, mode="rb")
                self._read = self._gz.read1  # read1: data decoded before an EOFError is never lost
        except OSError as e:
            self.close()
            raise InputError(path, e.strerror or str(e)) from None

    def read(self) -> bytes:
        """The next chunk; b"" at the end of the data (or where a gzip stream was cut off)."""
        if self.cut:
            return b""
        try:
            data = self._read(CHUNK)
        except EOFError:  # gzip: "Compressed file ended before the end-of-stream marker was reached"
            self.cut = True
            return b""
        except (gzip.BadGzipFile, zlib.error) as e:
            what = f"gzip data is corrupt after {self.delivered} uncompressed bytes ({e})"
            raise InputError(self.path, what, "format") from None
        except OSError as e:
            raise InputError(self.path, e.strerror or str(e)) from None
        self.delivered += len(data)
        return data

    def close(self) -> None:
        if self._gz is not None:
            self._gz.close()
        self._raw.close()


def read_batches(path: str, stats: RunStats) -> Iterator[list[Packet]]:
    """Every packet record of a pcap or pcapng file (recognised by magic, gunzipped when compressed), in
    batches as they are read (each a new list, counted in `stats` when handed out).

    Raises InputError for a file that cannot be opened or is not a capture, and for corrupt framing
    (naming the record and byte offset), after the batch of the records before it. A capture cut off
    mid-record logs a warning, counts `stats.truncated_records` and ends normally after the records before it.
    """
    stream = _Stream(path)
    try:
        head = stream.read()
        while 0 < len(head) < 12:  # a pipe or a gzip stream may hand out a few bytes at a time
            more = stream.read()
            if not more:
                break
            head += more
        if not head and not stream.cut:
            raise InputError(path, "empty file (0 bytes)", "empty")
        kind = _kind(head)
        if kind is None:
            raise InputError(path, "not a pcap or pcapng capture", "format")
        stats.captures += 1
        if kind == "pcap":
            yield from _pcap(path, stream, head, stats)
        else:
            yield from _pcapng(path, stream, head, stats)
    finally:
        stream.close()


def read_packets(path: str, stats: RunStats) -> Iterator[Packet]:
    """The records of `read_batches` one by one; a reader that stops early counts only what it was handed."""
    batch: list[Packet] = []
    handed = 0
    try:
        for batch in read_batches(path, stats):
            for handed, pkt in enumerate(batch, 1):  # noqa: B007 - `handed` is read when the reader stops early
                yield pkt
            handed = len(batch)
    finally:
        if handed < len(batch):
            stats.packets -= len(batch) - handed
            stats.packet_bytes -= sum(len(p.data) for p in batch[handed:])


def _cut(path: str, stats: RunStats, record: int, got: int, want: int) -> None:
    stats.truncated_records += 1
    logger.warning(
        "{}: capture cut off in record {} (got {} of {} bytes); the {} records before it were read",
        path,
        record,
        got,
        want,
        record - 1,
    )


def pcap_records(
    buf: bytes,
    off: int,
    big_endian: bool,
    units: float,
    linktype: int,
    index: int,
    path: str,
    max_record: int,
    out: list[Packet],
) -> tuple[int, int, int, int]:
    """The complete classic-pcap records of `buf` from `off`, appended to `out` (the reference of the compiled
    `_core.pcap_records`). Returns (offset after the last whole record, last record number, payload bytes,
    the captured length that is not credible or -1)."""
    record = _BIG_RECORD if big_endian else _LITTLE_RECORD
    n = len(buf)
    nbytes = 0
    while off + 16 <= n:
        sec, frac, incl, orig = record(buf, off)
        end = off + 16 + incl
        if end > n:
            if incl > max_record:
                return off, index, nbytes, incl
            break
        index += 1
        nbytes += incl
        out.append(_new(Packet, (sec + frac / units, linktype, buf[off + 16 : end], index, orig, path)))
        off = end
    return off, index, nbytes, -1


_BIG_RECORD = struct.Struct(">IIII").unpack_from
_LITTLE_RECORD = struct.Struct("<IIII").unpack_from


def _pcap(path: str, stream: _Stream, buf: bytes, stats: RunStats) -> Iterator[list[Packet]]:
    """Records of a classic pcap file; `buf` holds its first bytes. The record loop is the compiled core's
    when it loaded (sensor/native.py), this module's `pcap_records` otherwise."""
    order, units = _PCAP_MAGICS[buf[:4]]
    while len(buf) < 24:
        more = stream.read()
        if not more:
            raise InputError(path, f"capture cut off in its file header (got {len(buf)} of 24 bytes)", "truncated")
        buf += more
    # libpcap's LT_LINKTYPE: the upper 16 bits carry the FCS-length flag (0x04000000) and length (0xF0000000);
    # masking with 0x0FFFFFFF would leave the flag in.
    linktype = struct.unpack_from(order + "I", buf, 20)[0] & 0xFFFF
    records = native.pick("pcap_records", pcap_records)
    big = order == ">"
    off = 24
    index = 0

    def step(buf: bytes, off: int, base: int, batch: list[Packet]) -> tuple[int, int, InputError | None]:
        nonlocal index
        off, index, nbytes, bad = records(buf, off, big, float(units), linktype, index, path, MAX_RECORD, batch)
        what = f"record {index + 1} at byte {base + off}: captured length {bad} is not credible"
        return off, nbytes, InputError(path, what, "format") if bad >= 0 else None

    buf, off = yield from _batches(stream, buf, off, step, stats)
    left = len(buf) - off
    if left or stream.cut:
        want = 16 + (_BIG_RECORD if big else _LITTLE_RECORD)(buf, off)[2] if left >= 16 else 16
        _cut(path, stats, index + 1, left, want)


Step = Callable[[bytes, int, int, list[Packet]], tuple[int, int, "InputError | None"]]


Batches = Generator[list[Packet], None, tuple[bytes, int]]  # the batches, then (buffer, offset) at the end


def _batches(stream: _Stream, buf: bytes, off: int, step: Step, stats: RunStats) -> Batches:
    """The record loop both formats share: `step(buf, off, base, batch)` cuts the whole records of `buf` from
    `off` (base: the file offset of buf[0]) into `batch` and returns (offset after them, captured bytes, the
    framing error that stopped it or None); each batch is counted and handed out, then the buffer refilled.
    Returns the buffer and offset where the data ran out (a record cut off there is the caller's to report)."""
    base = 0
    while True:
        batch: list[Packet] = []
        off, nbytes, bad = step(buf, off, base, batch)
        if batch:
            stats.packets += len(batch)
            stats.packet_bytes += nbytes
            yield batch
        if bad is not None:
            raise bad
        more = stream.read()
        if not more:
            return buf, off
        base += off
        buf = buf[off:] + more
        off = 0


def _interface(buf: bytes, off: int, end: int, order: str) -> tuple[int, int, int, int]:
    """(linktype, snaplen, timestamp units per second, timestamp offset) of an Interface Description Block."""
    linktype, snaplen = struct.unpack_from(order + "H2xI", buf, off + 8)
    units, tsoffset = 1_000_000, 0
    option = struct.Struct(order + "HH").unpack_from
    p = off + 16
    while p + 4 <= end - 4:
        code, length = option(buf, p)
        if code == _OPT_END or p + 4 + length > end - 4:
            break
        if code == _OPT_TSRESOL and length >= 1:
            v = buf[p + 4]
            units = 2 ** (v & 0x7F) if v & 0x80 else 10**v
        elif code == _OPT_TSOFFSET and length >= 8:
            tsoffset = struct.unpack_from(order + "q", buf, p + 4)[0]
        p += 4 + ((length + 3) & ~3)
    return linktype, snaplen, units, tsoffset


class NgState:
    """Where a pcapng reader stands between buffers: the section's byte order, its interfaces (linktype,
    snaplen, timestamp units, offset), sections seen, the last timestamp (for SPBs) and the record number."""

    __slots__ = ("order", "interfaces", "sections", "last_ts", "index")

    def __init__(self) -> None:
        self.order = "<"
        self.interfaces: list[tuple[int, int, int, int]] = []
        self.sections = 0
        self.last_ts = 0.0
        self.index = 0


def pcapng_blocks(
    buf: bytes, off: int, base: int, st: NgState, path: str, out: list[Packet]
) -> tuple[int, int, InputError | None]:
    """The complete pcapng blocks of `buf` from `off` (`base`: the file offset of buf[0]): packets appended to
    `out`, sections and interfaces kept in `st` (the reference of the compiled `_core.pcapng_blocks`).
    Returns (offset after the last whole block, captured bytes, the corrupt framing that stopped it or None):
    the packets before a bad block are handed out before its error is raised."""
    order = st.order
    header = struct.Struct(order + "II").unpack_from
    word = struct.Struct(order + "I").unpack_from
    n = len(buf)
    nbytes = 0
    while off + 8 <= n:
        btype, blen = header(buf, off)
        if btype == _SHB:
            if off + 12 > n:
                break
            new_order = _BYTE_ORDER_MAGICS.get(buf[off + 8 : off + 12])
            if new_order is None:
                return (
                    off,
                    nbytes,
                    InputError(path, f"block at byte {base + off}: bad section byte-order magic", "format"),
                )
            if new_order != order:
                order = st.order = new_order
                header = struct.Struct(order + "II").unpack_from
                word = struct.Struct(order + "I").unpack_from
                btype, blen = header(buf, off)
        # a packet block too short for its own fixed fields (EPB and PB 32 bytes, SPB 16) is framing gone wrong
        if blen < 12 or blen & 3 or blen < _MIN_PACKET_BLOCK.get(btype, 0):
            where = f"record {st.index + 1}" if btype in (_EPB, _SPB, _PB) else "block"
            return off, nbytes, InputError(path, f"{where} at byte {base + off}: bad block length {blen}", "format")
        end = off + blen
        if end > n:
            if blen > MAX_RECORD:
                return (
                    off,
                    nbytes,
                    InputError(path, f"block at byte {base + off}: block length {blen} is not credible", "format"),
                )
            break
        if word(buf, end - 4)[0] != blen:
            what = f"block at byte {base + off}: block length {blen} does not match its trailer"
            return off, nbytes, InputError(path, what, "format")
        if btype in (_EPB, _PB):
            if btype == _EPB:
                iface, hi, lo, caplen, wirelen = struct.unpack_from(order + "IIIII", buf, off + 8)
            else:  # the obsolete Packet Block: a 16-bit interface id, then drops
                iface, hi, lo, caplen, wirelen = struct.unpack_from(order + "HxxIIII", buf, off + 8)
            if caplen > blen - 32 or iface >= len(st.interfaces):
                return off, nbytes, _bad_packet(path, st.index + 1, base + off, iface, caplen, st.interfaces)
            linktype, _, units, tsoffset = st.interfaces[iface]
            st.last_ts = ((hi << 32) | lo) / units + tsoffset
            st.index += 1
            nbytes += caplen
            out.append(_new(Packet, (st.last_ts, linktype, buf[off + 28 : off + 28 + caplen], st.index, wirelen, path)))
        elif btype == _SPB:
            if not st.interfaces:
                return off, nbytes, _bad_packet(path, st.index + 1, base + off, 0, 0, st.interfaces)
            linktype, snaplen, _, _ = st.interfaces[0]
            wirelen = word(buf, off + 8)[0]
            caplen = min(wirelen, blen - 16, snaplen or wirelen)
            st.index += 1
            nbytes += caplen
            out.append(_new(Packet, (st.last_ts, linktype, buf[off + 12 : off + 12 + caplen], st.index, wirelen, path)))
        elif btype == _IDB:
            if blen < 20:
                return (
                    off,
                    nbytes,
                    InputError(path, f"block at byte {base + off}: interface block too short ({blen} bytes)", "format"),
                )
            st.interfaces.append(_interface(buf, off, end, order))
        elif btype == _SHB:
            st.sections += 1
            st.interfaces = []
        off = end  # any other block (statistics, name resolution, custom...) is skipped
    return off, nbytes, None


def _pcapng(path: str, stream: _Stream, buf: bytes, stats: RunStats) -> Iterator[list[Packet]]:
    """Packets of a pcapng file: sections (each with its byte order), interfaces, EPB, SPB and PB. The block
    loop is the compiled core's when it loaded (sensor/native.py), this module's `pcapng_blocks` otherwise."""
    blocks = native.pick("pcapng_blocks", pcapng_blocks)
    st = NgState()
    buf, off = yield from _batches(stream, buf, 0, lambda b, o, base, out: blocks(b, o, base, st, path, out), stats)
    left = len(buf) - off
    if left or stream.cut:
        want = struct.unpack_from(st.order + "II", buf, off)[1] if left >= 8 else 8
        if st.sections == 0:
            what = f"capture cut off in its section header block (got {left} of {want} bytes)"
            raise InputError(path, what, "truncated")
        _cut(path, stats, st.index + 1, left, want)


def _bad_packet(
    path: str, record: int, pos: int, iface: int, caplen: int, interfaces: list[tuple[int, int, int, int]]
) -> InputError:
    if iface >= len(interfaces):
        what = f"unknown interface id {iface} ({len(interfaces)} described in this section)"
    else:
        what = f"captured length {caplen} does not fit in its block"
    return InputError(path, f"record {record} at byte {pos}: {what}", "format")
