"""Raw deflate (no header; .NET DeflateStream): tried at object start, or after the legacy .NET preamble."""

from __future__ import annotations

from typing import ClassVar

from sensor.content import decompress
from sensor.detect.tarwalk import TarWalker
from sensor.detect.verifiers.base import Context, Verified, judge_stream, stream_member, verifiers
from sensor.model import Buffer, Candidate, Checksum, Format, Proof

DOTNET_RULE = "dotnet_legacy_deflate"
END_SLACK = 8  # a stream at object start must end this close to the object's end (SIGNATURES.md §1.3)
MIN_OUTPUT = 64
MIN_RATIO = 1.1


@verifiers.register(Format.DEFLATE)
class DeflateVerifier:
    """No magic: plausible only when the stream fills the object, or behind the 128-bit .NET preamble."""

    format: ClassVar[Format] = Format.DEFLATE

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        dotnet = cand.rule == DOTNET_RULE
        if not dotnet and (not ctx.at_object_start or off != 0):
            return None
        first = bytes(data[off : off + 1])
        if not first or first[0] & 6 == 6:
            return None
        walker = TarWalker(ctx.limits.max_names)
        observers = (walker.feed,)
        dec = decompress.run(decompress.inflate_codec(-15), data, off, ctx.limits, ctx.where, observers)
        end = off + dec.consumed
        if dec.eof:
            fills = len(data) - end <= END_SLACK
            # a body declared deflate-coded needs no plausibility margin: the sender said what it is
            declared = ctx.declared in (Format.DEFLATE, Format.ZLIB) and fills and dec.output > 0
            plausible = fills and dec.output >= MIN_OUTPUT and dec.ratio >= MIN_RATIO
            if not (dotnet and dec.output > 0) and not declared and not plausible:
                return None
            proof, checksum, truncated = Proof.STREAM_END, Checksum.NONE, False
        else:
            verdict = judge_stream(dec, None, has_check=False)
            if verdict is None:
                return None
            proof, checksum, truncated = verdict
        return stream_member(
            Format.DEFLATE,
            off,
            end - off,
            (proof, checksum, truncated),
            dec,
            walker.names,
            writer="legacy .NET DeflateStream" if dotnet else None,
        )
