"""OpenSSL `enc` (also `openssl enc -a` once base64 is peeled): "Salted__", an 8-byte salt, then ciphertext to
the end of the object. A block cipher (the default CBC, ECB) leaves a whole number of 16-byte blocks; a stream
cipher (ChaCha20, CTR, CFB, OFB) any length, which is only believed of a whole object starting with it: inside
other bytes, where the object's end says nothing, only a block-aligned rest is."""

from __future__ import annotations

from typing import ClassVar

from sensor.detect.verifiers.base import Context, Verified, verifiers
from sensor.detect.verifiers.encrypted import TEXTLIKE, encrypted, looks_random
from sensor.model import Buffer, Candidate, Format

HEADER = 16


@verifiers.register(Format.OPENSSL)
class OpensslVerifier:
    """Salt not text, ciphertext random-looking and of a length the cipher can produce."""

    format: ClassVar[Format] = Format.OPENSSL

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        rest = len(data) - off - HEADER
        if bytes(data[off : off + 8]) != b"Salted__" or rest < 16:
            return None
        salt = bytes(data[off + 8 : off + 16])
        if all(b in TEXTLIKE for b in salt) or not looks_random(bytes(data[off + 16 : off + 16 + 4096])):
            return None  # a log line or a document that mentions "Salted__"
        aligned = rest % 16 == 0
        if not aligned and off != 0:
            return None
        mode = "whole 16-byte blocks" if aligned else "not whole blocks: a stream cipher (ChaCha20, CTR, CFB, OFB)"
        return encrypted(Format.OPENSSL, off, HEADER + rest, writer="openssl enc",
                         detail=f"{rest} bytes of ciphertext, {mode}")  # fmt: skip


__all__ = ["OpensslVerifier"]
