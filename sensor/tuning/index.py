"""An index over suppression entries, so a long list costs a few dict lookups per result, not a scan of it.

Every key an entry gives must hold, so an entry can only match a result that one of its keys points at:
each entry is filed under one key (a hash, a destination or source network, a domain or a domain suffix)
and only the entries the result's values reach, plus those no key could file, are tried, in file order,
so the first entry that matches still wins."""

from __future__ import annotations

import ipaddress
from collections import defaultdict

from sensor.tuning.facts import Address, Facts
from sensor.tuning.suppress import Entry, Network

_GLOB_CHARS = set("*?[")


def _suffix(pattern: str) -> str | None:
    """`*.example.com` -> `example.com`: the one glob shape a suffix lookup answers exactly; else None."""
    if pattern.startswith("*.") and not _GLOB_CHARS & set(pattern[2:]):
        return pattern[2:]
    return None


class EntryIndex:
    """Entries filed by one of their keys; `candidates` gives the positions worth trying for a result."""

    def __init__(self, entries: list[Entry]) -> None:
        self.sha: dict[str, list[int]] = defaultdict(list)
        self.nets: dict[tuple[str, int, int], dict[Network, list[int]]] = defaultdict(lambda: defaultdict(list))
        self.domains: dict[str, list[int]] = defaultdict(list)
        self.suffixes: dict[str, list[int]] = defaultdict(list)
        self.rest: list[int] = []
        for i, e in enumerate(entries):
            self._file(i, e)

    def _file(self, i: int, e: Entry) -> None:
        m = e.match
        if m.sha256:
            for h in m.sha256:
                self.sha[h].append(i)
            return
        for side, nets in (("dst", m.destination), ("src", m.source)):
            if nets:
                for n in nets:
                    self.nets[(side, n.version, n.prefixlen)][n].append(i)
                return
        if m.domain_patterns and all(not _GLOB_CHARS & set(p) or _suffix(p) for p in m.domain_patterns):
            for p in m.domain_patterns:
                suffix = _suffix(p)
                if suffix is None:
                    self.domains[p].append(i)
                else:
                    self.suffixes[suffix].append(i)
            return
        self.rest.append(i)

    def candidates(self, f: Facts) -> list[int]:
        """Entry positions, in file order, that could match `f`."""
        found: set[int] = set(self.rest)
        for h in f.sha256:
            found.update(self.sha.get(h, ()))
        for (side, version, plen), table in self.nets.items():
            addr: Address | None = f.dst_addr if side == "dst" else f.src_addr
            if addr is not None and addr.version == version:
                found.update(table.get(ipaddress.ip_network((addr, plen), strict=False), ()))
        for d in f.domains:
            found.update(self.domains.get(d, ()))
            labels = d.split(".")
            for k in range(1, len(labels)):
                found.update(self.suffixes.get(".".join(labels[k:]), ()))
        return sorted(found)


__all__ = ["EntryIndex"]
