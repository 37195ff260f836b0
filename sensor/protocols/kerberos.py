"""Kerberos over TCP (RFC 4120 7.2.2): each message behind a 4-byte length; an AS-REQ of a machine account names
its host (sensor/protocols/identity/kerberos.py). Nothing else in Kerberos carries files: past the requests the
connection is read no further."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from sensor.protocols.base import Wire, extractors
from sensor.protocols.identity import Identities
from sensor.protocols.identity import kerberos as krb

MAX_MESSAGE = 64 * 1024


@extractors.register("kerberos")
class Kerberos:
    """AS-REQs from the client side of TCP 88."""

    name: ClassVar[str] = "kerberos"
    ports: ClassVar[frozenset[int]] = frozenset({88})

    @staticmethod
    def sniff(client: bytes, server: bytes) -> bool | None:
        if len(client) < 6:
            return None
        n = int.from_bytes(client[:4], "big")
        return n <= MAX_MESSAGE and client[4] in (0x6A, 0x6C)  # AS-REQ, TGS-REQ

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        found = wire.shared.get("identities")
        self.identities = found if isinstance(found, Identities) else None

    def parse(self, d: int) -> None:
        buf = self.wire.buf(d)
        while len(buf.data) >= 4:
            n = int.from_bytes(buf.data[:4], "big")
            if n > MAX_MESSAGE:
                self.wire.anomaly("message_too_long")
                buf.consume(len(buf.data))
                return
            if len(buf.data) < 4 + n:
                break
            at = buf.base
            msg = bytes(buf.data[4 : 4 + n])
            buf.consume(4 + n)
            self.wire.count("messages")
            if d == 0 and self.identities is not None:
                ts, packet, source = self.wire.stamp(0, at)
                origin = replace(self.wire.origin(0), ts=ts, packet=packet, source=source)
                found = krb.identity(msg, origin)
                if found is not None:
                    self.identities.add(found)
        if buf.ended:
            buf.consume(len(buf.data))

    def gap(self, d: int) -> None:
        return None


__all__ = ["Kerberos"]
