"""What the query commands filter on (`findings`, `host-findings`, `flows`, `objects`), and how a record matches.

Columns narrow the rows in SQL where the table has them; fields that live only in the stored ECS record
(addresses, community id, protocol) narrow by a text match in SQL and are then checked exactly on the
parsed record, so `--ip 10.0.0.1` never matches 10.0.0.10.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

SORTS = ("time", "severity")


@dataclass(frozen=True, slots=True)
class Query:
    """Filters of a query command; None means any. `limit` keeps the newest (or the highest with sort=severity)."""

    since: float | None = None
    until: float | None = None
    kind: str | None = None
    host: str | None = None
    ip: str | None = None
    format: str | None = None
    sha256: str | None = None
    community_id: str | None = None
    protocol: str | None = None
    min_severity: int | None = None
    flow: str | None = None
    limit: int | None = None
    sort: str = "time"

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"--sort {self.sort!r}: expected one of {', '.join(SORTS)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit {self.limit}: expected a positive number")
        if self.ip is not None:
            try:
                object.__setattr__(self, "ip", str(ipaddress.ip_address(self.ip.strip("[]"))))
            except ValueError:
                raise ValueError(f"--ip {self.ip!r}: not an IPv4 or IPv6 address") from None
        if self.sha256 is not None:
            object.__setattr__(self, "sha256", self.sha256.lower())


def short_host(name: str | None) -> str:
    """A host name without its domain, lower case: WS-01.corp.example and ws-01 are one host."""
    return (name or "").lower().split(".", 1)[0]


def record_matches(q: Query, r: dict[str, Any]) -> bool:
    """The exact test of the filters that the table has no column for, on one parsed ECS record."""
    if q.ip is not None and q.ip not in _ips(r):
        return False
    net = r.get("network") or {}
    if q.community_id is not None and net.get("community_id") != q.community_id:
        return False
    if q.protocol is not None and (net.get("protocol") or net.get("transport") or "").lower() != q.protocol.lower():
        return False
    if q.host is not None and short_host(q.host) not in {short_host(h) for h in _hosts(r)}:
        return False
    return q.sha256 is None or q.sha256 in _hashes(r)


def _ips(r: dict[str, Any]) -> set[str]:
    out = {(r.get(side) or {}).get("ip") for side in ("source", "destination")}
    host_ip = (r.get("host") or {}).get("ip") or []
    out.update(host_ip if isinstance(host_ip, list) else [host_ip])
    return {str(ipaddress.ip_address(a)) for a in out if a}


def _hosts(r: dict[str, Any]) -> list[str]:
    return [h for h in ((r.get("host") or {}).get("name"),) if h]


def _hashes(r: dict[str, Any]) -> set[str]:
    f = (r.get("file") or {}).get("hash") or {}
    container = (r.get("stagewatch") or {}).get("container") or {}
    return {h for h in (f.get("sha256"), container.get("sha256")) if h}


__all__ = ["SORTS", "Query", "record_matches", "short_host"]
