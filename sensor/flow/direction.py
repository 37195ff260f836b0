"""ECS `network.direction` of bytes from their sender and receiver against home_net."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from sensor.config import Settings
from sensor.errors import ConfigError

DEFAULT_HOME_NET = Settings.__dataclass_fields__["home_net"].default  # one default, in config.py
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class HomeNet:
    """The protected networks; answers inside/outside for raw 4- or 16-byte addresses, cached."""

    def __init__(self, cidrs: Iterable[str] = DEFAULT_HOME_NET) -> None:
        nets: list[Network] = []
        for c in cidrs:
            c = c.strip()
            if not c:
                continue
            try:
                nets.append(ipaddress.ip_network(c, strict=False))
            except ValueError as e:
                raise ConfigError("--home-net", f"{c!r} is not a network: {e}") from None
        self.networks = tuple(nets)
        # (network, mask) as integers by address length: a flood of new hosts is tested without ipaddress objects
        self._masks: dict[int, tuple[tuple[int, int], ...]] = {
            size: tuple((int(n.network_address), int(n.netmask)) for n in nets if n.max_prefixlen == size * 8)
            for size in (4, 16)
        }
        self._cache: dict[bytes, bool] = {}

    def inside(self, addr: bytes) -> bool:
        hit = self._cache.get(addr)
        if hit is None:
            value = int.from_bytes(addr, "big")
            hit = any(value & mask == net for net, mask in self._masks.get(len(addr), ()))
            if len(self._cache) < 1 << 16:
                self._cache[addr] = hit
        return hit

    def direction(self, sender: bytes, receiver: bytes) -> str:
        """outbound (inside to outside), inbound, internal or external."""
        s, r = self.inside(sender), self.inside(receiver)
        if s and not r:
            return "outbound"
        if r and not s:
            return "inbound"
        return "internal" if s else "external"


@functools.lru_cache(maxsize=1 << 16)
def ip_text(addr: bytes) -> str:
    """Printable address of 4 or 16 raw bytes (cached: flows repeat their hosts)."""
    return str(ipaddress.ip_address(addr))


def endpoint_text(ip: str | None, port: int | str | None) -> str:
    """An address and port as analysts write them: 10.0.0.1:80, [2001:db8::1]:80 (RFC 3986 brackets)."""
    host = ip or "?"
    if ":" in host:
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"
