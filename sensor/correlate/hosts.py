"""Which host is which: names and addresses learned from the telemetry itself, and a --host-map file.

Sysmon Event ID 3 names the host and its source address, winlogbeat carries `host.ip`; a staged tree
copied from many hosts names them by path (--host-from-path). Names are compared without their
domain and case ("WS-01.corp.example" is "ws-01"), as analysts and DHCP logs mix both.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from sensor.correlate.identities import Claims
from sensor.errors import InputError
from sensor.model import HostEvent


def short(name: str | None) -> str | None:
    """The comparable form of a host name."""
    if not name:
        return None
    n = name.strip().lower()
    try:
        ipaddress.ip_address(n)
        return n  # an address stays whole
    except ValueError:
        return n.split(".", 1)[0] or None


class HostMap:
    """Address -> host name, and name -> addresses, as far as anything says."""

    def __init__(self) -> None:
        self.name_of_ip: dict[str, str] = {}
        self.ips_of: dict[str, set[str]] = {}
        self.display: dict[str, str] = {}  # short name -> the fullest name seen
        self.said_by: dict[str, str] = {}  # address -> what tied it to its name (host map, host telemetry)
        self.claims = Claims()  # the wire's identities (DHCP, NetBIOS, Kerberos...), by time

    def add(self, name: str | None, ips: Iterable[str], said_by: str = "host map") -> None:
        key = short(name)
        if key is None:
            return
        if name and len(name) > len(self.display.get(key, "")):
            self.display[key] = name
        for ip in ips:
            if ip and not ip.startswith(("127.", "::1", "169.254.", "fe80:")):
                self.name_of_ip.setdefault(ip, key)
                self.said_by.setdefault(ip, said_by)
                self.ips_of.setdefault(key, set()).add(ip)

    def learn(self, events: Iterable[HostEvent]) -> None:
        """Pairs from host telemetry (Sysmon 3 source address, winlogbeat host.ip...)."""
        for e in events:
            if e.host and e.host_ips:
                self.add(e.host, e.host_ips, f"host telemetry ({e.provider})")

    def load(self, path: Path) -> None:
        """--host-map: CSV rows `name,ip[,ip...]` or JSON {"name": ["ip", ...]}; `-` reads standard input."""
        try:
            text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        except OSError as e:
            raise InputError(str(path), f"cannot read the host map: {e.strerror or e}") from None
        if text.lstrip().startswith("{"):
            try:
                data = json.loads(text)
            except ValueError as e:
                raise InputError(str(path), f"host map is not valid JSON: {e}") from None
            for name, ips in data.items():
                self.add(name, [ips] if isinstance(ips, str) else ips)
            return
        for n, row in enumerate(csv.reader(text.splitlines()), 1):
            if not row or row[0].startswith("#") or row[0].lower() in ("name", "host"):
                continue
            if len(row) < 2:
                raise InputError(str(path), f"line {n}: expected name,ip[,ip...]")
            self.add(row[0], [c.strip() for c in row[1:] if c.strip()])

    def host_of(self, name: str | None, ip: str | None, ts: float | None = None) -> str | None:
        """The short name of a host known by name or address (at time `ts`, for what the wire said of the
        address); an unknown address is its own name."""
        if name:
            return short(name)
        if not ip:
            return None
        known = self.name_of_ip.get(ip)
        if known is not None:
            return known
        claim = self.claims.at(ip, ts) if ts is not None else None
        if claim is None or not claim.name:
            return ip
        key = short(claim.name) or ip
        if len(claim.name) > len(self.display.get(key, "")):
            self.display[key] = claim.name
        self.ips_of.setdefault(key, set()).add(ip)
        return key

    def named_by(self, ip: str | None, ts: float | None = None) -> str | None:
        """What tied `ip` to its host's name at `ts`: a host map, host telemetry, or the wire's claim."""
        if not ip:
            return None
        if ip in self.said_by:
            return f"{self.said_by[ip]}: {ip}"
        claim = self.claims.at(ip, ts) if ts is not None else None
        if claim is None:
            return None
        mac = f", MAC {claim.mac}" if claim.mac else ""
        where = f"packet {claim.packet} of {claim.capture}"
        return f"{claim.source}: {ip} = {claim.name}{mac} ({claim.detail or claim.source}, {where})"


__all__ = ["HostMap", "short"]
