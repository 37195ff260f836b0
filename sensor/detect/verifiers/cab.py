"""Microsoft Cabinet: CFHEADER fields, the first CFFOLDER and CFDATA block (its checksum), the CFFILE listing."""

from __future__ import annotations

import struct
from typing import ClassVar

from sensor.detect.verifiers.base import Context, Verified, verifiers
from sensor.model import Buffer, Candidate, Checksum, Format, Proof
from sensor.names import from_bytes

_HDR = struct.Struct("<4sIIIIIBBHHH")
COMPRESSION = {0: "none", 1: "MSZIP", 2: "Quantum", 3: "LZX"}
SPECIAL_FOLDERS = (0xFFFD, 0xFFFE, 0xFFFF)  # continued from / to other cabinets


def cab_checksum(buf: bytes, seed: int) -> int:
    """The CFDATA checksum of [MS-CAB] 2.6: XOR of little-endian words, the tail folded in big-endian."""
    csum = seed
    n = len(buf) // 4 * 4
    for (word,) in struct.iter_unpack("<I", buf[:n]):
        csum ^= word
    tail = buf[n:]
    ul = 0
    for b in tail:
        ul = (ul << 8) | b
    return csum ^ ul


@verifiers.register(Format.CAB)
class CabVerifier:
    """Header, folder, first data block and file entries must agree; a CFDATA checksum proves it outright."""

    format: ClassVar[Format] = Format.CAB

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        raw = bytes(data[off : off + 36])
        if len(raw) < 36:
            return None
        sig, r1, size, r2, coff, r3, vmin, vmaj, nfolders, nfiles, flags = _HDR.unpack(raw[:32])
        if sig != b"MSCF" or r1 or r2 or r3 or (vmaj, vmin) != (1, 3) or flags & ~7:
            return None
        if size < 36 or not 36 <= coff < size or nfolders < 1 or nfiles < 1:
            return None
        folder_at, data_reserve = off + 36, 0
        if flags & 4:  # reserve fields: cbCFHeader (2), cbCFFolder (1), cbCFData (1), then the header reserve
            res = bytes(data[off + 36 : off + 40])
            folder_at = off + 40 + int.from_bytes(res[:2], "little")
            data_reserve = res[3] if len(res) == 4 else 0
        if flags & 3:
            return self._listing_only(data, off, size, coff, nfolders, nfiles, ctx)
        folder = bytes(data[folder_at : folder_at + 8])
        if len(folder) < 8:
            return None
        first_data, nblocks, ctype = struct.unpack("<IHH", folder)
        method = COMPRESSION.get(ctype & 0xF)
        if method is None or nblocks == 0 or not coff <= first_data < size:
            return None
        listing = self._files(data, off + coff, nfolders, nfiles, ctx)
        if listing is None:
            return None
        names, inner = listing
        block = bytes(data[off + first_data : off + first_data + 8 + data_reserve])
        checksum = Checksum.NONE
        if len(block) == 8 + data_reserve:
            csum, cb_data, cb_uncomp = struct.unpack("<IHH", block[:8])
            if cb_data == 0 or cb_uncomp > 32768 + 6144:
                return None
            payload = bytes(data[off + first_data + 8 + data_reserve : off + first_data + 8 + data_reserve + cb_data])
            if method == "MSZIP" and payload[:2] not in (b"CK", b""):
                return None
            if csum and len(payload) == cb_data:
                ok = cab_checksum(block[4:8] + block[8:], cab_checksum(payload, 0)) == csum
                if not ok:
                    return None
                checksum = Checksum.OK
        end = off + size
        return Verified(
            format=Format.CAB,
            offset=off,
            length=min(end, len(data)) - off,
            proof=Proof.CHECKSUM if checksum is Checksum.OK else Proof.STRUCTURE,
            truncated=end > len(data),
            checksum=checksum,
            compressed=method != "none",
            inner_size=inner,
            inner_complete=len(names) == nfiles,
            names=names,
            detail=f"{nfolders} folders, {nfiles} files, {method}",
        )

    def _files(self, data: Buffer, pos: int, nfolders: int, nfiles: int, ctx: Context) -> tuple[list[str], int] | None:
        """CFFILE entries: folder index in range and printable, NUL-terminated names, or None."""
        names: list[str] = []
        inner = 0
        for _ in range(min(nfiles, ctx.limits.max_entries)):
            ent = bytes(data[pos : pos + 16 + 257])
            nul = ent.find(b"\x00", 16)
            if len(ent) < 17 or nul <= 16:
                return None if not names else (names, inner)
            folder = int.from_bytes(ent[8:10], "little")
            raw_name = ent[16:nul]
            if (folder >= nfolders and folder not in SPECIAL_FOLDERS) or any(c < 0x20 for c in raw_name):
                return None
            inner += int.from_bytes(ent[0:4], "little")
            if len(names) < ctx.limits.max_names:
                names.append(from_bytes(raw_name))
            pos += nul + 1
        return names, inner

    def _listing_only(
        self, data: Buffer, off: int, size: int, coff: int, nfolders: int, nfiles: int, ctx: Context
    ) -> Verified | None:
        """A cabinet of a multi-cabinet set (folder offsets follow set names): header and files only."""
        listing = self._files(data, off + coff, nfolders, nfiles, ctx)
        if listing is None:
            return None
        names, inner = listing
        return Verified(
            format=Format.CAB,
            offset=off,
            length=min(off + size, len(data)) - off,
            proof=Proof.STRUCTURE,
            truncated=off + size > len(data),
            inner_size=inner,
            names=names,
            detail=f"{nfolders} folders, {nfiles} files, part of a cabinet set",
        )
