"""CMS / PKCS#7 EnvelopedData and AuthEnvelopedData (RFC 5652, 5083): `openssl cms -encrypt`, `openssl smime`,
S/MIME mail (once base64 is peeled), .p7m files. DER or BER (indefinite lengths, constructed strings, as streaming
encoders write). Proven by the walk: ContentInfo's type, then a version, a non-empty set of recipient infos,
and the encrypted content info (its type, the content-encryption algorithm, the content). The member is the
outer SEQUENCE; one that runs past the data is truncated."""

from __future__ import annotations

from typing import ClassVar

from sensor.detect.verifiers.base import Context, Verified, verifiers
from sensor.detect.verifiers.encrypted import encrypted
from sensor.model import Buffer, Candidate, Format

ENVELOPED = bytes.fromhex("06092a864886f70d010703")
AUTH_ENVELOPED = bytes.fromhex("060b2a864886f70d0109100117")
MAX_DEPTH = 32
CIPHERS = {  # content-encryption algorithm OIDs (DER value) -> name
    bytes.fromhex("608648016503040102"): "aes-128-cbc",
    bytes.fromhex("608648016503040116"): "aes-192-cbc",
    bytes.fromhex("60864801650304012a"): "aes-256-cbc",
    bytes.fromhex("608648016503040106"): "aes-128-gcm",
    bytes.fromhex("60864801650304012e"): "aes-256-gcm",
    bytes.fromhex("2a864886f70d0307"): "des-ede3-cbc",
}
RECIPIENTS = {0x30: "key transport", 0xA1: "key agreement", 0xA2: "KEK", 0xA3: "password", 0xA4: "other"}


class BerError(ValueError):
    """Not BER where BER was expected."""


def header(d: Buffer, pos: int) -> tuple[int, int, int | None]:
    """(tag, start of the content, content length or None for indefinite) of the element at `pos`."""
    if pos + 2 > len(d):
        raise BerError("cut off")
    tag, n = d[pos], d[pos + 1]
    pos += 2
    if tag & 0x1F == 0x1F:
        raise BerError("high tag numbers are not used here")
    if n == 0x80:
        if not tag & 0x20:
            raise BerError("indefinite length on a primitive")
        return tag, pos, None
    if n & 0x80:
        k = n & 0x7F
        if not 1 <= k <= 4 or pos + k > len(d):
            raise BerError("bad length")
        n = int.from_bytes(bytes(d[pos : pos + k]), "big")
        pos += k
    return tag, pos, n


def end_of(d: Buffer, pos: int, depth: int = 0) -> int:
    """The offset just past the element at `pos` (BER: indefinite lengths walked to their end-of-contents);
    may be past len(d) when the element is cut off."""
    if depth > MAX_DEPTH:
        raise BerError("nested too deep")
    tag, start, n = header(d, pos)
    if n is not None:
        return start + n
    p = start
    while True:
        if p + 2 > len(d):
            return len(d) + 1
        if d[p] == 0 and d[p + 1] == 0:
            return p + 2
        p = end_of(d, p, depth + 1)


def children(d: Buffer, pos: int) -> list[int]:
    """The offsets of the elements inside the constructed element at `pos` (as far as the data goes)."""
    tag, start, n = header(d, pos)
    stop = min(start + n, len(d)) if n is not None else len(d)
    out, p = [], start
    while p < stop and len(out) < 64:
        if n is None and p + 2 <= len(d) and d[p] == 0 and d[p + 1] == 0:
            break
        out.append(p)
        p = end_of(d, p)
    return out


def _start(d: Buffer, oid_at: int) -> int | None:
    """The outer SEQUENCE whose content begins with the OID at `oid_at`."""
    for back in (2, 3, 4, 5, 6):
        s = oid_at - back
        if s < 0 or d[s] != 0x30:
            continue
        try:
            _, content, _ = header(d, s)
        except BerError:
            continue
        if content == oid_at:
            return s
    return None


@verifiers.register(Format.CMS)
class CmsVerifier:
    """ContentInfo -> EnvelopedData (version, recipients, encrypted content info), walked in BER."""

    format: ClassVar[Format] = Format.CMS

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        start = _start(data, cand.offset)
        if start is None:
            return None
        try:
            return self._walk(data, start, cand.offset)
        except (BerError, IndexError):
            return None

    def _walk(self, d: Buffer, start: int, oid_at: int) -> Verified | None:
        auth = bytes(d[oid_at : oid_at + len(AUTH_ENVELOPED)]) == AUTH_ENVELOPED
        top = children(d, start)
        if len(top) < 2 or d[top[1]] != 0xA0:
            return None
        inner = children(d, top[1])
        if not inner or d[inner[0]] != 0x30:
            return None
        parts = children(d, inner[0])
        if len(parts) < 3 or d[parts[0]] != 0x02:
            return None
        _, v, vlen = header(d, parts[0])
        if vlen != 1 or d[v] not in (0, 2, 3, 4):
            return None
        i = 1
        if d[parts[i]] == 0xA0:  # originatorInfo
            i += 1
        if i + 1 >= len(parts) or d[parts[i]] != 0x31:
            return None
        recipients = children(d, parts[i])
        if not recipients or any(d[r] not in RECIPIENTS for r in recipients):
            return None
        eci = children(d, parts[i + 1])
        if d[parts[i + 1]] != 0x30 or len(eci) < 2 or d[eci[0]] != 0x06 or d[eci[1]] != 0x30:
            return None
        alg = children(d, eci[1])
        if not alg or d[alg[0]] != 0x06:
            return None
        _, a, alen = header(d, alg[0])
        cipher = CIPHERS.get(bytes(d[a : a + (alen or 0)]), "another cipher")
        if len(eci) > 2 and d[eci[2]] not in (0x80, 0xA0):
            return None
        end = end_of(d, start)
        kinds = sorted({RECIPIENTS[d[r]] for r in recipients})
        what = "AuthEnvelopedData" if auth else "EnvelopedData"
        return encrypted(Format.CMS, start, min(end, len(d)) - start, truncated=end > len(d),
                         detail=f"{what}, {len(recipients)} recipient(s) by {', '.join(kinds)}, {cipher}")  # fmt: skip


__all__ = ["CmsVerifier", "end_of"]
