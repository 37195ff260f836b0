"""age (age-encryption.org/v1; the age and rage tools, Go and Rust libraries): a text header, then the payload.

The header is the version line, one or more recipient stanzas ("-> type args", then the wrapped key in
unpadded base64, 64 columns, the last line shorter) and the MAC line ("--- " and 43 base64 characters); the
payload is a 16-byte nonce and 64 KiB chunks each with a 16-byte tag, to the end of the object (it has no
length). A header cut before its MAC line is a truncated member. The armored form ("-----BEGIN AGE ENCRYPTED
FILE-----", padded base64 in 64 columns) is decoded and must hold the same.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import ClassVar

from sensor.detect.verifiers.base import Context, Verified, verifiers
from sensor.detect.verifiers.encrypted import armored, encrypted
from sensor.model import Buffer, Candidate, Format

VERSION = b"age-encryption.org/v1\n"
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
STANZA = re.compile(rb"-> ([\x21-\x7e]+(?: [\x21-\x7e]+)*)\n")
B64 = re.compile(rb"[A-Za-z0-9+/]*")
MAC = re.compile(rb"--- [A-Za-z0-9+/]{43}\n")
MAX_HEADER = 64 * 1024
MAX_ARMOR = 256 * 1024 * 1024
MAX_STANZAS = 256


def header(d: bytes) -> tuple[int, list[str], bool] | None:
    """(payload start, recipient types, header cut off) of the binary header at d[0]; None when it is not one."""
    if not d.startswith(VERSION):
        return None
    pos, kinds = len(VERSION), []
    for _ in range(MAX_STANZAS):
        m = STANZA.match(d, pos)
        if m is None:
            break
        kinds.append(m.group(1).split(b" ")[0].decode("ascii"))
        pos = m.end()
        while True:  # the body: full 64-column lines, then one shorter (maybe empty)
            line = B64.match(d, pos)
            assert line is not None
            n = line.end() - pos
            if line.end() >= len(d):
                return pos, kinds, True
            if d[line.end()] != 0x0A or n > 64:
                return None
            pos = line.end() + 1
            if n < 64:
                break
    if not kinds:
        return (pos, kinds, True) if len(d) <= pos + 3 else None
    mac = MAC.match(d, pos)
    if mac is None:
        return (pos, kinds, True) if len(d) - pos < 48 and d[pos:].startswith(b"---"[: len(d) - pos]) else None
    return mac.end(), kinds, False


def _describe(kinds: list[str]) -> str:
    counts: dict[str, int] = {}
    for k in kinds:
        counts[k] = counts.get(k, 0) + 1
    return ", ".join(f"{k} x{n}" if n > 1 else k for k, n in counts.items())


@verifiers.register(Format.AGE)
class AgeVerifier:
    """The header's grammar and MAC line; a payload of at least a nonce and one tag."""

    format: ClassVar[Format] = Format.AGE

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        if bytes(data[off : off + len(ARMOR_BEGIN)]) == ARMOR_BEGIN:
            return self._armored(data, off)
        head = bytes(data[off : off + MAX_HEADER])
        found = header(head)
        if found is None:
            return None
        start, kinds, cut = found
        payload = len(data) - off - start
        if not cut and payload < 32:
            cut = True  # not even a nonce and one chunk's tag
        detail = f"recipients: {_describe(kinds)}" if kinds else "header cut before its recipients"
        length = len(data) - off if not cut or start >= len(head) else min(len(data) - off, len(head))
        return encrypted(Format.AGE, off, length, truncated=cut, writer="age", detail=detail)

    @staticmethod
    def _armored(data: Buffer, off: int) -> Verified | None:
        block, _ = armored(data, off, ARMOR_END, MAX_ARMOR)
        end = block.find(ARMOR_END)
        body = block[len(ARMOR_BEGIN) : end if end >= 0 else len(block)]
        text = b"".join(body.split())
        try:
            raw = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            return None
        found = header(raw[:MAX_HEADER])
        if found is None:
            return None
        start, kinds, cut = found
        cut = cut or end < 0 or len(raw) - start < 32
        length = end + len(ARMOR_END) if end >= 0 else len(block)
        if end >= 0 and block[length : length + 1] == b"\n":
            length += 1
        return encrypted(Format.AGE, off, length, truncated=cut, writer="age",
                         detail=f"armored; recipients: {_describe(kinds)}")  # fmt: skip


__all__ = ["AgeVerifier", "header"]
