"""lzma-alone (.lzma): header plausibility that liblzma skips for FORMAT_ALONE, then a bounded decode."""

from __future__ import annotations

from typing import ClassVar

from sensor.content import decompress
from sensor.detect.tarwalk import TarWalker
from sensor.detect.verifiers.base import Context, Verified, judge_stream, stream_member, verifiers
from sensor.model import Buffer, Candidate, Format

UNKNOWN_SIZE = (1 << 64) - 1


def plausible_dictionary(d: int) -> bool:
    """liblzma's picky test: 2^n or 2^n + 2^(n-1) (SIGNATURES.md §1.6)."""
    if d == 0:
        return False
    if d & (d - 1) == 0:
        return True
    return d % 3 == 0 and (d // 3) & (d // 3 - 1) == 0


@verifiers.register(Format.LZMA)
class LzmaVerifier:
    """No checksum in the format: a clean end-of-payload, or the volume rules, prove it."""

    format: ClassVar[Format] = Format.LZMA

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        h = bytes(data[off : off + 14])
        if len(h) < 14 or h[0] >= 225 or h[13] != 0:
            return None
        dictionary = int.from_bytes(h[1:5], "little")
        size = int.from_bytes(h[5:13], "little")
        if not plausible_dictionary(dictionary) or (size != UNKNOWN_SIZE and size >= 1 << 38):
            return None
        walker = TarWalker(ctx.limits.max_names)
        observers = (walker.feed,)
        dec = decompress.run(decompress.lzma_alone_codec(), data, off, ctx.limits, ctx.where, observers)
        verdict = judge_stream(dec, None, has_check=False)
        if verdict is None or (dec.eof and size == UNKNOWN_SIZE and dec.output == 0):
            if dec.limit is not None and ctx.unproven is not None:
                ctx.unproven.append(dec.limit)  # stopped (a 2 GiB dictionary...), not disproven: counted
            return None
        lc, rest = h[0] % 9, h[0] // 9
        return stream_member(
            Format.LZMA,
            off,
            dec.consumed,
            verdict,
            dec,
            walker.names,
            detail=f"lc{lc} lp{rest % 5} pb{rest // 5}, dictionary {dictionary}",
        )
