"""Test-only compressors of Windows' RtlCompressBuffer formats, written from [MS-XCA], for members no library
here can write: LZNT1 (section 2.5: 4 KiB chunks of flag-grouped literals and copy tokens whose offset/length
split depends on the position in the chunk), plain LZ77 (2.3: 32-bit flag words, 16-bit copy tokens, longer
lengths in shared nibbles) and LZ77+Huffman (2.1: 64 KiB blocks, each a table of 512 4-bit code lengths and a
bit stream read 16 bits at a time, with extra length bytes placed where the decoder reads them). Greedy
matching: not Windows' exact bytes, but bytes any decoder that follows the specification reads back (checked
against the specification's own examples and dissect.util's decoders in the tests)."""

from __future__ import annotations

import heapq
import struct
from collections.abc import Iterator

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


def _matches(data: bytes, window: int, max_len: int, start: int = 0, end: int | None = None) -> Iterator[tuple]:
    """Greedy LZ77 over data[start:end] with every position hashed: ("lit", byte) or ("copy", distance, length)
    (copies reach back before `start`, never past `end`)."""
    end = len(data) if end is None else end
    seen: dict[bytes, list[int]] = {}
    for p in range(max(0, start - window), start):
        seen.setdefault(data[p : p + 3], []).append(p)
    pos = start
    while pos < end:
        best_len = best_off = 0
        for cand in reversed(seen.get(data[pos : pos + 3], [])[-48:]):
            off = pos - cand
            if off > window:
                break
            n = 0
            limit = min(max_len, end - pos)
            while n < limit and data[cand + n] == data[pos + n]:
                n += 1
            if n > best_len:
                best_len, best_off = n, off
        step = best_len if best_len >= 3 else 1
        yield ("copy", best_off, best_len) if best_len >= 3 else ("lit", data[pos])
        for p in range(pos, pos + step):
            seen.setdefault(data[p : p + 3], []).append(p)
        pos += step


def xpress(data: bytes) -> bytes:
    """Plain LZ77 as RtlCompressBuffer(COMPRESSION_FORMAT_XPRESS) lays it out ([MS-XCA] 2.3): a flag word before
    each 32 tokens (bit 31 first; the last word padded with 1 bits), copies of up to 8 KiB back."""
    out = bytearray()
    flags_at, flags, count = len(out), 0, 0
    out += b"\0\0\0\0"
    half = -1
    for tok in _matches(data, 8192, 1 << 20):
        if count == 32:
            out[flags_at : flags_at + 4] = struct.pack("<I", flags)
            flags_at, flags, count = len(out), 0, 0
            out += b"\0\0\0\0"
        flags <<= 1
        count += 1
        if tok[0] == "lit":
            out.append(tok[1])
            continue
        flags |= 1
        _, dist, length = tok
        m = length - 3
        out += struct.pack("<H", ((dist - 1) << 3) | min(m, 7))
        if m < 7:
            continue
        m -= 7
        nibble = min(m, 15)
        if half < 0:
            half = len(out)
            out.append(nibble)
        else:
            out[half] |= nibble << 4
            half = -1
        if m < 15:
            continue
        m -= 15
        if m < 255:
            out.append(m)
        elif length - 3 < 65536:
            out += b"\xff" + struct.pack("<H", length - 3)
        else:
            out += b"\xff\0\0" + struct.pack("<I", length - 3)
    flags = (flags << (32 - count)) | ((1 << (32 - count)) - 1)
    out[flags_at : flags_at + 4] = struct.pack("<I", flags)
    return bytes(out)


def _code_lengths(freq: dict[int, int], limit: int = 15) -> dict[int, int]:
    """Huffman code lengths of the symbols in `freq`, at most `limit` bits (frequencies halved until they fit)."""
    if len(freq) == 1:
        return {next(iter(freq)): 1}
    while True:
        heap = [(f, i, (s,)) for i, (s, f) in enumerate(sorted(freq.items()))]
        heapq.heapify(heap)
        depth = dict.fromkeys(freq, 0)
        tie = len(heap)
        while len(heap) > 1:
            f1, _, a = heapq.heappop(heap)
            f2, _, b = heapq.heappop(heap)
            for s in a + b:
                depth[s] += 1
            heapq.heappush(heap, (f1 + f2, tie, a + b))
            tie += 1
        if max(depth.values()) <= limit:
            return depth
        freq = {s: max(1, f // 2) for s, f in freq.items()}


def xpress_huffman(data: bytes) -> bytes:
    """LZ77+Huffman as RtlCompressBuffer(COMPRESSION_FORMAT_XPRESS_HUFF) lays it out ([MS-XCA] 2.1): per 64 KiB
    of input a 256-byte table of code lengths (symbol 2i in the low nibble of byte i) and a bit stream of 16-bit
    little-endian words; a copy's extra length bytes sit where the decoder's read position is when it wants
    them; symbol 256 ends the stream."""
    out = bytearray()
    blocks = list(range(0, len(data), 65536)) or [0]
    for b, start in enumerate(blocks):
        last = b == len(blocks) - 1
        events: list[tuple] = []  # ("sym", s) | ("bits", value, n) | ("raw", bytes)
        for tok in _matches(data, 65535, 65535 + 3, start, min(start + 65536, len(data))):
            if tok[0] == "lit":
                events.append(("sym", tok[1]))
                continue
            _, dist, length = tok
            obits = dist.bit_length() - 1
            m = length - 3
            events.append(("sym", 256 + (obits << 4) + min(m, 15)))
            if m >= 15:
                events.append(("raw", bytes((m - 15,)) if m - 15 < 255 else b"\xff" + struct.pack("<H", m)))
            events.append(("bits", dist - (1 << obits), obits))
        if last:
            events.append(("sym", 256))
        freq: dict[int, int] = {}
        for e in events:
            if e[0] == "sym":
                freq[e[1]] = freq.get(e[1], 0) + 1
        lengths = _code_lengths(freq)
        codes, code, prev = {}, 0, 0
        for n, s in sorted((n, s) for s, n in lengths.items()):
            code <<= n - prev
            prev = n
            codes[s] = (code, n)
            code += 1
        table = bytearray(256)
        for s, n in lengths.items():
            table[s // 2] |= n << (4 * (s % 2))
        fields = [codes[e[1]] if e[0] == "sym" else (e[1], e[2]) for e in events if e[0] != "raw"]
        acc = nbits = 0
        for value, n in fields:
            acc, nbits = acc << n | value, nbits + n
        acc <<= (-nbits) % 16 + 64  # pad to whole words, and words of zeros the decoder may read ahead
        nwords = (nbits + 15) // 16 + 4
        words = [(acc >> (16 * (nwords - 1 - k))) & 0xFFFF for k in range(nwords)]
        block = bytearray(table) + struct.pack("<HH", words[0], words[1])
        nxt, extra = 2, 16
        for e in events:
            if e[0] == "raw":
                block += e[1]
                continue
            extra -= codes[e[1]][1] if e[0] == "sym" else e[2]
            if extra < 0:
                block += struct.pack("<H", words[nxt])
                nxt += 1
                extra += 16
        out += block
    return bytes(out)


# [MS-XCA] 3.1 and 3.2: plain LZ77's two examples
SPEC_XPRESS = [
    (b"abcdefghijklmnopqrstuvwxyz", bytes.fromhex("3f000000") + b"abcdefghijklmnopqrstuvwxyz"),
    (b"abc" * 100, bytes.fromhex("ffffff1f61626317000fff2601")),
]

__all__ = ["SPEC_LZNT1", "SPEC_LZNT1_TEXT", "SPEC_XPRESS", "lznt1", "xpress", "xpress_huffman"]
