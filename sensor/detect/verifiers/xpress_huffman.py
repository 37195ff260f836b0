"""LZ77+Huffman "Xpress Huffman" (RtlCompressBuffer's COMPRESSION_FORMAT_XPRESS_HUFF, [MS-XCA] 2.1-2.2): blocks
of 64 KiB of output, each opened by 256 bytes holding the 4-bit code lengths of 512 symbols (256 literals, 256
copy symbols of length and offset-bit count), then a bit stream read 16 bits at a time with the extra length
bytes between its words; symbol 256 where the input ends is the end of the stream. Tried at an object's start
only, and only when the lengths make a complete prefix code (Kraft sum exactly 1), which random bytes never do.

Our own decoder, table-driven (one lookup per symbol); dissect.util's walks a tree bit by bit with no output
limit, and is the oracle of the tests."""

from __future__ import annotations

from typing import ClassVar

from sensor.detect.verifiers.base import TRUNCATED_MIN_OUTPUT, Context, Verified, verifiers
from sensor.detect.verifiers.lz_output import Decoding, typed_or_skewed, verified
from sensor.model import Buffer, Candidate, Format

TABLE = 256
BLOCK = 65536
BITS = 15
_WEIGHT = [0] + [1 << (BITS - n) for n in range(1, 16)]
_TABLE_WEIGHT = [_WEIGHT[b & 15] + _WEIGHT[b >> 4] for b in range(256)]
END_SLACK = 4  # input bytes that may follow the end symbol (the bit stream's last, padding words)


def complete_code(table: bytes) -> bool:
    """True when the 512 lengths in `table` make a complete prefix code, or are one symbol of one bit (what a
    compressor writes for an empty input: the end symbol alone)."""
    total = sum(map(_TABLE_WEIGHT.__getitem__, table))
    return total == 1 << BITS or (total == 1 << (BITS - 1) and sum(1 for b in table if b) == 1)


def _lookup(table: bytes) -> list[int]:
    """The 2^15-entry decoding table of canonical codes: (symbol << 4 | length), -1 where no code starts."""
    lengths = [(b >> 4 * k) & 15 for b in table for k in (0, 1)]
    order = sorted((n, sym) for sym, n in enumerate(lengths) if n)
    out = [-1] * (1 << BITS)
    code = prev = 0
    for n, sym in order:
        code <<= n - prev
        prev = n
        span = 1 << (BITS - n)
        out[code * span : code * span + span] = [sym << 4 | n] * span
        code += 1
    return out


def decode(data: Buffer, off: int, cap: int) -> Decoding:
    """Decode the Xpress Huffman stream at `off` as [MS-XCA] 2.2 does, with at most `cap` bytes of output.
    Read in place: a large mapped file is not copied to be tried."""
    with memoryview(data) as whole, whole[off:] as src:
        return _decode(src, cap)


def _decode(src: memoryview, cap: int) -> Decoding:
    n = len(src)
    out = bytearray()
    pos = 0
    wide = False

    def word(at: int) -> int:
        return src[at] | src[at + 1] << 8 if at + 2 <= n else (src[at] if at < n else 0)

    while True:
        if pos == n:
            return Decoding(bytes(out), pos, "end", [], wide)
        if pos + TABLE + 4 > n:
            return Decoding(bytes(out), n, "data_end", [])
        table = bytes(src[pos : pos + TABLE])
        if not complete_code(table):
            return Decoding(bytes(out), pos, "invalid", [])
        codes = _lookup(table)
        cur = pos + TABLE
        bits = word(cur) << 16 | word(cur + 2)
        cur += 4
        extra = 16
        block_end = len(out) + BLOCK
        while len(out) < block_end:
            if cur > n:
                return Decoding(bytes(out), n, "data_end", [])
            entry = codes[bits >> 17]
            if entry < 0:
                return Decoding(bytes(out), cur, "invalid", [])
            sym, size = entry >> 4, entry & 15
            bits = (bits << size) & 0xFFFFFFFF
            extra -= size
            if extra < 0:
                bits |= word(cur) << -extra
                extra += 16
                cur += 2
            if sym < 256:
                out.append(sym)
                continue
            if sym == 256 and n - cur <= END_SLACK:
                return Decoding(bytes(out), n, "end", [], wide)
            sym -= 256
            length, offset_bits = sym & 15, sym >> 4
            if length == 15:
                if cur >= n:
                    return Decoding(bytes(out), n, "data_end", [])
                length = src[cur] + 15
                cur += 1
                if length == 270:
                    if cur + 2 > n:
                        return Decoding(bytes(out), n, "data_end", [])
                    length = word(cur)
                    cur += 2
                    if length == 0:  # Windows 8 and later: a 32-bit length
                        if cur + 4 > n:
                            return Decoding(bytes(out), n, "data_end", [])
                        length = int.from_bytes(src[cur : cur + 4], "little")
                        cur += 4
                        wide = True
                    if length < 15:
                        return Decoding(bytes(out), cur, "invalid", [])
            length += 3
            distance = (bits >> (32 - offset_bits) if offset_bits else 0) + (1 << offset_bits)
            bits = (bits << offset_bits) & 0xFFFFFFFF
            extra -= offset_bits
            if extra < 0:
                bits |= word(cur) << -extra
                extra += 16
                cur += 2
            if distance > len(out):
                return Decoding(bytes(out), cur, "invalid", [])
            length = min(length, cap - len(out))
            start = len(out) - distance
            if distance >= length:
                out += out[start : start + length]
            else:
                out += (out[start:] * (length // distance + 1))[:length]
            if len(out) >= cap:
                return Decoding(bytes(out), min(cur, n), "cap", [])
        pos = min(cur, n)


@verifiers.register(Format.XPRESS_HUFFMAN)
class XpressHuffmanVerifier:
    """Complete code tables block after block, an output larger than the input, typed or not noise."""

    format: ClassVar[Format] = Format.XPRESS_HUFFMAN

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        if cand.offset:
            return None
        dec = decode(data, 0, ctx.limits.max_output)
        out = dec.output
        if len(out) < TRUNCATED_MIN_OUTPUT or len(out) <= dec.used or not typed_or_skewed(out):
            return None
        blocks = -(-len(out) // BLOCK)
        detail = f"{dec.used} bytes in {blocks} blocks to {len(out)}"
        return verified(Format.XPRESS_HUFFMAN, dec, ctx, "RtlCompressBuffer (Xpress Huffman)", detail)


__all__ = ["XpressHuffmanVerifier", "complete_code", "decode"]
