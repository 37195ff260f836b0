"""JWE compact serialization (RFC 7516): five base64url parts joined by dots - a protected header that is a JSON
object naming "alg" and "enc", the encrypted key (empty for "dir"), the IV, the ciphertext and the tag. A JWS
(three parts) is not one. Tokens under 4 KiB are what web applications pass around: events (severity.py)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import ClassVar

from sensor.detect.verifiers.base import Context, Verified, verifiers
from sensor.detect.verifiers.encrypted import encrypted
from sensor.model import Buffer, Candidate, Format

PART = rb"[A-Za-z0-9_\-]"
COMPACT = re.compile(rb"(%s+)\.(%s*)\.(%s+)\.(%s+)\.(%s+)" % (PART, PART, PART, PART, PART))
MAX_TOKEN = 64 * 1024 * 1024


def _b64url(part: bytes) -> bytes:
    return base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4))


@verifiers.register(Format.JWE)
class JweVerifier:
    """A JSON header with alg and enc, an IV of 8-16 bytes, a tag of 8-32, non-empty ciphertext."""

    format: ClassVar[Format] = Format.JWE

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        m = COMPACT.match(data, off, min(len(data), off + MAX_TOKEN))  # type: ignore[call-overload]  # no copy
        if m is None:
            return None
        try:
            header = json.loads(_b64url(m.group(1)))
            iv, tag = _b64url(m.group(3)), _b64url(m.group(5))
            _b64url(m.group(4))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(header, dict) or not isinstance(header.get("enc"), str) or "alg" not in header:
            return None
        if not 8 <= len(iv) <= 16 or not 8 <= len(tag) <= 32:
            return None
        end = m.end() - off
        if bytes(data[off + end : off + end + 1]) == b".":
            return None  # more parts: not compact JWE
        return encrypted(Format.JWE, off, end, writer=None,
                         detail=f"alg {header.get('alg')}, enc {header.get('enc')}")  # fmt: skip


__all__ = ["JweVerifier"]
