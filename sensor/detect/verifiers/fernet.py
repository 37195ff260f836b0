"""Fernet tokens (the `cryptography` library's spec): base64url of version 0x80, an 8-byte timestamp, a 16-byte
IV, AES-CBC ciphertext of 16n bytes (n >= 1) and a 32-byte HMAC, so 57 + 16n bytes. The token is the whole
base64url run; its time must be plausible (2015 to 2100). Small tokens are what web applications send as
session cookies: the judgement makes those under 4 KiB events (sensor/detect/severity.py)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import ClassVar

from sensor.detect.verifiers.base import Context, Verified, verifiers
from sensor.detect.verifiers.encrypted import encrypted
from sensor.model import Buffer, Candidate, Format

RUN = re.compile(rb"[A-Za-z0-9_\-]+={0,2}")
EARLIEST, LATEST = 1_420_070_400, 4_102_444_800  # 2015-01-01, 2100-01-01
MAX_TOKEN = 64 * 1024 * 1024


@verifiers.register(Format.FERNET)
class FernetVerifier:
    """Version, a plausible time, and a length of 57 + 16n bytes."""

    format: ClassVar[Format] = Format.FERNET

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        before = bytes(data[off - 1 : off]) if off else b""
        if before in (b"-", b"_") or before.isalnum():
            return None  # inside a longer base64url run: not a token's start
        m = RUN.match(data, off, min(len(data), off + MAX_TOKEN))  # type: ignore[call-overload]  # no copy
        if m is None:
            return None
        text = m.group(0)
        body = text.rstrip(b"=")
        try:
            raw = base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) < 73 or (len(raw) - 57) % 16 or raw[0] != 0x80 or len(body) != -(-len(raw) * 4 // 3):
            return None
        ts = int.from_bytes(raw[1:9], "big")
        if not EARLIEST <= ts <= LATEST:
            return None
        when = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return encrypted(Format.FERNET, off, len(text), writer="Fernet (Python cryptography)",
                         detail=f"{len(raw) - 57} bytes of ciphertext, made {when}")  # fmt: skip


__all__ = ["FernetVerifier"]
