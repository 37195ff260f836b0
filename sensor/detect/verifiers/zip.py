"""ZIP: local headers walked and checked, entries CRC-checked, encryption (ZipCrypto, AES) flagged."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import ClassVar

from sensor.content import decompress
from sensor.detect.verifiers.base import Context, Verified, verifiers
from sensor.model import Buffer, Candidate, Checksum, Format, Limit, LimitHit, Proof

LOCAL = b"PK\x03\x04"
CENTRAL = b"PK\x01\x02"
EOCD = b"PK\x05\x06"
EOCD64 = b"PK\x06\x06"
LOCATOR64 = b"PK\x06\x07"
DESCRIPTOR = b"PK\x07\x08"
METHODS = {0, 1, 6, 8, 9, 12, 14, 19, 93, 95, 96, 97, 98, 99}
AES_STRENGTH = {1: "AES-128", 2: "AES-192", 3: "AES-256"}
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<4sHHHHIIH")


@dataclass
class Entry:
    """One local header, parsed and checked."""

    name: str
    flags: int
    method: int
    crc: int
    csize: int
    usize: int
    data_start: int
    aes: str | None


def parse_extra(extra: bytes) -> dict[int, bytes] | None:
    """TLV records that must fill the field exactly (short zero padding tolerated, as zipalign writes)."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if pos + 4 + size > len(extra):
            return None
        out[tag] = extra[pos + 4 : pos + 4 + size]
        pos += 4 + size
    rest = extra[pos:]
    if rest and (len(rest) >= 4 or rest.strip(b"\x00")):
        return None
    return out


def parse_local(data: Buffer, off: int) -> Entry | None:
    """The local header at `off` with the hard checks of SIGNATURES.md §1.11, or None."""
    raw = bytes(data[off : off + 30])
    if len(raw) < 30:
        return None
    sig, ver, flags, method, _t, _d, crc, csize, usize, nlen, xlen = _LOCAL.unpack(raw)
    if sig != LOCAL or ver & 0xFF > 63 or method not in METHODS or flags & 0xC000 or not 1 <= nlen <= 4096:
        return None
    name_b = bytes(data[off + 30 : off + 30 + nlen])
    extra_b = bytes(data[off + 30 + nlen : off + 30 + nlen + xlen])
    if len(name_b) < nlen or len(extra_b) < xlen or b"\x00" in name_b:
        return None
    extra = parse_extra(extra_b)
    if extra is None:
        return None
    aes = None
    if method == 99:
        rec = extra.get(0x9901)
        if rec is None or len(rec) != 7 or rec[2:4] != b"AE" or rec[4] not in AES_STRENGTH or not flags & 1:
            return None
        aes = AES_STRENGTH[rec[4]]
    if 0x0001 in extra and (csize == 0xFFFFFFFF or usize == 0xFFFFFFFF):
        z64 = extra[0x0001]
        vals = [int.from_bytes(z64[i : i + 8], "little") for i in range(0, len(z64) - 7, 8)]
        if usize == 0xFFFFFFFF and vals:
            usize = vals.pop(0)
        if csize == 0xFFFFFFFF and vals:
            csize = vals.pop(0)
    name = name_b.decode("utf-8" if flags & 0x800 else "cp437", "replace")
    return Entry(name, flags, method, crc, csize, usize, off + 30 + nlen + xlen, aes)


def find_descriptor(data: Buffer, start: int, limit: int) -> int | None:
    """End of a bit-3 entry's data whose size only the data descriptor gives: the descriptor's offset."""
    pos = start
    end = min(len(data), start + limit)
    while True:
        i = bytes(data[pos:end]).find(DESCRIPTOR) if pos < end else -1
        if i < 0:
            return None
        at = pos + i
        csize = int.from_bytes(bytes(data[at + 8 : at + 12]), "little")
        if csize == at - start:
            return at
        pos = at + 1


@verifiers.register(Format.ZIP)
class ZipVerifier:
    """The archive from its first verifying local header to the end of its EOCD (or of its last entry)."""

    format: ClassVar[Format] = Format.ZIP

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        first = parse_local(data, off)
        if first is None:
            return None
        names: list[str] = []
        limits: list[LimitHit] = []
        pos, entries, crc_ok, crc_bad = off, 0, 0, 0
        encrypted, all_stored, aes = False, True, None
        head: bytes | None = None
        inner = 0
        truncated = False
        while bytes(data[pos : pos + 4]) == LOCAL:
            e = parse_local(data, pos)
            if e is None:
                break
            if entries >= ctx.limits.max_entries:
                limits.append(LimitHit(Limit.ENTRIES, ctx.where, entries))
                break
            entries += 1
            if len(names) < ctx.limits.max_names:
                names.append(e.name)
            inner += e.usize
            enc = bool(e.flags & 1)
            encrypted |= enc
            aes = aes or e.aes
            all_stored &= e.method == 0
            end, ok, piece_head = self._entry(data, e, ctx, limits)
            if end is None:
                truncated = True
                pos = len(data)
                break
            if ok is True:
                crc_ok += 1
            elif ok is False:
                crc_bad += 1
            if head is None and piece_head:
                head = piece_head
            pos = end
            if e.flags & 8:
                pos = self._skip_descriptor(data, pos)
        if entries == 0:
            return None
        end = self._central_end(data, pos, off)
        complete = end is not None
        if end is None:
            end = pos
        if crc_bad:
            checksum = Checksum.BAD
        elif crc_ok:
            checksum = Checksum.OK
        else:
            checksum = Checksum.NONE
        if crc_ok == 0 and crc_bad and not complete:
            return None  # no entry checks out and nothing else vouches for the structure
        proof = Proof.CHECKSUM if crc_ok else Proof.STRUCTURE
        return Verified(
            format=Format.ZIP,
            offset=off,
            length=end - off,
            proof=proof,
            truncated=truncated or not complete,
            checksum=checksum,
            encrypted=encrypted,
            compressed=not all_stored,
            head=head,
            inner_size=inner,
            inner_complete=complete and not truncated,
            names=names,
            limits=limits,
            detail=f"{entries} entries" + (f", {aes}" if aes else ", ZipCrypto" if encrypted else ""),
        )

    def _entry(
        self, data: Buffer, e: Entry, ctx: Context, limits: list[LimitHit]
    ) -> tuple[int | None, bool | None, bytes | None]:
        """(end of the entry's data or None if cut off, CRC verdict or None, decoded head)."""
        known = not (e.flags & 8) or e.csize != 0
        if e.flags & 1:
            if not known:
                at = find_descriptor(data, e.data_start, ctx.limits.max_output)
                return at, None, None
            end = e.data_start + e.csize
            return (end if end <= len(data) else None), None, None
        if e.method in (0, 8):
            if e.method == 0 and not known:
                at = find_descriptor(data, e.data_start, ctx.limits.max_output)
                return at, None, None
            crc = [0]

            def observe(piece: bytes) -> None:
                crc[0] = zlib.crc32(piece, crc[0])

            if e.method == 8:
                stop = e.data_start + e.csize if known else None
                dec = decompress.run(
                    decompress.inflate_codec(-15), data, e.data_start, ctx.limits, ctx.where, (observe,), stop
                )
                if dec.limit:
                    limits.append(dec.limit)
                if not dec.eof:
                    if dec.data_ended and e.data_start + (e.csize if known else dec.consumed) > len(data):
                        return None, None, dec.head or None
                    return (e.data_start + e.csize if known else None), None, dec.head or None
                end = e.data_start + dec.consumed
                want = e.crc
                if e.flags & 8:
                    desc = bytes(data[end : end + 16])
                    k = 4 if desc[:4] == DESCRIPTOR else 0
                    want = int.from_bytes(desc[k : k + 4], "little") if len(desc) >= k + 4 else e.crc
                return end, want == crc[0], dec.head
            end = e.data_start + e.csize
            if end > len(data):
                return None, None, None
            piece = bytes(data[e.data_start : end])
            return end, zlib.crc32(piece) == e.crc, piece[: ctx.limits.inner_head]
        if not known:
            return None, None, None
        end = e.data_start + e.csize
        return (end if end <= len(data) else None), None, None

    @staticmethod
    def _skip_descriptor(data: Buffer, pos: int) -> int:
        sig = bytes(data[pos : pos + 4])
        base = pos + 4 if sig == DESCRIPTOR else pos
        nxt = bytes(data[base + 12 : base + 16])
        if nxt[:2] == b"PK" or len(nxt) < 4:
            return base + 12
        return base + 20 if bytes(data[base + 20 : base + 22]) == b"PK" else base + 12

    @staticmethod
    def _central_end(data: Buffer, pos: int, start: int) -> int | None:
        """Walk the central directory that follows the last entry; the end of the EOCD and comment."""
        while bytes(data[pos : pos + 4]) == CENTRAL:
            raw = bytes(data[pos : pos + 46])
            if len(raw) < 46:
                return None
            f = _CENTRAL.unpack(raw)
            pos += 46 + f[10] + f[11] + f[12]
        if bytes(data[pos : pos + 4]) == EOCD64:
            size = int.from_bytes(bytes(data[pos + 4 : pos + 12]), "little")
            pos += 12 + size
        if bytes(data[pos : pos + 4]) == LOCATOR64:
            pos += 20
        raw = bytes(data[pos : pos + 22])
        if len(raw) < 22 or raw[:4] != EOCD:
            return None
        end = pos + 22 + _EOCD.unpack(raw)[7]
        return end if end <= len(data) else None
