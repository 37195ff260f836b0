"""LZNT1 (RtlCompressBuffer's COMPRESSION_FORMAT_LZNT1, [MS-XCA] 2.5): Windows' own compression, which malware
calls from ntdll instead of shipping zlib. No magic: a candidate is a chunk header word at an object's start.
Each 4 KiB chunk is decoded on its own (dissect.util, which has no output limit, so it is fed one chunk at a
time under our cap); a zero word or the data's end ends the stream. LZ77 decodes almost anything, so a member is
verified only when at least 4 KiB comes out and that output is typed by libmagic or is not uniform."""

from __future__ import annotations

from typing import ClassVar

from sensor.detect.verifiers.base import TRUNCATED_MIN_OUTPUT, Context, Verified, verifiers
from sensor.detect.verifiers.lz_output import typed_or_skewed
from sensor.model import Buffer, Candidate, Format, Limit, LimitHit, Proof

CHUNK = 4096


def decode(data: Buffer, off: int, cap: int) -> tuple[bytes, int, bool, bool]:
    """(output, bytes consumed, ended by its zero word, cut by `cap`) of the LZNT1 stream at `off`."""
    from dissect.util.compression import lznt1

    out = bytearray()
    pos = off
    while pos + 2 <= len(data):
        word = int.from_bytes(bytes(data[pos : pos + 2]), "little")
        if word == 0:
            return bytes(out), pos + 2 - off, True, False
        size = (word & 0x0FFF) + 3
        chunk = bytes(data[pos : pos + size])
        if word & 0x7000 != 0x3000 or len(chunk) < size:
            break
        if word & 0x8000:
            try:
                piece = lznt1.decompress(chunk)
            except Exception:  # noqa: BLE001 - a hostile chunk makes dissect raise many kinds: the stream ends here
                break
            if len(piece) > CHUNK:
                break
        else:
            piece = chunk[2:]
        out += piece
        pos += size
        if len(out) >= cap:
            return bytes(out[:cap]), pos - off, False, True
    return bytes(out), pos - off, False, False


@verifiers.register(Format.LZNT1)
class Lznt1Verifier:
    """Chunks that decode, 4 KiB of output or more, and output that is not noise."""

    format: ClassVar[Format] = Format.LZNT1

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        out, used, ended, capped = decode(data, off, ctx.limits.max_output)
        if len(out) < TRUNCATED_MIN_OUTPUT or len(out) <= used:
            return None  # too little, or no smaller than what it came from: not compression
        if not typed_or_skewed(out):
            return None
        limits = [LimitHit(Limit.OUTPUT_BYTES, ctx.where, ctx.limits.max_output)] if capped else []
        return Verified(
            format=Format.LZNT1,
            offset=off,
            length=used,
            proof=Proof.STREAM_END if ended else Proof.OBJECT_END,
            truncated=not ended and off + used < len(data),
            head=out[: ctx.limits.inner_head],
            inner_size=len(out),
            inner_complete=not capped,
            limits=limits,
            writer="RtlCompressBuffer (LZNT1)",
            detail=f"{used} bytes in {-(-len(out) // CHUNK)} chunks",
        )


__all__ = ["Lznt1Verifier", "decode"]
