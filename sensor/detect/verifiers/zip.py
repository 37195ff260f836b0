"""ZIP: local headers walked and checked, entries CRC-checked, encryption (ZipCrypto, AES) flagged."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import ClassVar

from sensor.content import decompress
from sensor.detect.inner import zip_document_type
from sensor.detect.verifiers.base import Context, Verified, verifiers
from sensor.model import Buffer, Candidate, Checksum, ChecksumFailures, Format, Limit, LimitHit, Proof
from sensor.names import from_bytes

LOCAL = b"PK\x03\x04"
NESTED_MAX = 64 << 20  # bytes of a zip entry kept to list the entries of the zip it is
CENTRAL = b"PK\x01\x02"
EOCD = b"PK\x05\x06"
EOCD64 = b"PK\x06\x06"
LOCATOR64 = b"PK\x06\x07"
DESCRIPTOR = b"PK\x07\x08"
NEXT_RECORDS = (LOCAL, CENTRAL, DESCRIPTOR, EOCD, EOCD64)
METHODS = {0, 1, 6, 8, 9, 12, 14, 19, 93, 95, 96, 97, 98, 99}
AES_STRENGTH = {1: "AES-128", 2: "AES-192", 3: "AES-256"}
FAILED_NAMES = 8  # names of entries that failed their CRC kept in the finding (all are counted)
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
    nul: bool = False  # a NUL in the name: receivers cut the name there; the entry must then decode to count


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
    if len(name_b) < nlen or len(extra_b) < xlen:
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
    name = from_bytes(name_b)  # exact bytes; flag 11 or not, most writers store UTF-8
    return Entry(name, flags, method, crc, csize, usize, off + 30 + nlen + xlen, aes, b"\x00" in name_b)


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


class Status(StrEnum):
    """How one entry's data checked out."""

    OK = "ok"  # decoded and its CRC-32 matched
    BAD = "bad"  # decoded whole, CRC-32 differs
    OPAQUE = "opaque"  # encrypted or a method not decoded here: structure only
    CUT = "cut"  # the data ended inside the entry, without an error
    INVALID = "invalid"  # the data contradicts the header: not an entry


@dataclass
class EntryCheck:
    status: Status
    end: int  # end of the entry's data (before any data descriptor)
    head: bytes | None = None
    nested: bytes | None = None  # the entry's data when it is itself a zip archive (to list its entries)


class _Nested:
    """An entry's decoded bytes, kept only while they can be a zip archive and fit under `cap`."""

    def __init__(self, cap: int) -> None:
        self.buf: bytearray | None = bytearray() if cap > 0 else None
        self.cap = cap

    def take(self, piece: bytes) -> None:
        buf = self.buf
        if buf is None:
            return
        buf += piece
        if len(buf) >= 4 and buf[:4] != LOCAL or len(buf) > self.cap:
            self.buf = None

    def result(self) -> bytes | None:
        return bytes(self.buf) if self.buf is not None and self.buf[:4] == LOCAL else None


@verifiers.register(Format.ZIP)
class ZipVerifier:
    """The archive from its first verifying local header to the end of its EOCD (or of its last entry)."""

    format: ClassVar[Format] = Format.ZIP

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        if parse_local(data, off) is None:
            return None
        names: list[str] = []
        failed: list[str] = []  # entries whose CRC-32 did not match (or whose data did not decode)
        limits: list[LimitHit] = []
        counts = {s: 0 for s in Status}
        vouched = 0
        pos, entries, inner = off, 0, 0
        encrypted, all_stored, aes = False, True, None
        head: bytes | None = None
        itself: list[str] = []  # entries whose bytes are this archive's own (a zip quine)
        while bytes(data[pos : pos + 4]) == LOCAL:
            e = parse_local(data, pos)
            if e is None:
                break
            if entries >= ctx.limits.max_entries:
                limits.append(LimitHit(Limit.ENTRIES, ctx.where, entries))
                listed_to = self._directory_of(data, off, pos)  # the rest is this archive's, not new ones
                if listed_to is not None:
                    pos = listed_to
                break
            check = self._entry(data, e, ctx, limits)
            if e.nul and check.status is not Status.OK:
                # SIGNATURES.md §1.11 counts "no NUL in the name" among a header's hard bits; a name with one
                # (which unzip and Python's zipfile accept, cut at the NUL) is vouched for by its CRC alone
                check = EntryCheck(Status.INVALID, check.end)
            if check.status is Status.INVALID:
                nxt = e.data_start + e.csize
                if entries and not e.flags & 8 and bytes(data[nxt : nxt + 4]) in NEXT_RECORDS:
                    # the entry's data does not decode but its size chains to the next record: a
                    # damaged entry inside a real archive, not the archive's end
                    check = EntryCheck(Status.BAD, nxt)
                else:
                    break  # the archive (if any) ended before this header
            entries += 1
            counts[check.status] += 1
            if len(names) < ctx.limits.max_names:
                names.append(e.name)
            if check.status is Status.OK and check.nested is not None:
                if check.nested == bytes(data[off : off + len(check.nested)]):
                    itself.append(e.name)  # listing it again would only repeat this listing
                else:
                    self._list_nested(check.nested, e.name, cand, ctx, names, limits)
            if check.status is Status.BAD and len(failed) < FAILED_NAMES:
                failed.append(e.name)
            inner += e.usize
            encrypted |= bool(e.flags & 1)
            aes = aes or e.aes
            all_stored &= e.method == 0
            head = head or check.head
            if check.status is Status.CUT:
                pos = len(data)
                break
            pos = self._skip_descriptor(data, check.end) if e.flags & 8 else check.end
            if check.status is Status.OPAQUE and (e.aes or bytes(data[pos : pos + 4]) in NEXT_RECORDS):
                vouched += 1  # an undecodable entry whose size lands exactly on the next record
        if entries == 0:
            return None
        end = self._central_end(data, pos)
        complete = end is not None and not counts[Status.CUT]
        if counts[Status.OK]:
            proof = Proof.CHECKSUM
        elif vouched or complete:
            # encrypted entries whose sizes chain to the next record (or carry the AES record), or
            # a central directory that closes the walk: a lone plausible header is not enough
            proof = Proof.STRUCTURE
        elif counts[Status.CUT] and head and len(head) >= 4096:
            proof = Proof.OBJECT_END
        else:
            return None  # nothing decoded, nothing closed: a header-shaped accident
        checksum = Checksum.BAD if counts[Status.BAD] else Checksum.OK if counts[Status.OK] else Checksum.NONE
        failures = None
        if counts[Status.BAD]:
            failures = ChecksumFailures(tuple(failed), counts[Status.BAD], counts[Status.BAD] + counts[Status.OK])
        return Verified(
            format=Format.ZIP,
            offset=off,
            length=(end if end is not None else min(pos, len(data))) - off,
            proof=proof,
            truncated=not complete,
            checksum=checksum,
            checksum_failures=failures,
            encrypted=encrypted,
            compressed=not all_stored,
            head=head,
            inner_size=inner,
            inner_complete=complete,
            names=names,
            limits=limits,
            detail=f"{entries} entries"
            + (f", {aes}" if aes else ", ZipCrypto" if encrypted else "")
            + "".join(f", {n} is this zip itself (a zip quine)" for n in itself[:FAILED_NAMES]),
        )

    def _list_nested(
        self, inner: bytes, name: str, cand: Candidate, ctx: Context, names: list[str], limits: list[LimitHit]
    ) -> None:
        """The entries of a zip inside this one, named outer!inner, to [limits] max_depth archives deep."""
        if ctx.nesting + 1 >= ctx.limits.max_depth:
            limits.append(LimitHit(Limit.DEPTH, f"{ctx.where}: zip in {name}", ctx.nesting + 1))
            return
        sub = self.verify(inner, Candidate(cand.rule, Format.ZIP, 0), replace(ctx, nesting=ctx.nesting + 1))
        if sub is None or zip_document_type(sub.names or [], sub.head):
            return  # not a zip after all, or a document (OOXML, ODF, JAR...) that is a zip inside: listed by name
        room = ctx.limits.max_names - len(names)
        names.extend(f"{name}!{n}" for n in sub.names[: max(0, room)])
        limits.extend(sub.limits)

    def _entry(self, data: Buffer, e: Entry, ctx: Context, limits: list[LimitHit]) -> EntryCheck:
        """Check one entry's data against its header."""
        n = len(data)
        known = not (e.flags & 8) or e.csize != 0
        if e.flags & 1 or e.method not in (0, 8):
            if not known:
                at = find_descriptor(data, e.data_start, ctx.limits.max_output)
                return EntryCheck(Status.OPAQUE, at) if at is not None else EntryCheck(Status.CUT, n)
            end = e.data_start + e.csize
            return EntryCheck(Status.OPAQUE, end) if end <= n else EntryCheck(Status.CUT, n)
        if e.method == 0:
            if not known:
                at = find_descriptor(data, e.data_start, ctx.limits.max_output)
                if at is None:
                    return EntryCheck(Status.CUT, n)
                piece = bytes(data[e.data_start : at])
                want = int.from_bytes(bytes(data[at + 4 : at + 8]), "little")
                ok = zlib.crc32(piece) == want
                return EntryCheck(Status.OK if ok else Status.BAD, at, piece[: ctx.limits.inner_head])
            if e.csize != e.usize:
                return EntryCheck(Status.INVALID, e.data_start)
            end = e.data_start + e.csize
            piece = bytes(data[e.data_start : min(end, n)])
            head = piece[: ctx.limits.inner_head]
            if end > n:
                return EntryCheck(Status.CUT, n, head)
            nested = piece if piece[:4] == LOCAL else None
            return EntryCheck(Status.OK if zlib.crc32(piece) == e.crc else Status.BAD, end, head, nested)
        crc = [0]
        keep = _Nested(min(ctx.limits.max_output, NESTED_MAX))

        def observe(piece: bytes) -> None:
            crc[0] = zlib.crc32(piece, crc[0])
            keep.take(piece)

        stop = e.data_start + e.csize if known else None
        dec = decompress.run(decompress.inflate_codec(-15), data, e.data_start, ctx.limits, ctx.where, (observe,), stop)
        if dec.limit:
            limits.append(dec.limit)
            return EntryCheck(Status.OPAQUE, stop if stop is not None and stop <= n else n, dec.head)
        if dec.error is not None:
            return EntryCheck(Status.INVALID, e.data_start)
        if not dec.eof:
            if stop is not None and stop <= n:
                return EntryCheck(Status.INVALID, e.data_start)  # the stream runs past its csize
            return EntryCheck(Status.CUT, n, dec.head)
        end = e.data_start + dec.consumed
        if known and dec.consumed != e.csize:
            return EntryCheck(Status.INVALID, e.data_start)
        want = e.crc
        if e.flags & 8:
            desc = bytes(data[end : end + 8])
            k = 4 if desc[:4] == DESCRIPTOR else 0
            desc = bytes(data[end + k : end + k + 4])
            if len(desc) == 4:
                want = int.from_bytes(desc, "little")
        return EntryCheck(Status.OK if want == crc[0] else Status.BAD, end, dec.head, keep.result())

    @staticmethod
    def _skip_descriptor(data: Buffer, pos: int) -> int:
        sig = bytes(data[pos : pos + 4])
        base = pos + 4 if sig == DESCRIPTOR else pos
        nxt = bytes(data[base + 12 : base + 16])
        if nxt[:2] == b"PK" or len(nxt) < 4:
            return base + 12
        return base + 20 if bytes(data[base + 20 : base + 22]) == b"PK" else base + 12

    @staticmethod
    def _directory_of(data: Buffer, off: int, pos: int) -> int | None:
        """Where the central directory of the archive starting at `off` begins, found from its EOCD after `pos`
        (an archive whose listing stopped at the entries cap still ends where its EOCD says)."""
        step = 1 << 20
        for start in range(pos, len(data), step - 21):
            window = bytes(data[start : start + step])
            i = window.find(EOCD)
            while i >= 0 and i + 22 <= len(window):
                at = start + i
                size, offset = _EOCD.unpack(window[i : i + 22])[5:7]
                if off + offset + size != at:  # zip64 (more than 65,535 entries...): the locator names the record
                    size, offset, at = ZipVerifier._zip64_directory(data, off, at)
                if off + offset + size == at and bytes(data[off + offset : off + offset + 4]) == CENTRAL:
                    return off + offset
                i = window.find(EOCD, i + 1)
        return None

    @staticmethod
    def _zip64_directory(data: Buffer, off: int, eocd: int) -> tuple[int, int, int]:
        """(central directory size, its offset, where it must end) from the zip64 records before an EOCD."""
        loc = bytes(data[eocd - 20 : eocd])
        if len(loc) < 20 or loc[:4] != LOCATOR64:
            return -1, -1, -1
        rec_at = off + int.from_bytes(loc[8:16], "little")
        rec = bytes(data[rec_at : rec_at + 56])
        if len(rec) < 56 or rec[:4] != EOCD64 or rec_at + 56 > eocd - 20:
            return -1, -1, -1
        return int.from_bytes(rec[40:48], "little"), int.from_bytes(rec[48:56], "little"), rec_at

    @staticmethod
    def _central_end(data: Buffer, pos: int) -> int | None:
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
