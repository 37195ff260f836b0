"""Who had which address when, from the identities the wire stated (sensor/protocols/identity/).

Each address's claims are read in time order. A claim holds for its lease (DHCP) or until a claim of equal or
higher trust replaces it; a DHCPACK of the address to another MAC replaces whatever was said before, whatever
its trust. A finding is attributed by its own time: an address that moved from one host to another between two
findings names each by the host that held it then. Host maps and host telemetry rank above every wire source
and are kept by HostMap itself.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable

from sensor.model import Identity
from sensor.protocols.identity.base import TRUST


class Claims:
    """Every address's identities in time order, resolved at a given time."""

    def __init__(self, identities: Iterable[Identity] = ()) -> None:
        self.by_address: dict[str, list[Identity]] = defaultdict(list)
        for i in identities:
            self.by_address[i.address].append(i)
        for claims in self.by_address.values():
            claims.sort(key=lambda i: (i.ts, -TRUST.get(i.source, 0)))
        self.times = {a: [i.ts for i in c] for a, c in self.by_address.items()}

    def at(self, address: str, ts: float) -> Identity | None:
        """The claim in force for `address` at `ts`, None when none is (or the address went to an unnamed host)."""
        claims = self.by_address.get(address)
        if not claims:
            return None
        current: Identity | None = None
        mac: str | None = None
        for c in claims[: bisect.bisect_right(self.times[address], ts)]:
            moved = c.source == "dhcp" and c.mac is not None and mac is not None and c.mac != mac
            if c.source == "dhcp" and c.mac:
                mac = c.mac
            if current is None or moved or _over(current, c.ts) or not current.name or _trust(c) >= _trust(current):
                current = c  # (a claim that named nobody, the address handed to a new MAC, gives way to any name)
        if current is None or _over(current, ts) or not current.name:
            return None
        return current

    def addresses(self) -> list[str]:
        return sorted(self.by_address)

    def all(self) -> list[Identity]:
        return [i for a in self.addresses() for i in self.by_address[a]]


def _trust(i: Identity) -> int:
    return TRUST.get(i.source, 0)


def _over(i: Identity, ts: float) -> bool:
    return i.until is not None and ts > i.until


__all__ = ["Claims"]
