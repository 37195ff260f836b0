"""What a suppression entry or threshold can test, read once from a finding or a host finding."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sensor.model import FileOrigin, Finding, HostFinding, NetworkOrigin

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Facts:
    """The matchable fields of one result; empty where the result has none (a file has no destination)."""

    src: str | None = None
    dst: str | None = None
    host: str | None = None
    domains: tuple[str, ...] = ()  # url.domain (HTTP Host), TLS SNI, mail recipients' domains
    url: str | None = None
    sha256: tuple[str, ...] = ()  # the member's, and its container's
    process: str | None = None
    path: str | None = None
    rules: tuple[str, ...] = ()  # rule name (findings); id, title and label (host findings)
    format: str | None = None
    src_addr: Address | None = None
    dst_addr: Address | None = None
    connection: bool = False  # src/dst are a connection's (not a host event's own address without one)
    severity: int = 0
    reasons: tuple[str, ...] = ()  # `stagewatch.reasons`: why this kind and severity


def _addr(ip: str | None) -> Address | None:
    try:
        return ipaddress.ip_address(ip) if ip else None
    except ValueError:
        return None


def _low(s: str | None, slashes: bool = False) -> str | None:
    if s is None:
        return None
    return s.lower().replace("\\", "/") if slashes else s.lower()


def _normal(f: Facts) -> Facts:
    """Lower-cased text (globs are case-insensitive), / for \\ in paths, addresses parsed once."""
    return Facts(
        src=f.src,
        dst=f.dst,
        host=_low(f.host),
        domains=tuple(d.lower() for d in f.domains),
        url=_low(f.url),
        sha256=f.sha256,
        process=_low(f.process, True),
        path=_low(f.path, True),
        rules=tuple(r.lower() for r in f.rules),
        format=f.format,
        src_addr=_addr(f.src),
        dst_addr=_addr(f.dst),
        connection=f.connection,
        severity=f.severity,
        reasons=f.reasons,
    )


def facts_of(item: Finding | HostFinding) -> Facts:
    """The facts of a finding (network or staged file) or of a host-rule hit, normalised for matching."""
    return _normal(_facts(item))


def _facts(item: Finding | HostFinding) -> Facts:
    if isinstance(item, HostFinding):
        e = item.event
        return Facts(
            src=e.net.src if e.net else (e.host_ips[0] if e.host_ips else None),
            dst=e.net.dst if e.net else None,
            host=e.host,
            process=e.image,
            path=e.target_file,
            rules=(item.rule_id, item.rule, item.label),
            connection=e.net is not None,
            severity=item.severity,
            reasons=item.reasons,
        )
    o = item.origin
    sha = (item.member.sha256, item.container.sha256) if item.container.sha256 else (item.member.sha256,)
    if isinstance(o, FileOrigin):
        return Facts(
            host=o.host,
            path=o.path,
            sha256=sha,
            rules=(item.rule,),
            format=str(item.member.format),
            severity=item.severity,
            reasons=item.reasons,
        )
    assert isinstance(o, NetworkOrigin)
    app = item.app
    domains = [d for d in (app.domain if app else None, o.sni) if d]
    if app is not None:
        domains += [r.rsplit("@", 1)[-1] for r in app.rcpt_to if "@" in r]
    return Facts(
        src=o.src,
        dst=o.dst,
        domains=tuple(domains),
        url=app.url if app else None,
        sha256=sha,
        path=item.name,
        rules=(item.rule,),
        format=str(item.member.format),
        connection=True,
        severity=item.severity,
        reasons=item.reasons,
    )


__all__ = ["Facts", "facts_of"]
