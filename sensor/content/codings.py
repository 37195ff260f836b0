"""HTTP content codings (gzip, deflate, br, zstd, ...) undone with the same caps as member decoding.

An object sent with a content coding is itself a compressed member (the detector proves and
carves it); this module decodes it so the protocol layer can look inside, e.g. at a multipart
form posted gzip-encoded. Output is capped at `max_encoded`; what a cap or an error cut off is
reported, and whatever decoded before it is kept.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass, replace

import cramjam
import zstandard

from sensor.config import Limits
from sensor.content.decompress import Codec, bz2_codec, inflate_codec, lzma_alone_codec, run, xz_codec
from sensor.content.headers import parse_header, zlib_header
from sensor.model import Buffer, Format, Limit, LimitHit, StreamDecode

# Content-Encoding / Transfer-Encoding token -> the member format it declares
CODINGS: dict[str, Format] = {
    "gzip": Format.GZIP,
    "x-gzip": Format.GZIP,
    "deflate": Format.ZLIB,  # RFC 9110 says zlib; servers also send raw deflate (tried as well)
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


def parse_codings(value: str | None) -> list[str]:
    """`Content-Encoding: gzip, br` -> ["gzip", "br"] (applied in that order); identity dropped."""
    if not value:
        return []
    return [t.strip().lower() for t in value.split(",") if t.strip() and t.strip().lower() != "identity"]


def undo(coding: str, data: Buffer, limits: Limits, where: str) -> Undone:
    """Decode one content coding of `data`, bounded by `max_encoded` output bytes and the time cap."""
    lim = replace(limits, max_output=limits.max_encoded)
    fmt = CODINGS.get(coding)
    if fmt is Format.BROTLI:
        return _brotli(coding, data, lim, where)
    if fmt is Format.ZSTD:
        return _zstd(coding, data, lim, where)
    once = _member(coding, fmt, data, lim, where) if fmt is Format.GZIP or fmt is Format.ZLIB else None
    if once is not None and (fmt is Format.GZIP or once.complete or (once.error is None and once.data)):
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


def _member(coding: str, fmt: Format, data: Buffer, lim: Limits, where: str) -> Undone | None:
    """gzip or zlib decoded the way their verifiers do it: the header read here, the deflate stream raw-inflated,
    the trailer (CRC-32 and ISIZE, or Adler-32) checked over the output. None when the header is not one
    (zlib then tries its other readings: raw deflate, as many servers send)."""
    if fmt is Format.GZIP:
        hdr = parse_header(data, 0)
        if hdr is None:
            return None
        start, trailer = hdr[0], 8
    else:
        if not zlib_header(data, 0):
            return None
        start, trailer = 2, 4
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
            complete = error is None
    member = None
    if d.limit is None:  # a capped decode is not the verifier's (its cap is max_output): it decodes itself
        member = StreamDecode(fmt, start, output, check, d.consumed, d.eof, d.error, d.head, d.data_ended)
    return Undone(coding, output, complete, d.limit, error, member)


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
