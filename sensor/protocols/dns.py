"""DNS over TCP (RFC 1035 4.2.2, RFC 7766): each message behind its two-byte length, to the tunnel tracker.

The datagrams of DNS over UDP reach the same tracker from the scanner (sensor/netscan.py); a TCP stream may
carry many messages (a client pipelining its tunnel's queries, zone transfers). A stream that stops parsing as
DNS is scanned raw from there.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from sensor.protocols import dns_message
from sensor.protocols.base import Wire, extractors
from sensor.protocols.dns_tunnel import DnsTunnels


def _message(data: bytes | bytearray, strict: bool) -> bool | None:
    """Whether `data` starts with a length-prefixed DNS message; None when too few bytes came to say."""
    if len(data) < 2:
        return None
    n = int.from_bytes(data[:2], "big")
    if n < 12:
        return False
    if len(data) < 2 + n:
        return None if len(data) < 2 + 12 or not strict else _header_only(bytes(data[2:14]))
    try:
        dns_message.parse(bytes(data[2 : 2 + n]), strict=strict)
    except dns_message.DnsError:
        return False
    return True


def _header_only(header: bytes) -> bool | None:
    """The header of a long message: plausible enough to wait for the rest."""
    flags, qd = int.from_bytes(header[2:4], "big"), int.from_bytes(header[4:6], "big")
    return None if qd == 1 and not flags & 0x7840 else False


@extractors.register("dns")
class Dns:
    """DNS over TCP: length-prefixed messages from both directions, handed to the per-process tunnel tracker."""

    name: ClassVar[str] = "dns"
    ports: ClassVar[frozenset[int]] = frozenset({53})

    @staticmethod
    def sniff(client: bytes, server: bytes) -> bool | None:
        return _message(client, strict=True)

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        tracker = wire.shared.get("dns")
        self.tunnels = tracker if isinstance(tracker, DnsTunnels) else None

    def parse(self, d: int) -> None:
        buf = self.wire.buf(d)
        while len(buf.data) >= 2:
            n = int.from_bytes(buf.data[:2], "big")
            if len(buf.data) < 2 + n:
                if buf.ended:
                    self.wire.anomaly("message_cut_off")
                    buf.consume(len(buf.data))
                break
            at = buf.base
            try:
                msg = dns_message.parse(bytes(buf.data[2 : 2 + n]))
            except dns_message.DnsError:
                self.wire.raw(d, at, "not_dns")
                return
            buf.consume(2 + n)
            self.wire.count("messages")
            if self.tunnels is not None:
                ts, packet, source = self.wire.stamp(d, at)
                origin = replace(self.wire.origin(d), ts=ts, packet=packet, source=source, protocol="dns")
                self.tunnels.message(msg, origin)

    def gap(self, d: int) -> None:
        return None


__all__ = ["Dns"]
