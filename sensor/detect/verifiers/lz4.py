"""LZ4 frame: python-lz4 checks the header checksum, block and content checksums when flagged."""

from __future__ import annotations

from typing import ClassVar

from sensor.content import decompress
from sensor.detect.tarwalk import TarWalker
from sensor.detect.verifiers.base import Context, Verified, judge_stream, stream_member, verifiers
from sensor.model import Buffer, Candidate, Checksum, Format, Proof


@verifiers.register(Format.LZ4)
class Lz4Verifier:
    """Proven by its content checksum when the frame carries one, else by the volume rules."""

    format: ClassVar[Format] = Format.LZ4

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        h = bytes(data[off : off + 6])
        if len(h) < 6 or h[:4] != b"\x04\x22\x4d\x18" or h[4] >> 6 != 1 or h[4] & 2 or h[5] & 0x8F:
            return None
        content_checksum = bool(h[4] & 4)
        walker = TarWalker(ctx.limits.max_names)
        observers = (walker.feed,)
        dec = decompress.run(decompress.lz4_codec(), data, off, ctx.limits, ctx.where, observers)
        if dec.eof and content_checksum:
            verdict: tuple[Proof, Checksum, bool] | None = (Proof.CHECKSUM, Checksum.OK, False)
        elif dec.eof:
            # no content checksum: the header checksum, a consistent chain of block sizes and a
            # zero EndMark exactly where it belongs are the proof (random data after a valid magic
            # produced no output in 50,000 trials, SIGNATURES.md §2); incompressible data that lz4
            # stored verbatim still counts
            verdict = (Proof.STREAM_END, Checksum.NONE, False)
        else:
            verdict = judge_stream(dec, None, has_check=False)
        if verdict is None:
            return None
        return stream_member(
            Format.LZ4,
            off,
            dec.consumed,
            verdict,
            dec,
            walker.names,
        )
