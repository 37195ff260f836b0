"""Name services on the local link: NetBIOS (RFC 1001/1002, UDP 137), LLMNR (RFC 4795, UDP 5355) and mDNS
(RFC 6762, UDP 5353). A host registering or refreshing its NetBIOS name, or answering for its own name, states
the address it holds: the lowest trust of all sources (anyone on the link can answer), kept until a better
claim replaces it.
"""

from __future__ import annotations

import ipaddress
from typing import ClassVar

from sensor.model import Identity, NetworkOrigin
from sensor.protocols import dns_message
from sensor.protocols.identity.base import sources

NB, A, AAAA = 0x20, 1, 28
REGISTRATION, REFRESH, REFRESH_ALT = 5, 8, 9


def netbios_name(label: bytes) -> tuple[str, int] | None:
    """The 15-character name and suffix byte of a first-level encoded NetBIOS name (32 letters A-P)."""
    if len(label) != 32 or any(not 0x41 <= c <= 0x50 for c in label):
        return None
    raw = bytes(((label[i] - 0x41) << 4) | (label[i + 1] - 0x41) for i in range(0, 32, 2))
    return raw[:15].rstrip(b" ").decode("ascii", "replace"), raw[15]


@sources.register("names")
class NameServices:
    """NetBIOS registrations, refreshes and answers; LLMNR and mDNS answers with A/AAAA records."""

    ports: ClassVar[frozenset[int]] = frozenset({137, 5353, 5355})

    def read(self, payload: bytes, origin: NetworkOrigin) -> list[Identity]:
        try:
            flags, _, questions, rrs = dns_message.records(payload)
        except dns_message.DnsError:
            return []
        if 137 in (origin.sport, origin.dport):
            return self._netbios(flags, questions, rrs, origin)
        if not flags & 0x8000:
            return []  # LLMNR and mDNS state addresses in answers only
        source = "mdns" if 5353 in (origin.sport, origin.dport) else "llmnr"
        out = []
        for rr in rrs:
            if rr.rtype not in (A, AAAA) or not rr.labels or len(rr.rdata) not in (4, 16):
                continue
            labels = list(rr.labels)
            if source == "mdns" and labels[-1].lower() == b"local":
                labels.pop()
            if len(labels) != 1:
                continue  # a service or another domain's name: not a host's own
            out.append(self._identity(rr.rdata, labels[0].decode("utf-8", "replace"), source, origin, "answer"))
        return out

    def _netbios(self, flags, questions, rrs, origin: NetworkOrigin) -> list[Identity]:  # type: ignore[no-untyped-def]
        opcode, response = (flags >> 11) & 0xF, bool(flags & 0x8000)
        if not ((opcode in (REGISTRATION, REFRESH, REFRESH_ALT) and not response) or (opcode == 0 and response)):
            return []
        out = []
        for rr in rrs:
            if rr.rtype != NB or len(rr.rdata) < 6 or not rr.labels:
                continue
            name = netbios_name(rr.labels[0])
            nb_flags = int.from_bytes(rr.rdata[:2], "big")
            if name is None or nb_flags & 0x8000 or name[1] not in (0x00, 0x20):
                continue  # a group name, or a service's (domain controller, browser...), is not the host's own
            what = "answer" if response else ("registration" if opcode == REGISTRATION else "refresh")
            out.append(self._identity(rr.rdata[2:6], name[0], "nbns", origin, what))
        return out

    @staticmethod
    def _identity(addr: bytes, name: str, source: str, origin: NetworkOrigin, what: str) -> Identity:
        return Identity(
            address=str(ipaddress.ip_address(addr)),
            name=name,
            source=source,
            ts=origin.ts,
            detail=f"{source} {what} from {origin.src}",
            capture=origin.source,
            packet=origin.packet,
        )


__all__ = ["NameServices", "netbios_name"]
