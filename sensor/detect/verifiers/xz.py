"""xz: stream-header and block-header CRCs, then liblzma, which checks the stream's own check."""

from __future__ import annotations

import zlib
from typing import ClassVar

from sensor.content import decompress
from sensor.detect.tarwalk import TarWalker
from sensor.detect.verifiers.base import Context, Verified, judge_stream, stream_member, verifiers
from sensor.model import Buffer, Candidate, Checksum, Format, Proof

MAGIC = b"\xfd7zXZ\x00"
CHECKS = {0: "none", 1: "CRC32", 4: "CRC64", 10: "SHA-256"}


@verifiers.register(Format.XZ)
class XzVerifier:
    """94 bits of header make a structural proof; a whole stream is proven by its check."""

    format: ClassVar[Format] = Format.XZ

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        h = bytes(data[off : off + 12])
        if len(h) < 12 or h[:6] != MAGIC or h[6] != 0 or h[7] not in CHECKS:
            return None
        if zlib.crc32(h[6:8]) != int.from_bytes(h[8:12], "little"):
            return None
        bh = bytes(data[off + 12 : off + 13 + 1024])
        if bh and bh[0]:  # a block (a zero byte here starts the index of an empty stream)
            size = (bh[0] + 1) * 4
            if len(bh) >= size and zlib.crc32(bh[: size - 4]) != int.from_bytes(bh[size - 4 : size], "little"):
                return None
        walker = TarWalker(ctx.limits.max_names)
        observers = (walker.feed,)
        dec = decompress.run(decompress.xz_codec(), data, off, ctx.limits, ctx.where, observers)
        has_check = h[7] != 0
        if dec.eof:
            proof, checksum, truncated = (
                (Proof.CHECKSUM, Checksum.OK, False)
                if has_check
                else (
                    Proof.STREAM_END,
                    Checksum.NONE,
                    False,
                )
            )
        else:
            verdict = judge_stream(dec, None, has_check=False)
            if verdict is None:
                if dec.error is not None:
                    return None
                verdict = (Proof.STRUCTURE, Checksum.NONE, dec.data_ended)
            proof, checksum, truncated = verdict
        return stream_member(
            Format.XZ,
            off,
            dec.consumed,
            (proof, checksum, truncated),
            dec,
            walker.names,
            detail=f"check {CHECKS[h[7]]}",
        )
