"""HTTP content codings (gzip, deflate, br, zstd, ...) undone with the same caps as member decoding.

An object sent with a content coding is itself a compressed member (the detector proves and
carves it); this module decodes it so the protocol layer can look inside, e.g. at a multipart
form posted gzip-encoded. Output is capped at `max_encoded`; what a cap or an error cut off is
reported, and whatever decoded before it is kept.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

import cramjam
import zstandard

from sensor.config import Limits
from sensor.content.decompress import Codec, bz2_codec, inflate_codec, lzma_alone_codec, run, xz_codec
from sensor.model import Buffer, Format, Limit, LimitHit

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
    """The result of undoing one coding: the bytes, and why it stopped early if it did."""

    coding: str
    data: bytes
    complete: bool
    limit: LimitHit | None
    error: str | None


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
    codecs: list[Codec]
    if fmt is Format.GZIP:
        codecs = [inflate_codec(31)]
    elif fmt is Format.ZLIB:
        # zlib-wrapped first; raw deflate is what many servers actually send (zeek's missing-zlib-header)
        codecs = [inflate_codec(15), inflate_codec(-15)]
    elif fmt is Format.BZIP2:
        codecs = [bz2_codec()]
    elif fmt is Format.XZ:
        codecs = [xz_codec()]
    elif fmt is Format.LZMA:
        codecs = [lzma_alone_codec()]
    else:
        return Undone(coding, b"", False, None, f"unknown coding {coding!r}")
    best: Undone | None = None
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
