"""zlib (RFC 1950): header arithmetic, raw inflate, Adler-32 computed here to tell ok from bad."""

from __future__ import annotations

import zlib
from typing import ClassVar

from sensor.content.headers import zlib_header
from sensor.detect.tarwalk import TarWalker
from sensor.detect.verifiers.base import Context, Verified, inflate_stream, judge_stream, stream_member, verifiers
from sensor.model import Buffer, Candidate, Format

FLEVEL = {0: "fastest", 1: "fast", 2: "default", 3: "maximum"}


@verifiers.register(Format.ZLIB)
class ZlibVerifier:
    """Verified by Adler-32 at the end of stream; preset-dictionary streams cannot be decoded."""

    format: ClassVar[Format] = Format.ZLIB

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        h = bytes(data[off : off + 3])
        if len(h) < 3 or not zlib_header(h, 0):
            return None
        cmf, flg = h[0], h[1]
        if h[2] & 6 == 6:
            return None  # first deflate block of type 11 (invalid)
        walker = TarWalker(ctx.limits.max_names)
        dec, adler = inflate_stream(data, Format.ZLIB, off, off + 2, ctx, zlib.adler32, walker.feed)
        end = off + 2 + dec.consumed
        check: bool | None = None
        if dec.eof:
            trailer = bytes(data[end : end + 4])
            if len(trailer) == 4:
                check = int.from_bytes(trailer, "big") == adler
                end += 4
        verdict = judge_stream(dec, check)
        if verdict is None:
            return None
        return stream_member(
            Format.ZLIB,
            off,
            end - off,
            verdict,
            dec,
            walker.names,
            detail=f"window {1 << ((cmf >> 4) + 8)}, level {FLEVEL[flg >> 6]}",
        )
