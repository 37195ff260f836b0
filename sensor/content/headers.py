"""The gzip (RFC 1952) and zlib (RFC 1950) member headers: read the same way by the HTTP content-coding
decoder and the verifiers."""

from __future__ import annotations

import zlib

from sensor.model import Buffer
from sensor.names import from_bytes

FTEXT, FHCRC, FEXTRA, FNAME, FCOMMENT = 1, 2, 4, 8, 16
MAX_NAME = 1024
MAX_COMMENT = 64 * 1024


def parse_header(data: Buffer, off: int, lenient: bool = False) -> tuple[int, str | None, int, int, int] | None:
    """(header length, FNAME, MTIME, XFL, OS), or None when a hard field or the FHCRC is wrong.

    `lenient` reads the header as a tolerant decoder does: reserved flag bits ignored, the FHCRC not checked
    (an HTTP body declared gzip is decoded so; the member verifier stays strict)."""
    h = bytes(data[off : off + 10])
    if len(h) < 10 or h[:3] != b"\x1f\x8b\x08" or (h[3] & 0xE0 and not lenient):
        return None
    flg = h[3]
    pos = off + 10
    if flg & FEXTRA:
        x = bytes(data[pos : pos + 2])
        if len(x) < 2:
            return None
        pos += 2 + int.from_bytes(x, "little")
    name = None
    for flag, cap in ((FNAME, MAX_NAME), (FCOMMENT, MAX_COMMENT)):
        if flg & flag:
            chunk = bytes(data[pos : pos + cap])
            nul = chunk.find(b"\x00")
            if nul < 0:
                return None
            if flag == FNAME:
                name = from_bytes(chunk[:nul])  # RFC 1952 says Latin-1; gzip writes the file name's own bytes
            pos += nul + 1
    if flg & FHCRC:
        crc = bytes(data[pos : pos + 2])
        if len(crc) < 2 or (not lenient and zlib.crc32(bytes(data[off:pos])) & 0xFFFF != int.from_bytes(crc, "little")):
            return None
        pos += 2
    if pos > len(data):
        return None
    return pos - off, name, int.from_bytes(h[4:8], "little"), h[8], h[9]


def zlib_header(data: Buffer, off: int) -> bool:
    """CMF and FLG of a zlib stream that can be decoded: deflate, a window of 32 KiB or less, FCHECK right,
    no preset dictionary (FDICT streams cannot be decoded without it, so are never verified)."""
    h = bytes(data[off : off + 2])
    return len(h) == 2 and h[0] & 0x0F == 8 and h[0] >> 4 <= 7 and (h[0] << 8 | h[1]) % 31 == 0 and not h[1] & 0x20
