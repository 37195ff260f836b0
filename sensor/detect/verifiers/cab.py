"""Microsoft Cabinet: CFHEADER field checks (over 100 bits with the rule) and the CFFILE listing."""

from __future__ import annotations

import struct
from typing import ClassVar

from sensor.detect.verifiers.base import Context, Verified, verifiers
from sensor.model import Buffer, Candidate, Format, Proof

_HDR = struct.Struct("<4sIIIIIBBHHH")
COMPRESSION = {0: "none", 1: "MSZIP", 2: "Quantum", 3: "LZX"}


@verifiers.register(Format.CAB)
class CabVerifier:
    """Structural proof (SIGNATURES.md §1.14); cbCabinet gives the exact end."""

    format: ClassVar[Format] = Format.CAB

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        raw = bytes(data[off : off + 36])
        if len(raw) < 36:
            return None
        sig, r1, size, r2, coff, r3, vmin, vmaj, nfolders, nfiles, flags = _HDR.unpack(raw[:34])
        if sig != b"MSCF" or r1 or r2 or r3 or (vmaj, vmin) != (1, 3):
            return None
        if size < 36 or not 36 <= coff < size or nfolders < 1 or nfiles < 1:
            return None
        folder_at = off + 36 + (4 + raw[34] if flags & 4 else 0)
        if flags & 4:
            reserve = bytes(data[off + 36 : off + 40])
            folder_at = off + 40 + int.from_bytes(reserve[:2], "little") if len(reserve) == 4 else folder_at
        folder = bytes(data[folder_at : folder_at + 8])
        method = COMPRESSION.get(int.from_bytes(folder[6:8], "little") & 0xF, "unknown") if len(folder) == 8 else "?"
        names: list[str] = []
        inner = 0
        pos = off + coff
        for _ in range(min(nfiles, ctx.limits.max_names)):
            ent = bytes(data[pos : pos + 16 + 256])
            nul = ent.find(b"\x00", 16)
            if len(ent) < 17 or nul < 0:
                break
            inner += int.from_bytes(ent[0:4], "little")
            names.append(
                ent[16:nul].decode("utf-8" if int.from_bytes(ent[14:16], "little") & 0x80 else "cp1252", "replace")
            )
            pos += nul + 1
        end = off + size
        return Verified(
            format=Format.CAB,
            offset=off,
            length=min(end, len(data)) - off,
            proof=Proof.STRUCTURE,
            truncated=end > len(data),
            compressed=method != "none",
            inner_size=inner,
            inner_complete=len(names) == nfiles,
            names=names,
            detail=f"{nfolders} folders, {nfiles} files, {method}",
        )
