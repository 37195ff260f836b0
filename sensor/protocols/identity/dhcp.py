"""DHCP (RFC 2131, 2132, 4702): the address the server gives a MAC, and the name the client asked it for.

The address comes from the server's DHCPACK (yiaddr, or ciaddr for an INFORM), never from an IP source, which
is 0.0.0.0 or a relay's. The name comes from option 81 (FQDN) or 12 (host name), in the ACK or else in the
client's REQUEST or INFORM with the same transaction id and MAC. The lease (option 51) bounds the claim; an
ACK of the address to another MAC replaces whatever was said of it before.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import OrderedDict
from typing import ClassVar

from sensor.model import Identity, NetworkOrigin
from sensor.protocols.identity.base import sources

COOKIE = b"\x63\x82\x53\x63"
ACK, REQUEST, INFORM, DISCOVER = 5, 3, 8, 1
MAX_PENDING = 4096


def options(data: bytes) -> dict[int, bytes]:
    """The options after the magic cookie (the first of each code; pad and end honoured)."""
    out: dict[int, bytes] = {}
    pos = 240
    while pos < len(data):
        code = data[pos]
        if code == 0:
            pos += 1
            continue
        if code == 255 or pos + 1 >= len(data):
            break
        n = data[pos + 1]
        out.setdefault(code, data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return out


def name_of(opts: dict[int, bytes]) -> tuple[str | None, str | None]:
    """(name, which option gave it): the FQDN (option 81, wire or ASCII form) before the host name (12)."""
    fqdn = opts.get(81)
    if fqdn and len(fqdn) > 3:
        raw = fqdn[3:]
        if fqdn[0] & 0x04:  # E: the name in DNS wire form
            labels, pos = [], 0
            while pos < len(raw) and raw[pos]:
                labels.append(raw[pos + 1 : pos + 1 + raw[pos]])
                pos += 1 + raw[pos]
            raw = b".".join(labels)
        text = raw.decode("utf-8", "replace").strip(". \x00")
        if text:
            return text, "option 81"
    host = opts.get(12)
    if host:
        text = host.decode("utf-8", "replace").strip(" \x00")
        if text:
            return text, "option 12"
    return None, None


@sources.register("dhcp")
class Dhcp:
    """DHCPACKs, named by the ACK itself or by the client's REQUEST/INFORM/DISCOVER of the same transaction."""

    ports: ClassVar[frozenset[int]] = frozenset({67, 68})

    def __init__(self) -> None:
        self.asked: OrderedDict[tuple[bytes, bytes], tuple[str, str]] = OrderedDict()  # (xid, mac) -> name

    def read(self, payload: bytes, origin: NetworkOrigin) -> list[Identity]:
        if len(payload) < 240 or payload[236:240] != COOKIE:
            return []
        op, hlen = payload[0], min(payload[2], 16)
        xid, mac_raw = payload[4:8], payload[28 : 28 + hlen]
        opts = options(payload)
        kind = opts.get(53, b"\x00")[0:1]
        msg = kind[0] if kind else 0
        name, how = name_of(opts)
        if op == 1:
            if name and msg in (REQUEST, INFORM, DISCOVER):
                self.asked[(xid, mac_raw)] = (name, how or "")
                if len(self.asked) > MAX_PENDING:
                    self.asked.popitem(last=False)
            return []
        if op != 2 or msg != ACK:
            return []
        ciaddr, yiaddr = payload[12:16], payload[16:20]
        addr = yiaddr if yiaddr != b"\x00" * 4 else ciaddr
        if addr == b"\x00" * 4:
            return []
        if name is None:
            name, how = self.asked.get((xid, mac_raw), (None, None))
            how = f"client's {how}" if how else None
        lease = opts.get(51)
        seconds = struct.unpack("!I", lease)[0] if lease and len(lease) == 4 else None
        until = None if seconds is None or seconds == 0xFFFFFFFF else origin.ts + seconds
        mac = ":".join(f"{b:02x}" for b in mac_raw) if hlen == 6 else mac_raw.hex() or None
        return [
            Identity(
                address=str(ipaddress.IPv4Address(addr)),
                name=name,
                source="dhcp",
                ts=origin.ts,
                until=until,
                mac=mac,
                detail=f"DHCPACK {how}" if how else "DHCPACK without a host name",
                capture=origin.source,
                packet=origin.packet,
            )
        ]


__all__ = ["Dhcp", "name_of", "options"]
