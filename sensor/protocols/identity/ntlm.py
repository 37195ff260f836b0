"""NTLMSSP AUTHENTICATE (MS-NLMP 2.2.1.3): the workstation name a client sends when it authenticates, inside
SMB SESSION_SETUP, HTTP `Authorization: NTLM|Negotiate`, and any other carrier of the blob. A helper, not a
datagram reader: SMB and HTTP call it on the security blobs they already hold.
"""

from __future__ import annotations

import struct

from sensor.model import Identity, NetworkOrigin

SIGNATURE = b"NTLMSSP\x00\x03\x00\x00\x00"
UNICODE = 0x00000001


def _field(blob: bytes, at: int, unicode: bool) -> str:
    length, _, offset = struct.unpack_from("<HHI", blob, at)
    raw = blob[offset : offset + length]
    return raw.decode("utf-16-le", "replace") if unicode else raw.decode("latin-1")


def workstation(data: bytes) -> tuple[str, str, str] | None:
    """(workstation, domain, user) of the first AUTHENTICATE message in `data`, None without one."""
    at = data.find(SIGNATURE)
    if at < 0:
        return None
    blob = data[at:]
    if len(blob) < 64:
        return None
    flags = struct.unpack_from("<I", blob, 60)[0]
    unicode = bool(flags & UNICODE)
    host = _field(blob, 44, unicode).strip()
    if not host:
        return None
    return host, _field(blob, 28, unicode), _field(blob, 36, unicode)


def identity(data: bytes, origin: NetworkOrigin, carrier: str) -> Identity | None:
    """The identity of the client that sent `data` (an NTLMSSP AUTHENTICATE somewhere inside)."""
    try:
        found = workstation(data)
    except struct.error:
        return None
    if found is None:
        return None
    host, domain, user = found
    who = f"{domain}\\{user}" if domain else user
    return Identity(
        address=origin.src,
        name=host,
        source="ntlm",
        ts=origin.ts,
        detail=f"NTLMSSP AUTHENTICATE in {carrier} (user {who})",
        capture=origin.source,
        packet=origin.packet,
    )


__all__ = ["identity", "workstation"]
