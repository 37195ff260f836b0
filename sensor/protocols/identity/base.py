"""The seam of host identities: one reader per protocol that names hosts, registered by name.

A reader is asked about the datagrams of its ports and returns the identities they state; it may keep state
(DHCP pairs a client's REQUEST, which names the host, with the server's ACK, which gives the address). TCP
protocols (Kerberos over TCP, NTLMSSP inside SMB and HTTP) call `Identities.add` from their extractors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Protocol

from sensor.model import Identity, NetworkOrigin
from sensor.registry import Registry

# Which claim wins when sources disagree (issue "Correlation as evidence really arrives"): a host map, then
# Sysmon or another agent on the host, then Kerberos and NTLM (the host authenticating), DHCP, name services.
TRUST = {"hostmap": 5, "agent": 4, "kerberos": 3, "ntlm": 3, "dhcp": 2, "nbns": 1, "llmnr": 1, "mdns": 1}
REPEAT = 3600.0  # seconds during which the same claim said again (refreshes, announcements) is not recorded again


class Reader(Protocol):
    """Identities stated by the datagrams of `ports` (either end)."""

    ports: ClassVar[frozenset[int]]

    def read(self, payload: bytes, origin: NetworkOrigin) -> list[Identity]: ...


sources: Registry[type] = Registry("identity source")


class Identities:
    """One process's identity readers, and what they found, handed to `emit` once per claim (and per hour)."""

    def __init__(self, emit: Callable[[Identity], None]) -> None:
        self.emit = emit
        self.by_port: dict[int, list[Reader]] = {}
        for _, cls in sources.items():
            reader = cls()
            for port in cls.ports:
                self.by_port.setdefault(port, []).append(reader)
        self.said: dict[tuple[str, str | None, str | None, str], float] = {}

    def datagram(self, sport: int, dport: int, payload: bytes, origin: NetworkOrigin) -> None:
        """A UDP datagram between `sport` and `dport`: its readers, if any, look at it."""
        readers = self.by_port.get(dport) or self.by_port.get(sport)
        if not readers:
            return
        for reader in readers:
            try:
                found = reader.read(payload, origin)
            except (ValueError, IndexError):  # hostile bytes: the reader's parse gave up
                continue
            for identity in found:
                self.add(identity)

    def add(self, identity: Identity) -> None:
        key = (identity.address, identity.name, identity.mac, identity.source)
        last = self.said.get(key)
        if last is not None and 0 <= identity.ts - last < REPEAT:
            return
        if len(self.said) > 100_000:
            self.said.clear()
        self.said[key] = identity.ts
        self.emit(identity)


def endpoint(origin: NetworkOrigin) -> tuple[str, str, int]:
    """(capture, sender address, packet) of a datagram's origin, for an Identity."""
    return origin.source, origin.src, origin.packet


__all__ = ["TRUST", "Identities", "Reader", "endpoint", "sources"]
