"""7z: signature-header CRC, next-header CRC, and py7zr for the listing (or the password it demands)."""

from __future__ import annotations

import io
import zlib
from typing import ClassVar

from sensor.detect.verifiers.base import Context, Verified, verifiers
from sensor.model import Buffer, Candidate, Checksum, Format, Proof

MAGIC = b"7z\xbc\xaf\x27\x1c"
AES_CODER = b"\x06\xf1\x07\x01"
MAX_LISTING = 64 * 1024 * 1024  # carved archives larger than this are not handed to py7zr


@verifiers.register(Format.SEVENZIP)
class SevenZipVerifier:
    """94 bits of signature header prove it; the next-header CRC gives the exact end."""

    format: ClassVar[Format] = Format.SEVENZIP

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        h = bytes(data[off : off + 32])
        if len(h) < 32 or h[:6] != MAGIC or h[6] != 0 or h[7] not in (2, 3, 4):
            return None
        if zlib.crc32(h[12:32]) != int.from_bytes(h[8:12], "little"):
            return None
        nh_off = int.from_bytes(h[12:20], "little")
        nh_size = int.from_bytes(h[20:28], "little")
        nh_crc = int.from_bytes(h[28:32], "little")
        if nh_size == 0 or nh_size > 1 << 30 or nh_off > 1 << 40:
            return None
        end = off + 32 + nh_off + nh_size
        if end > len(data):
            return Verified(Format.SEVENZIP, off, len(data) - off, Proof.STRUCTURE, truncated=True)
        nh = bytes(data[end - nh_size : end])
        if zlib.crc32(nh) != nh_crc:
            return None  # the start header points at bytes that are not its next header
        encrypted = AES_CODER in nh
        names: list[str] = []
        inner = 0
        detail = None
        if end - off <= MAX_LISTING:
            import py7zr  # 20-30 ms to import (and a subprocess in pycryptodomex): only when a 7z verifies
            import py7zr.exceptions

            try:
                with py7zr.SevenZipFile(io.BytesIO(bytes(data[off:end]))) as z:
                    infos = z.list()
                    names = [i.filename for i in infos[: ctx.limits.max_names]]
                    inner = sum(i.uncompressed or 0 for i in infos)
                    encrypted = encrypted or z.needs_password()
            except py7zr.exceptions.PasswordRequired:
                encrypted = True
                detail = "headers encrypted"
            except (
                py7zr.exceptions.Bad7zFile,
                py7zr.exceptions.UnsupportedCompressionMethodError,
                OSError,
                ValueError,
                KeyError,
                EOFError,
            ) as e:
                detail = f"listing failed: {e}"
        return Verified(
            format=Format.SEVENZIP,
            offset=off,
            length=end - off,
            proof=Proof.CHECKSUM,
            checksum=Checksum.OK,
            encrypted=encrypted,
            inner_size=inner,
            inner_complete=bool(names),
            names=names,
            detail=detail,
        )
