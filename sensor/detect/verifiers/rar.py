"""RAR4 and RAR5: header CRCs walked block by block; stored entries CRC-checked; encryption flagged."""

from __future__ import annotations

import zlib
from typing import ClassVar

from sensor.detect.verifiers.base import Context, Verified, verifiers
from sensor.model import Buffer, Candidate, Checksum, Format, Proof
from sensor.names import from_bytes

RAR4 = b"Rar!\x1a\x07\x00"
RAR5 = b"Rar!\x1a\x07\x01\x00"


def vint(buf: bytes, pos: int) -> tuple[int, int] | None:
    """RAR5 variable-length integer at `pos`: (value, next position)."""
    value, shift = 0, 0
    while pos < len(buf) and shift < 70:
        b = buf[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return value, pos
        shift += 7
    return None


class _Walk:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.encrypted = False
        self.crc_ok = 0
        self.crc_bad = 0
        self.inner = 0
        self.end: int | None = None
        self.head: bytes | None = None


@verifiers.register(Format.RAR)
class RarVerifier:
    """The main-header CRC proves the archive; the end-of-archive block gives its end."""

    format: ClassVar[Format] = Format.RAR

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        if bytes(data[off : off + 8]) == RAR5:
            w = self._rar5(data, off + 8, ctx)
            version = "RAR5"
        elif bytes(data[off : off + 7]) == RAR4:
            w = self._rar4(data, off + 7, ctx)
            version = "RAR4"
        else:
            return None
        if w is None:
            return None
        complete = w.end is not None
        end = w.end if w.end is not None else len(data)
        checksum = Checksum.BAD if w.crc_bad else Checksum.OK if w.crc_ok else Checksum.NONE
        detail = version + (", headers encrypted" if w.encrypted and not w.names else "")
        return Verified(
            format=Format.RAR,
            offset=off,
            length=end - off,
            proof=Proof.CHECKSUM if w.crc_ok else Proof.STRUCTURE,
            truncated=not complete and not w.encrypted,
            checksum=checksum,
            encrypted=w.encrypted,
            head=w.head,
            inner_size=w.inner,
            inner_complete=complete,
            names=w.names,
            detail=detail,
        )

    def _stored(self, w: _Walk, data: Buffer, start: int, size: int, crc: int, ctx: Context) -> None:
        piece = bytes(data[start : start + size])
        if len(piece) == size:
            if zlib.crc32(piece) == crc:
                w.crc_ok += 1
            else:
                w.crc_bad += 1
            if w.head is None:
                w.head = piece[: ctx.limits.inner_head]

    def _rar4(self, data: Buffer, pos: int, ctx: Context) -> _Walk | None:
        w = _Walk()
        first = True
        while True:
            h = bytes(data[pos : pos + 7])
            if len(h) < 7:
                return w if not first else None
            crc, htype, flags, hsize = (
                int.from_bytes(h[0:2], "little"),
                h[2],
                int.from_bytes(h[3:5], "little"),
                int.from_bytes(h[5:7], "little"),
            )
            body = bytes(data[pos + 2 : pos + hsize])
            if hsize < 7 or len(body) < hsize - 2 or zlib.crc32(body) & 0xFFFF != crc:
                return w if not first else None
            if first:
                if htype != 0x73:
                    return None
                first = False
                if flags & 0x0080:
                    w.encrypted = True  # block headers encrypted: nothing further is readable
                    return w
            add = int.from_bytes(body[5:9], "little") if flags & 0x8000 and len(body) >= 9 else 0
            if htype == 0x74 and len(body) >= 30:
                unp = int.from_bytes(body[9:13], "little")
                fcrc = int.from_bytes(body[14:18], "little")
                method = body[23]
                nsize = int.from_bytes(body[24:26], "little")
                base = 30 + (8 if flags & 0x100 else 0)
                name = from_bytes(body[base : base + nsize].split(b"\x00", 1)[0])
                if len(w.names) < ctx.limits.max_names:
                    w.names.append(name)
                w.inner += unp
                if flags & 0x04:
                    w.encrypted = True
                elif method == 0x30:
                    self._stored(w, data, pos + hsize, add, fcrc, ctx)
            pos += hsize + add
            if htype == 0x7B:
                w.end = pos
                return w

    def _rar5(self, data: Buffer, pos: int, ctx: Context) -> _Walk | None:
        w = _Walk()
        first = True
        while True:
            pre = bytes(data[pos : pos + 7])
            if len(pre) < 5:
                return w if not first else None
            got = vint(pre, 4)
            if got is None:
                return w if not first else None
            hsize, body_at = got
            block = bytes(data[pos + 4 : pos + body_at + hsize])
            if hsize == 0 or hsize > 2 << 20 or len(block) < body_at - 4 + hsize:
                return w if not first else None
            if zlib.crc32(block) != int.from_bytes(pre[:4], "little"):
                return w if not first else None
            h = block[body_at - 4 :]
            p = 0
            fields = []
            for _ in range(2):  # type, flags
                r = vint(h, p)
                if r is None:
                    return w if not first else None
                fields.append(r[0])
                p = r[1]
            htype, hflags = fields
            if first:
                if htype == 4:
                    w.encrypted = True  # archive-encryption header: the rest is ciphertext
                    return w
                if htype != 1:
                    return None
                first = False
            extra = data_size = 0
            if hflags & 1:
                r = vint(h, p)
                if r is None:
                    return w
                extra, p = r
            if hflags & 2:
                r = vint(h, p)
                if r is None:
                    return w
                data_size, p = r
            if htype == 2:
                self._file5(w, data, h, p, extra, pos + body_at + hsize, data_size, ctx)
            pos += body_at + hsize + data_size
            if htype == 5:
                w.end = pos
                return w

    def _file5(
        self, w: _Walk, data: Buffer, h: bytes, p: int, extra: int, data_at: int, size: int, ctx: Context
    ) -> None:
        vals = []
        for _ in range(3):  # file flags, unpacked size, attributes
            r = vint(h, p)
            if r is None:
                return
            vals.append(r[0])
            p = r[1]
        fflags, unp, _attr = vals
        if fflags & 2:
            p += 4
        crc = None
        if fflags & 4:
            crc = int.from_bytes(h[p : p + 4], "little")
            p += 4
        r = vint(h, p)
        if r is None:
            return
        comp, p = r
        r = vint(h, p)  # host OS
        if r is None:
            return
        p = r[1]
        r = vint(h, p)
        if r is None:
            return
        nlen, p = r
        name = from_bytes(h[p : p + nlen])
        if len(w.names) < ctx.limits.max_names:
            w.names.append(name)
        w.inner += unp
        ext = h[len(h) - extra :] if extra else b""
        if self._extra_encrypted(ext):
            w.encrypted = True
        elif (comp >> 7) & 7 == 0 and crc is not None:
            self._stored(w, data, data_at, size, crc, ctx)

    @staticmethod
    def _extra_encrypted(ext: bytes) -> bool:
        p = 0
        while p < len(ext):
            r = vint(ext, p)
            if r is None:
                return False
            size, q = r
            t = vint(ext, q)
            if t is None:
                return False
            if t[0] == 1:
                return True
            p = q + size
        return False
