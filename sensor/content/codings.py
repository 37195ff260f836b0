"""HTTP content codings (gzip, deflate, br, zstd, ...) undone with the same caps as member decoding.

An object sent with a content coding is itself a compressed member (the detector proves and
carves it); this module decodes it so the protocol layer can look inside, e.g. at a multipart
form posted gzip-encoded. Output is capped at `max_encoded`; what a cap or an error cut off is
reported, and whatever decoded before it is kept.
"""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass, replace

import cramjam
import zstandard

from sensor.config import Limits
from sensor.content.decompress import Codec, bz2_codec, inflate_codec, lzma_alone_codec, run, xz_codec
from sensor.content.headers import parse_header, zlib_header
from sensor.model import Buffer, Format, Limit, LimitHit, StreamDecode

TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
MAX_MEMBERS = 1024  # gzip members of one body decoded one after another

# Content-Encoding / Transfer-Encoding token -> the member format it declares
CODINGS: dict[str, Format] = {
    "gzip": Format.GZIP,
    "x-gzip": Format.GZIP,
    "deflate": Format.ZLIB,  # RFC 9110 says zlib; servers also send raw deflate (tried as well)
    "x-deflate": Format.ZLIB,
    "br": Format.BROTLI,
    "zstd": Format.ZSTD,
    "bzip2": Format.BZIP2,
    "x-bzip2": Format.BZIP2,
    "xz": Format.XZ,
    "lzma": Format.LZMA,
}


@dataclass(frozen=True, slots=True)
class Undone:
    """The result of undoing one coding: the bytes, and why it stopped early if it did.

    `member`: for gzip and zlib, the decode as their verifiers make it (header, raw inflate, no cap hit),
    so the detector proves the body from it instead of inflating it a second time.
    """

    coding: str
    data: bytes
    complete: bool
    limit: LimitHit | None
    error: str | None
    member: StreamDecode | None = None
    anomalies: tuple[str, ...] = ()  # how the coding bent its format (gzip_reserved_flags, gzip_members...)
    end: int = 0  # bytes of the input the decode used (gzip and zlib)


def parse_codings(value: str | None) -> tuple[list[str], list[str]]:
    """`Content-Encoding: gzip, br` -> (["gzip", "br"], []): the codings in the order applied, and the tokens
    that name none (dropped, as Firefox does; Chromium then shows the body undecoded, which is scanned too).
    Several headers arrive joined by commas; each item's token is read past blanks, quotes and junk (a CR)."""
    if not value:
        return [], []
    known: list[str] = []
    unknown: list[str] = []
    for item in value.split(","):
        m = TOKEN.match(item.strip(" \t\r\n\"'"))
        token = m.group(0).lower() if m else ""
        if not token or token == "identity":
            continue
        (known if token in CODINGS else unknown).append(token)
    return known, unknown


def undo(coding: str, data: Buffer, limits: Limits, where: str) -> Undone:
    """Decode one content coding of `data`, bounded by `max_encoded` output bytes and the time cap."""
    lim = replace(limits, max_output=limits.max_encoded)
    fmt = CODINGS.get(coding)
    if fmt is Format.BROTLI:
        return _brotli(coding, data, lim, where)
    if fmt is Format.ZSTD:
        return _zstd(coding, data, lim, where)
    once = _member(coding, fmt, data, 0, lim, where) if fmt is Format.GZIP or fmt is Format.ZLIB else None
    if once is not None and fmt is Format.GZIP:
        return _more_members(coding, once, data, lim, where)
    if once is not None and (once.complete or (once.error is None and once.data)):
        return once
    codecs: list[Codec]
    if fmt is Format.GZIP:
        codecs = [inflate_codec(31)]
    elif fmt is Format.ZLIB:
        # zlib-wrapped first (`once`, when its header is one); raw deflate is what many servers actually send
        # (zeek's missing-zlib-header): the longer reading wins
        codecs = [inflate_codec(-15)] if once is not None else [inflate_codec(15), inflate_codec(-15)]
    elif fmt is Format.BZIP2:
        codecs = [bz2_codec()]
    elif fmt is Format.XZ:
        codecs = [xz_codec()]
    elif fmt is Format.LZMA:
        codecs = [lzma_alone_codec()]
    else:
        return Undone(coding, b"", False, None, f"unknown coding {coding!r}")
    best: Undone | None = once
    for codec in codecs:
        out = bytearray()
        d = run(codec, data, 0, lim, where, observers=(out.extend,))
        result = Undone(coding, bytes(out), d.eof, d.limit, d.error)
        if d.eof or (d.error is None and out):
            return result
        if best is None or len(result.data) > len(best.data):
            best = result
    assert best is not None
    return best


def _more_members(coding: str, first: Undone, data: Buffer, lim: Limits, where: str) -> Undone:
    """A gzip body of several members (gzip's own multi-member files, or a server appending): decoded one after
    another into one output, as gzip -d, Python and curl read them (a reader that stops after the first member
    sees a prefix of it; that member is found on its own in the body)."""
    out, result, members = bytearray(first.data), first, 1
    while result.complete and members < MAX_MEMBERS and bytes(data[result.end : result.end + 2]) == b"\x1f\x8b":
        nxt = _member(coding, Format.GZIP, data, result.end, replace(lim, max_output=lim.max_output - len(out)), where)
        if nxt is None or not nxt.data and not nxt.complete:
            break
        out += nxt.data
        result, members = nxt, members + 1
    if members == 1:
        return first
    anomalies = tuple(dict.fromkeys(first.anomalies + result.anomalies + ("gzip_members",)))
    error = first.error or result.error
    return Undone(coding, bytes(out), result.complete, result.limit, error, None, anomalies, result.end)


def _member(coding: str, fmt: Format, data: Buffer, off: int, lim: Limits, where: str) -> Undone | None:
    """gzip or zlib at `off` decoded the way their verifiers do it: the header read here, the deflate stream
    raw-inflated, the trailer (CRC-32 and ISIZE, or Adler-32) checked over the output. None when the header is
    not one (zlib then tries its other readings: raw deflate, as many servers send). A gzip header with reserved
    flag bits or a wrong FHCRC is read leniently (no verifier decode is kept for it then)."""
    anomalies: tuple[str, ...] = ()
    if fmt is Format.GZIP:
        hdr = parse_header(data, off)
        if hdr is None:
            hdr = parse_header(data, off, lenient=True)
            if hdr is None:
                return None
            anomalies = ("gzip_header_flags",)
        start, trailer = off + hdr[0], 8
    else:
        if not zlib_header(data, off):
            return None
        start, trailer = off + 2, 4
    out = bytearray()
    d = run(inflate_codec(-15), data, start, lim, where, observers=(out.extend,))
    output = bytes(out)
    check = zlib.crc32(output) if fmt is Format.GZIP else zlib.adler32(output)
    error = d.error
    complete = False
    if d.eof:
        tail = bytes(data[start + d.consumed : start + d.consumed + trailer])
        if len(tail) == trailer:
            if fmt is Format.GZIP:
                crc, size = int.from_bytes(tail[:4], "little"), int.from_bytes(tail[4:], "little")
                if crc != check:
                    error = "incorrect data check"
                elif size != len(output) & 0xFFFFFFFF:
                    error = "incorrect length check"
            elif int.from_bytes(tail, "big") != check:
                error = "incorrect data check"
            complete = d.error is None  # all there: a wrong check is recorded (bad_checksum), the bytes are whole
    member = None
    if d.limit is None and not anomalies and off == 0:
        # a capped decode is not the verifier's (its cap is max_output): it decodes itself
        member = StreamDecode(fmt, start, output, check, d.consumed, d.eof, d.error, d.head, d.data_ended)
    if error in ("incorrect data check", "incorrect length check"):
        anomalies += ("bad_checksum",)
    return Undone(coding, output, complete, d.limit, error, member, anomalies, start + d.consumed + trailer)


def _brotli(coding: str, data: Buffer, lim: Limits, where: str) -> Undone:
    # cramjam decodes into a fixed buffer: the cap is the buffer; a truncated stream yields nothing
    size = min(lim.max_output, max(64 * 1024, lim.max_ratio * len(data)))
    out = bytearray(size)
    try:
        n = cramjam.brotli.decompress_into(bytes(data), out)
    except cramjam.DecompressionError as e:
        if "whole buffer" in str(e):
            return Undone(coding, b"", False, LimitHit(Limit.OUTPUT_BYTES, where, size), None)
        return Undone(coding, b"", False, None, str(e))
    return Undone(coding, bytes(out[:n]), True, None, None)


def _zstd(coding: str, data: Buffer, lim: Limits, where: str) -> Undone:
    out = bytearray()
    error = None
    try:
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(bytes(data)), read_across_frames=True) as r:
            while len(out) < lim.max_output:
                piece = r.read(256 * 1024)
                if not piece:
                    break
                out += piece
    except zstandard.ZstdError as e:
        error = str(e)
    hit = LimitHit(Limit.OUTPUT_BYTES, where, len(out)) if len(out) >= lim.max_output else None
    return Undone(coding, bytes(out[: lim.max_output]), error is None and hit is None, hit, error)


__all__ = ["CODINGS", "Undone", "parse_codings", "undo"]
