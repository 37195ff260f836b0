"""OpenPGP messages (RFC 4880, RFC 9580): binary packets and ASCII armor.

An encrypted message is one or more session-key packets (PKESK tag 1, SKESK tag 3), then one encrypted data
packet (SEIPD tag 18, AEAD tag 20, or the old SED tag 9). Each packet's header (old or new format; one-, two-,
four-byte and partial lengths) must walk to the next, every session-key packet's fields must be ones
implementations write, and the data packet ends the message. Armor ("-----BEGIN PGP MESSAGE-----") is
base64 of the same, with a CRC-24 line that RFC 9580 makes optional: when present it must match. The armor's
Version or Comment header names the tool (GnuPG, OpenPGP.js...).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import ClassVar, NamedTuple

from sensor.detect.verifiers.base import Context, Verified, verifiers
from sensor.detect.verifiers.encrypted import armored, encrypted
from sensor.model import Buffer, Candidate, Format

PKESK, SKESK, SED, MARKER, SEIPD, AEAD = 1, 3, 9, 10, 18, 20
DATA_TAGS = {SED: "SED", SEIPD: "SEIPD", AEAD: "AEAD"}
PK_ALGOS = {1, 2, 16, 18, 25, 26}  # RSA, RSA-E, Elgamal, ECDH, X25519, X448
SYM_ALGOS = set(range(1, 14))
S2K_TYPES = {0, 1, 3, 4}
MAX_PACKETS = 64  # session keys for many recipients, and the data
MAX_ARMOR = 256 * 1024 * 1024
ARMOR_BEGIN = b"-----BEGIN PGP MESSAGE-----"
ARMOR_END = b"-----END PGP MESSAGE-----"
B64_LINE = re.compile(rb"[A-Za-z0-9+/=]+")


class Packet(NamedTuple):
    tag: int
    body: int  # offset of the body (of its first part, for partial lengths)
    end: int  # offset just past the packet (may be past the data: cut off)


def _packet(d: Buffer, pos: int) -> Packet | None:
    """The packet at `pos`: its tag and extent; None when the header is not a packet header."""
    if pos >= len(d) or not d[pos] & 0x80:
        return None
    first = d[pos]
    if first & 0x40:  # new format
        tag, p = first & 0x3F, pos + 1
        body0: int | None = None  # where the body starts when it comes in partial chunks
        while True:
            if p >= len(d):
                return Packet(tag, p, len(d) + 1)
            o = d[p]
            if o < 192:
                head, n = 1, o
            elif o < 224:
                if p + 1 >= len(d):
                    return Packet(tag, p, len(d) + 1)
                head, n = 2, ((o - 192) << 8) + d[p + 1] + 192
            elif o == 255:
                if p + 5 > len(d):
                    return Packet(tag, p, len(d) + 1)
                head, n = 5, int.from_bytes(bytes(d[p + 1 : p + 5]), "big")
            else:
                if tag not in DATA_TAGS and tag not in (8, 11):  # partial lengths are for data packets only
                    return None
                body0 = p + 1 if body0 is None else body0
                p = p + 1 + (1 << (o & 0x1F))  # a partial chunk: another length follows it
                continue
            return Packet(tag, p + head if body0 is None else body0, p + head + n)
    tag, kind = (first >> 2) & 0x0F, first & 3
    if kind == 3:
        return Packet(tag, pos + 1, -1)  # indeterminate: to the end of the data
    size = (1, 2, 4)[kind]
    if pos + 1 + size > len(d):
        return Packet(tag, pos + 1 + size, len(d) + 1)
    n = int.from_bytes(bytes(d[pos + 1 : pos + 1 + size]), "big")
    return Packet(tag, pos + 1 + size, pos + 1 + size + n)


def _esk_ok(d: Buffer, p: Packet) -> bool:
    b = bytes(d[p.body : min(p.end, len(d), p.body + 64)])
    if p.tag == PKESK:
        return (len(b) >= 12 and b[0] == 3 and b[9] in PK_ALGOS) or (len(b) >= 4 and b[0] == 6)
    if p.tag == SKESK:
        if len(b) >= 4 and b[0] == 4:
            return b[1] in SYM_ALGOS and b[2] in S2K_TYPES
        return len(b) >= 5 and b[0] in (5, 6) and b[1 if b[0] == 5 else 2] in SYM_ALGOS
    return False


def walk(d: Buffer, start: int) -> tuple[int, bool, str] | None:
    """(end, cut off, what) of the encrypted message at `start`, or None when the packets do not walk."""
    pos, esks = start, []
    for _ in range(MAX_PACKETS):
        p = _packet(d, pos)
        if p is None:
            return None
        if p.tag == MARKER and not esks:
            if p.end < 0 or p.end > len(d) or bytes(d[p.body : p.end]) != b"PGP":
                return None
            pos = p.end
            continue
        if p.tag in (PKESK, SKESK):
            if p.end < 0 or not _esk_ok(d, p):
                return None
            esks.append("PKESK" if p.tag == PKESK else "SKESK")
            if p.end > len(d):
                return None if len(esks) == 1 else (len(d), True, " + ".join(esks))
            pos = p.end
            continue
        if p.tag in DATA_TAGS and esks:
            if p.tag in (SEIPD, AEAD) and p.body < len(d) and d[p.body] not in ((1, 2) if p.tag == SEIPD else (1,)):
                return None
            if p.tag == SED and p.end != len(d):
                return None  # the old SED has no version byte to check: believed only when its length ends the data
            what = f"{' + '.join(esks)} + {DATA_TAGS[p.tag]}"
            if p.end < 0:
                return len(d), False, what
            return min(p.end, len(d)), p.end > len(d), what
        return None
    return None


def crc24(data: bytes) -> int:
    """RFC 4880 6.1."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def _armor(d: Buffer, off: int) -> Verified | None:
    block, _ = armored(d, off, ARMOR_END, MAX_ARMOR)
    head_end = block.find(b"\n", len(ARMOR_BEGIN))
    if head_end < 0:
        return None
    lines = block[head_end + 1 :].split(b"\n")
    headers: dict[str, str] = {}
    i = 0
    while i < len(lines) and b":" in lines[i] and not lines[i].startswith(b"-----"):
        key, _, value = lines[i].decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
        i += 1
    if i < len(lines) and not lines[i].strip():
        i += 1
    body, crc_line, end = [], None, None
    used = head_end + 1 + sum(len(x) + 1 for x in lines[:i])
    for line in lines[i:]:
        text = line.strip()
        used += len(line) + 1
        if text.startswith(ARMOR_END):
            end = used
            break
        if text.startswith(b"=") and len(text) == 5:
            crc_line = text[1:]
            continue
        if text and not B64_LINE.fullmatch(text):
            return None
        body.append(text)
    try:
        raw = base64.b64decode(b"".join(body) + b"=" * (-len(b"".join(body)) % 4))
    except (binascii.Error, ValueError):
        return None
    if crc_line is not None:
        try:
            if int.from_bytes(base64.b64decode(crc_line), "big") != crc24(raw):
                return None
        except (binascii.Error, ValueError):
            return None
    found = walk(raw, 0)
    if found is None:
        return None
    _, cut, what = found
    tool = headers.get("version") or headers.get("comment")
    writer = (
        "OpenPGP.js" if tool and "openpgp" in tool.lower() else "GnuPG" if tool and "gnupg" in tool.lower() else tool
    )
    length = min(end if end is not None else len(block), len(d) - off)
    crc = "CRC-24 checked" if crc_line is not None else "no CRC-24 (RFC 9580)"
    return encrypted(Format.OPENPGP, off, length, truncated=cut or end is None, writer=writer,
                     detail=f"armored {what}, {crc}")  # fmt: skip


@verifiers.register(Format.OPENPGP)
class OpenpgpVerifier:
    """A packet walk from the first session-key packet to the end of the encrypted data (binary or armored)."""

    format: ClassVar[Format] = Format.OPENPGP

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        if bytes(data[off : off + len(ARMOR_BEGIN)]) == ARMOR_BEGIN:
            return _armor(data, off)
        found = walk(data, off)
        if found is None:
            return None
        end, cut, what = found
        return encrypted(Format.OPENPGP, off, end - off, truncated=cut, detail=what)


__all__ = ["OpenpgpVerifier", "crc24", "walk"]
