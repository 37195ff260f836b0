"""Plain LZ77 "Xpress" (RtlCompressBuffer's COMPRESSION_FORMAT_XPRESS, [MS-XCA] 2.3-2.4): 32-bit flag words,
each bit a literal byte or a 16-bit copy token (13-bit offset, 3-bit length, longer lengths in shared nibbles,
then a byte, 16 or 32 bits). No header, no magic, no end marker: tried at an object's start only, after an
anchored rule checked that the first tokens can be decoded at all.

The decoder is our own rather than dissect.util's: that one has no output limit (a 32-bit length copies up to
4 GiB) and reads a copy from before the output's start as a shorter copy; it is the oracle of the tests."""

from __future__ import annotations

from typing import ClassVar

from sensor.detect.verifiers.base import TRUNCATED_MIN_OUTPUT, Context, Verified, verifiers
from sensor.detect.verifiers.lz_output import (
    WINDOW_CHECK,
    Decoding,
    typed_or_skewed,
    verified,
    written_by_a_compressor,
)
from sensor.model import Buffer, Candidate, Format

WINDOW = 8192  # 13 offset bits
GIVE_UP_AT = 64 * 1024  # input bytes after which an output still no larger than the input is not compression


def decode(data: Buffer, off: int, cap: int) -> Decoding:
    """Decode the Xpress stream at `off` as [MS-XCA] 2.4 does, with at most `cap` bytes of output.
    Read in place: a large mapped file is not copied to be tried."""
    with memoryview(data) as whole, whole[off:] as src:
        return _decode(src, cap)


def _decode(src: memoryview, cap: int) -> Decoding:
    n = len(src)
    out = bytearray()
    lits: list[int] = []
    pos = 0
    half = -1  # input position of the byte whose high nibble the next long length takes
    while True:
        if pos >= GIVE_UP_AT and len(out) <= pos:
            return Decoding(bytes(out), pos, "not_compressed", lits)
        if pos == n:
            return Decoding(bytes(out), pos, "end", lits)
        if pos + 4 > n:
            return Decoding(bytes(out), n, "data_end", lits)
        flags = int.from_bytes(src[pos : pos + 4], "little")
        pos += 4
        bit = 31
        while bit >= 0:
            low = flags & ((2 << bit) - 1)
            if not low >> bit:  # a run of literal bits: copy them in one slice
                run = bit + 1 if not low else bit - low.bit_length() + 1
                piece = bytes(src[pos : pos + run])
                if len(out) < WINDOW_CHECK:
                    lits.extend(range(len(out), len(out) + len(piece)))
                out += piece
                pos += len(piece)
                bit -= run
                if len(piece) < run:
                    return Decoding(bytes(out[:cap]), pos, "data_end", lits)
                if len(out) >= cap:
                    return Decoding(bytes(out[:cap]), pos, "cap", lits)
                continue
            bit -= 1
            if pos == n:  # a copy flag where the input ends: the padding the compressor writes, the end
                return Decoding(bytes(out), pos, "end", lits)
            if pos + 2 > n:
                return Decoding(bytes(out), n, "data_end", lits)
            token = src[pos] | src[pos + 1] << 8
            pos += 2
            length, distance = token & 7, (token >> 3) + 1
            if length == 7:
                if half < 0:
                    if pos >= n:
                        return Decoding(bytes(out), n, "data_end", lits)
                    length, half = src[pos] & 15, pos
                    pos += 1
                else:
                    length, half = src[half] >> 4, -1
                if length == 15:
                    if pos >= n:
                        return Decoding(bytes(out), n, "data_end", lits)
                    length = src[pos]
                    pos += 1
                    if length == 255:
                        if pos + 2 > n:
                            return Decoding(bytes(out), n, "data_end", lits)
                        length = src[pos] | src[pos + 1] << 8
                        pos += 2
                        if length == 0:
                            if pos + 4 > n:
                                return Decoding(bytes(out), n, "data_end", lits)
                            length = int.from_bytes(src[pos : pos + 4], "little")
                            pos += 4
                        if length < 15 + 7:
                            return Decoding(bytes(out), pos, "invalid", lits)
                        length -= 15 + 7
                    length += 15
                length += 7
            length += 3
            if distance > len(out):
                return Decoding(bytes(out), pos, "invalid", lits)
            length = min(length, cap - len(out))
            start = len(out) - distance
            if distance >= length:
                out += out[start : start + length]
            else:  # overlapping copy: the last `distance` bytes repeat
                out += (out[start:] * (length // distance + 1))[:length]
            if len(out) >= cap:
                return Decoding(bytes(out), pos, "cap", lits)


@verifiers.register(Format.XPRESS)
class XpressVerifier:
    """A stream that decodes from the object's start, grows, reads like a compressor's tokens and gives output
    that is typed or not noise."""

    format: ClassVar[Format] = Format.XPRESS

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        if cand.offset:
            return None  # no magic: nothing says where a stream inside other bytes would start
        dec = decode(data, 0, ctx.limits.max_output)
        out = dec.output
        if dec.status == "not_compressed" or len(out) < TRUNCATED_MIN_OUTPUT or len(out) <= dec.used:
            return None
        if not written_by_a_compressor(out, dec.literals, WINDOW) or not typed_or_skewed(out):
            return None
        return verified(Format.XPRESS, dec, ctx, "RtlCompressBuffer (Xpress)", f"{dec.used} bytes to {len(out)}")


__all__ = ["XpressVerifier", "decode"]
