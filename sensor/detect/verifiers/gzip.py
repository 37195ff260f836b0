"""gzip (RFC 1952): header walk, raw inflate, CRC-32 and ISIZE, writer attribution."""

from __future__ import annotations

import zlib
from typing import ClassVar

from sensor.content.headers import FNAME, parse_header
from sensor.detect.tarwalk import TarWalker
from sensor.detect.verifiers.base import Context, Verified, inflate_stream, judge_stream, stream_member, verifiers
from sensor.model import Buffer, Candidate, Checksum, Format, Proof


def writer_of(flg: int, name: str | None, mtime: int, xfl: int, os_: int) -> str | None:
    """Library attribution from soft fields (SIGNATURES.md §1.16); a hint, never a filter."""
    if name == "" and flg & FNAME:
        return "python tarfile (stream mode)"
    if mtime == 0 and xfl == 4 and os_ == 0:
        return ".NET Framework GZipStream"
    if mtime == 0 and os_ == 10:
        return "zlib (Windows; .NET Core GZipStream)"
    if mtime == 0 and os_ in (3, 11, 19):
        return "zlib"
    if mtime == 0 and os_ == 0:
        return "Java GZIPOutputStream (JDK <= 15)"
    if mtime == 0 and os_ == 255:
        return "Go, Java >= 16 or libdeflate"
    if os_ == 255 and mtime:
        return "python gzip"
    return None


@verifiers.register(Format.GZIP)
class GzipVerifier:
    """Verified by CRC-32 + ISIZE when the member ends, else by the truncated/volume rules."""

    format: ClassVar[Format] = Format.GZIP

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        # a body the protocol declares gzip-coded is read from its first byte as browsers read it (reserved flag
        # bits, a wrong FHCRC) and a wrong CRC or ISIZE there is a damaged member, not an accident
        declared = ctx.declared is Format.GZIP and off == 0 and ctx.at_object_start
        hdr = parse_header(data, off) or (parse_header(data, off, lenient=True) if declared else None)
        if hdr is None:
            return None
        hlen, name, mtime, xfl, os_ = hdr
        walker = TarWalker(ctx.limits.max_names)
        dec, crc = inflate_stream(data, Format.GZIP, off, off + hlen, ctx, zlib.crc32, walker.feed)
        end = off + hlen + dec.consumed
        check: bool | None = None
        if dec.eof:
            trailer = bytes(data[end : end + 8])
            if len(trailer) == 8:
                want_crc, want_size = int.from_bytes(trailer[:4], "little"), int.from_bytes(trailer[4:], "little")
                check = want_crc == crc and want_size == dec.output & 0xFFFFFFFF
                end += 8
        verdict = judge_stream(dec, check)
        if verdict is None and declared and dec.eof and check is False and dec.output:
            verdict = Proof.STREAM_END, Checksum.BAD, False
        if verdict is None:
            return None
        flg = bytes(data[off + 3 : off + 4])[0]
        return stream_member(
            Format.GZIP,
            off,
            end - off,
            verdict,
            dec,
            walker.names,
            stored_name=name,
            header_mtime=mtime or None,
            writer=writer_of(flg, name, mtime, xfl, os_),
        )
