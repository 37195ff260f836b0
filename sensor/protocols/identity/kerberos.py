"""Kerberos AS-REQ (RFC 4120): a computer account asking for its ticket names the host at the request's source.

Only the clear KDC-REQ-BODY is read: its cname, when the principal ends in `$` (a machine account: `WS-07$`),
and the realm. A user's name is not a host's, so any other principal is left alone. Read over UDP here and over
TCP (each message behind a 4-byte length) by sensor/protocols/kerberos.py.
"""

from __future__ import annotations

from typing import ClassVar

from sensor.model import Identity, NetworkOrigin
from sensor.protocols.identity.base import sources

AS_REQ = 0x6A  # [APPLICATION 10], constructed


def tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at `pos`; ValueError when cut off."""
    if pos + 2 > len(data):
        raise ValueError("element cut off")
    tag, n = data[pos], data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if not 1 <= k <= 4 or pos + k > len(data):
            raise ValueError("bad length")
        n = int.from_bytes(data[pos : pos + k], "big")
        pos += k
    if pos + n > len(data):
        raise ValueError("value cut off")
    return tag, pos, pos + n


def children(data: bytes, start: int, end: int) -> dict[int, tuple[int, int]]:
    """The context-tagged children ([n]) of a SEQUENCE's value: n -> (start, end) of each one's content."""
    out: dict[int, tuple[int, int]] = {}
    pos = start
    while pos < end:
        tag, s, e = tlv(data, pos)
        if tag & 0xE0 == 0xA0:
            out.setdefault(tag & 0x1F, (s, e))
        pos = e
    return out


def _sequence(data: bytes, span: tuple[int, int]) -> dict[int, tuple[int, int]]:
    tag, s, e = tlv(data, span[0])
    if tag != 0x30:
        raise ValueError("not a SEQUENCE")
    return children(data, s, e)


def machine_account(data: bytes) -> tuple[str, str] | None:
    """(host, realm) of an AS-REQ whose client principal is a machine account, else None."""
    tag, s, e = tlv(data, 0)
    if tag != AS_REQ:
        return None
    req = _sequence(data, (s, e))
    if 4 not in req:
        return None
    body = _sequence(data, req[4])
    if 1 not in body:
        return None
    cname = _sequence(data, body[1])
    if 1 not in cname:
        return None
    tag, s, e = tlv(data, cname[1][0])  # name-string: SEQUENCE OF KerberosString
    if tag != 0x30:
        return None
    tag, ns, ne = tlv(data, s)
    name = data[ns:ne].decode("utf-8", "replace")
    realm = ""
    if 2 in body:
        _, rs, re_ = tlv(data, body[2][0])
        realm = data[rs:re_].decode("utf-8", "replace")
    if len(name) < 2 or not name.endswith("$"):
        return None
    return name[:-1], realm


def identity(data: bytes, origin: NetworkOrigin) -> Identity | None:
    """The identity an AS-REQ from `origin.src` states, if its client is a machine account."""
    try:
        found = machine_account(data)
    except ValueError:
        return None
    if found is None:
        return None
    host, realm = found
    name = f"{host}.{realm.lower()}" if realm and "." in realm else host
    return Identity(
        address=origin.src,
        name=name,
        source="kerberos",
        ts=origin.ts,
        detail=f"AS-REQ cname {host}$@{realm}" if realm else f"AS-REQ cname {host}$",
        capture=origin.source,
        packet=origin.packet,
    )


@sources.register("kerberos")
class Kerberos:
    """AS-REQs over UDP 88."""

    ports: ClassVar[frozenset[int]] = frozenset({88})

    def read(self, payload: bytes, origin: NetworkOrigin) -> list[Identity]:
        if origin.dport != 88:
            return []
        found = identity(payload, origin)
        return [found] if found else []


__all__ = ["Kerberos", "identity", "machine_account", "tlv"]
