"""Test-only compressors of Windows' RtlCompressBuffer formats, written from [MS-XCA], for members no library
here can write: LZNT1 (section 2.5: 4 KiB chunks of flag-grouped literals and copy tokens whose offset/length
split depends on the position in the chunk); plain LZ77 and LZ77+Huffman come next. Greedy matching: not
Windows' exact bytes, but bytes any decoder that follows the specification reads back (the decoder is checked
against the specification's own example in the tests)."""

from __future__ import annotations

import struct

CHUNK = 4096


def _lznt1_chunk(src: bytes) -> bytes:
    out = bytearray()
    pos = 0
    seen: dict[bytes, list[int]] = {}
    while pos < len(src):
        flag_at = len(out)
        out.append(0)
        flags = 0
        for bit in range(8):
            if pos >= len(src):
                break
            best_len, best_off = 0, 0
            if pos:
                d = 0
                while ((pos - 1) >> d) >= 0x10:
                    d += 1
                max_off, max_len = 1 << (4 + d), (0xFFF >> d) + 3
                for cand in reversed(seen.get(src[pos : pos + 3], [])[-32:]):
                    off = pos - cand
                    if off > max_off:
                        break
                    n = 0
                    while n < max_len and pos + n < len(src) and src[cand + n] == src[pos + n]:
                        n += 1
                    if n > best_len:
                        best_len, best_off = n, off
            if best_len >= 3:
                out += struct.pack("<H", ((best_off - 1) << (12 - d)) | (best_len - 3))
                flags |= 1 << bit
                step = best_len
            else:
                out.append(src[pos])
                step = 1
            for p in range(pos, pos + step):
                seen.setdefault(src[p : p + 3], []).append(p)
            pos += step
        out[flag_at] = flags
    return bytes(out)


def lznt1(data: bytes) -> bytes:
    """LZNT1 as RtlCompressBuffer(COMPRESSION_FORMAT_LZNT1) lays it out: a header word per 4 KiB chunk (bit 15
    compressed, signature 3 in bits 12-14, size - 3), a chunk stored raw when compressing does not shrink it."""
    out = bytearray()
    for i in range(0, len(data), CHUNK):
        src = data[i : i + CHUNK]
        body = _lznt1_chunk(src)
        if len(body) < len(src):
            out += struct.pack("<H", 0xB000 | (len(body) + 2 - 3)) + body
        else:
            out += struct.pack("<H", 0x3000 | (len(src) + 2 - 3)) + src
    return bytes(out)


# [MS-XCA] 3.3: the 142-byte example and the 59 bytes the standard engine writes for it
SPEC_LZNT1_TEXT = (
    b"F# F# G A A G F# E D D E F# F# E E F# F# G A A G F# E D D E F# E D D E E F# D E F# G F# D E F# G F# E D E "
    b"A F# F# G A A G F# E D D E F# E D D\x00"
)
SPEC_LZNT1 = bytes.fromhex(
    "38b08846232000204720410010a24701a045204400084501507900c045200524"
    "138805b4024a44ef0358028c091601484500be009e00040118 9000".replace(" ", "")
)

__all__ = ["SPEC_LZNT1", "SPEC_LZNT1_TEXT", "lznt1"]
