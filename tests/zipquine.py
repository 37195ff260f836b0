"""A zip that contains itself (a zip quine), built from first principles for the overload tests.

The construction is Russ Cox's ("Zip Files All The Way Down", 2010): the entry's deflate data is a
program of two operations, Lit(n) (a stored block: the next n bytes of the data are output as they
are) and Rep(n) (a fixed-Huffman block copying the last n bytes of output), arranged so that the output
is the local header, the deflate data itself and the central directory: the whole file. Every operation
is encoded in the same number of bytes (empty stored and fixed blocks pad them), so the arguments can be
counted in operations. The CRC-32 the file must carry is the CRC-32 of the file itself; CRC-32 is affine
over GF(2), so the value is solved for as 32 linear equations rather than searched for.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Iterator

_OP = 16  # bytes in every operation: the smallest size at which each Rep below has an encoding


def _length_table() -> list[tuple[int, int, int]]:
    table = [(257 + i, 3 + i, 0) for i in range(8)]
    symbol, base = 265, 11
    for extra in range(1, 6):
        for _ in range(4):
            table.append((symbol, base, extra))
            symbol, base = symbol + 1, base + (1 << extra)
    return table  # 285 (length 258) is not needed: no copy here is that long


def _distance_table() -> list[tuple[int, int, int]]:
    table, base = [], 1
    for code in range(30):
        extra = max(0, code // 2 - 1)
        table.append((code, base, extra))
        base += 1 << extra
    return table


_LENGTHS, _DISTANCES = _length_table(), _distance_table()


def _code(table: list[tuple[int, int, int]], value: int) -> tuple[int, int, int]:
    for symbol, base, extra in table:
        if base <= value < base + (1 << extra):
            return symbol, value - base, extra
    raise ValueError(value)


class _Bits:
    """Deflate's bit order: values least significant bit first, Huffman codes most significant first."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def value(self, v: int, n: int) -> None:
        self.bits += [(v >> i) & 1 for i in range(n)]

    def huffman(self, code: int, n: int) -> None:
        self.bits += [(code >> (n - 1 - i)) & 1 for i in range(n)]

    def raw(self, data: bytes) -> None:
        self.bits += [(b >> i) & 1 for b in data for i in range(8)]

    def stored_header(self, final: int, length: int) -> None:
        self.value(final, 1)
        self.value(0, 2)
        self.bits += [0] * (-len(self.bits) % 8)
        self.raw(struct.pack("<HH", length, length ^ 0xFFFF))

    def empty_fixed(self) -> None:
        self.value(0, 1)
        self.value(1, 2)
        self.huffman(0, 7)

    def take(self) -> bytes:
        assert len(self.bits) % 8 == 0
        return bytes(sum(self.bits[i + k] << k for k in range(8)) for i in range(0, len(self.bits), 8))


def _lit(n: int) -> bytes:
    """Stored-block header for the next n bytes, after enough empty blocks to fill _OP bytes."""
    for stored, fixed in itertools.product(range(_OP // 5 + 1), range(5)):
        b = _Bits()
        for _ in range(stored):
            b.stored_header(0, 0)
        for _ in range(fixed):
            b.empty_fixed()
        b.stored_header(0, n)
        if len(b.bits) == 8 * _OP:
            return b.take()
    raise ValueError(f"no {_OP}-byte Lit({n})")


def _splits(parts: int, total: int) -> Iterator[tuple[int, ...]]:
    if parts == 1:
        if 3 <= total <= 257:
            yield (total,)
        return
    for first in range(3, min(257, total - 3) + 1):
        for rest in _splits(parts - 1, total - first):
            yield (first, *rest)


def _rep(n: int, final: int) -> bytes:
    """A fixed block copying the last n bytes (in one to three copies, to reach the size), then two
    empty stored blocks: the first aligns to a byte, the second is the final block when this one is."""
    dist_symbol, dist_value, dist_extra = _code(_DISTANCES, n)
    for parts in (1, 2, 3):
        for lengths in _splits(parts, n):
            b = _Bits()
            b.value(0, 1)
            b.value(1, 2)
            for length in lengths:
                symbol, value, extra = _code(_LENGTHS, length)
                b.huffman(symbol - 256, 7) if symbol < 280 else b.huffman(0b11000000 + symbol - 280, 8)
                b.value(value, extra)
                b.huffman(dist_symbol, 5)
                b.value(dist_value, dist_extra)
            b.huffman(0, 7)
            b.stored_header(0, 0)
            b.stored_header(final, 0)
            if len(b.bits) == 8 * _OP:
                return b.take()
            if len(b.bits) > 8 * _OP:
                break  # longer splits of this many parts only grow
    raise ValueError(f"no {_OP}-byte Rep({n})")


def _file(name: bytes, crc: int) -> bytes:
    p, s = 30 + len(name), 46 + len(name) + 22
    lit_p, rep_p, lit_1, lit_4, rep_4 = _lit(p + _OP), _rep(p + _OP, 0), _lit(_OP), _lit(4 * _OP), _rep(4 * _OP, 0)
    lit_s, rep_s = _lit(s + _OP), _rep(s + _OP, 1)
    ops_before_s = [lit_p, None, lit_p, rep_p, lit_1, rep_p, lit_1, lit_1, lit_4, rep_p, lit_1, lit_1, lit_4]
    ops_before_s += [rep_4, lit_4, rep_4, lit_4, rep_4, lit_4, rep_4, lit_4, rep_4, lit_1, lit_s, lit_1, rep_4]
    ops_before_s += [lit_1, lit_s, lit_1, lit_s, lit_s, rep_s]
    size = len(ops_before_s) * _OP - _OP + p + s + _OP  # the None is P; S and the last Rep follow
    dos_time, dos_date = (3 << 11) | (4 << 5) | 3, (44 << 9) | (1 << 5) | 2  # 2024-01-02 03:04:06
    common = struct.pack("<HHHHIII", 0, 8, dos_time, dos_date, crc, size, p + size + s)
    header = b"PK\x03\x04" + struct.pack("<H", 20) + common + struct.pack("<HH", len(name), 0) + name
    central = b"PK\x01\x02" + struct.pack("<HH", 20, 20) + common
    central += struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0o100644 << 16, 0) + name
    trailer = central + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, len(central), p + size, 0)
    data = b"".join(header if op is None else op for op in ops_before_s) + trailer + rep_s
    return header + data + trailer


def zip_quine(name: bytes = b"r.zip") -> bytes:
    """A zip whose one deflated entry, ``name``, is byte for byte the zip itself (CRC-32 correct)."""
    base = zlib.crc32(_file(name, 0))
    # crc32(file(c)) ^ c is affine in c: solve crc32(file(c)) == c by Gaussian elimination over GF(2)
    columns = [(zlib.crc32(_file(name, 1 << i)) ^ base) ^ (1 << i) for i in range(32)]
    rows = [(sum(((columns[i] >> r) & 1) << i for i in range(32)), (base >> r) & 1) for r in range(32)]
    solution = 0
    for col in range(32):
        pivot = next((k for k in range(col, 32) if rows[k][0] >> col & 1), None)
        if pivot is None:
            raise ValueError("singular CRC system; change the name or the time")
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for k in range(32):
            if k != col and rows[k][0] >> col & 1:
                rows[k] = (rows[k][0] ^ rows[col][0], rows[k][1] ^ rows[col][1])
    for col in range(32):
        solution |= rows[col][1] << col
    quine = _file(name, solution)
    assert zlib.crc32(quine) == solution
    return quine
