"""Suppression entries: an analyst's reviewed exception (a backup agent, a package mirror) with a reason, an
author and an expiry. A match is never dropped: the finding is kept as an event naming the entry."""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from sensor.errors import ConfigError
from sensor.tuning.facts import Address, Facts

# the keys an entry may test; every key given must match (AND), any value of a list may (OR)
MATCH_KEYS = ("source", "destination", "host", "domain", "url", "sha256", "process", "path", "rule", "format")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


Glob = re.Pattern[str]


def _compile(pattern: str, fold_slashes: bool = False) -> Glob:
    """A case-insensitive glob over the whole value, as a regex; for paths and images \\ and / are one separator."""
    p = pattern.strip().lower()  # stripped as the index files it (`domain_patterns`), and as CIDRs and hashes are
    return re.compile(fnmatch.translate(p.replace("\\", "/") if fold_slashes else p))


def _hit(globs: tuple[Glob, ...], value: str | None) -> bool:
    return value is not None and any(g.fullmatch(value) for g in globs)  # `backup.x` never hits `xbackup.x`


def _in(nets: tuple[Network, ...], addr: Address | None) -> bool:
    return addr is not None and any(addr.version == n.version and addr in n for n in nets)


@dataclass(frozen=True, slots=True)
class Matcher:
    """The tests of one entry, already parsed (CIDRs as networks, sha256 lower-cased)."""

    source: tuple[Network, ...] = ()
    destination: tuple[Network, ...] = ()
    host: tuple[Glob, ...] = ()
    domain: tuple[Glob, ...] = ()
    url: tuple[Glob, ...] = ()
    sha256: frozenset[str] = frozenset()
    process: tuple[Glob, ...] = ()
    path: tuple[Glob, ...] = ()
    rule: tuple[Glob, ...] = ()
    format: frozenset[str] = frozenset()
    domain_patterns: tuple[str, ...] = ()  # `domain` as written (lower-cased), for the entry index

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str) -> Matcher:
        """The match keys of `raw`; a bad CIDR, hash or empty value is a ConfigError at `where`."""
        vals: dict[str, tuple[str, ...]] = {}
        for key in MATCH_KEYS:
            if key not in raw:
                continue
            v = raw[key]
            items = tuple(str(x) for x in (v if isinstance(v, list) else [v]))
            if not items or any(not x.strip() for x in items):
                raise ConfigError(where, f"{key}: empty value")
            vals[key] = items
        try:
            nets = {k: tuple(ipaddress.ip_network(x.strip(), strict=False) for x in vals.get(k, ())) for k in
                    ("source", "destination")}  # fmt: skip
        except ValueError as e:
            raise ConfigError(where, f"not an address or CIDR: {e}") from None
        hashes = frozenset(x.strip().lower() for x in vals.get("sha256", ()))
        if any(len(h) != 64 or set(h) - set("0123456789abcdef") for h in hashes):
            raise ConfigError(where, "sha256: expected 64 hex digits")
        return cls(
            source=nets["source"],
            destination=nets["destination"],
            host=tuple(_compile(p) for p in vals.get("host", ())),
            domain=tuple(_compile(p) for p in vals.get("domain", ())),
            url=tuple(_compile(p) for p in vals.get("url", ())),
            sha256=hashes,
            process=tuple(_compile(p, fold_slashes=True) for p in vals.get("process", ())),
            path=tuple(_compile(p, fold_slashes=True) for p in vals.get("path", ())),
            rule=tuple(_compile(p) for p in vals.get("rule", ())),
            format=frozenset(x.lower() for x in vals.get("format", ())),
            domain_patterns=tuple(x.strip().lower() for x in vals.get("domain", ())),
        )

    def empty(self) -> bool:
        return not any(getattr(self, k) for k in MATCH_KEYS)

    def has(self, key: str) -> bool:
        """True when this matcher tests `key` (one of MATCH_KEYS)."""
        return bool(getattr(self, key))

    def matches(self, f: Facts) -> bool:
        """True when every key this matcher tests holds for `f` (whose text fields are lower-cased)."""
        if self.destination and not _in(self.destination, f.dst_addr):
            return False
        if self.source and not _in(self.source, f.src_addr):
            return False
        if self.domain and not any(_hit(self.domain, d) for d in f.domains):
            return False
        if self.url and not _hit(self.url, f.url):
            return False
        if self.sha256 and not self.sha256.intersection(f.sha256):
            return False
        if self.host and not _hit(self.host, f.host):
            return False
        if self.process and not _hit(self.process, f.process):
            return False
        if self.path and not _hit(self.path, f.path):
            return False
        if self.rule and not any(_hit(self.rule, r) for r in f.rules):
            return False
        return not self.format or f.format in self.format


@dataclass(frozen=True, slots=True)
class Entry:
    """One suppression entry: what it matches, why, who wrote it, until when."""

    name: str
    reason: str
    author: str
    expires: float | None  # epoch seconds; None = no expiry
    match: Matcher
    where: str  # file:line, for messages

    def active(self, now: float) -> bool:
        return self.expires is None or now <= self.expires


__all__ = ["MATCH_KEYS", "Entry", "Matcher"]
