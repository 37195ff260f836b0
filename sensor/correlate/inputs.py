"""What the correlator reads from the store, as small typed records (not the stored JSON dicts).

Only what a join needs is kept: outbound and staged findings, host-rule hits, the host events that
tie a process to a flow (Sysmon 3) or a file (creations), and flows that carried no finding.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sensor.model import HostEvent, Identity


@dataclass(frozen=True, slots=True)
class Transfer:
    """A network finding: a verified member seen on the wire."""

    ref: str
    ts: float
    sha256: str
    size: int
    name: str | None
    src: str
    sport: int
    dst: str
    dport: int
    protocol: str | None
    direction: str
    kind: str
    source: str


@dataclass(frozen=True, slots=True)
class Seen:
    """A file another sensor logged on the wire without keeping its bytes: its size and hashes still link."""

    ref: str
    ts: float
    sha256: str | None
    size: int
    name: str | None
    src: str
    dst: str
    dport: int
    protocol: str | None
    direction: str
    sensor: str  # zeek | suricata
    source: str  # the log that described it


@dataclass(frozen=True, slots=True)
class Staged:
    """A file finding: a verified member on disk."""

    ref: str
    ts: float  # the file's mtime
    sha256: str
    size: int
    host: str | None
    path: str
    kind: str


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A host finding (rule hit), with the process it names."""

    ref: str
    ts: float
    host: str | None
    ips: tuple[str, ...]
    label: str
    operation: str
    image: str | None
    command_line: str | None
    pid: int | None
    user: str | None
    target_file: str | None
    source: str


@dataclass(frozen=True, slots=True)
class FlowIn:
    """A stored flow record (conn.log-like): sizes of what the content layer could not see."""

    ref: str
    start: float
    end: float
    src: str
    sport: int
    dst: str
    dport: int
    direction: str
    bytes_out: int
    sni: str | None


def transfer_of(rec: dict[str, Any]) -> Transfer | None:
    """A network finding record (ECS) to a Transfer; None for file findings."""
    if "source" not in rec or "destination" not in rec:
        return None
    sw, net = rec["stagewatch"], rec.get("network", {})
    return Transfer(
        ref=rec["event"]["id"],
        ts=_epoch(rec["@timestamp"]),
        sha256=rec["file"]["hash"]["sha256"],
        size=int(rec["file"]["size"]),
        name=rec["file"].get("name"),
        src=rec["source"]["ip"],
        sport=int(rec["source"]["port"]),
        dst=rec["destination"]["ip"],
        dport=int(rec["destination"]["port"]),
        protocol=net.get("protocol"),
        direction=net.get("direction", ""),
        kind=rec["event"]["kind"],
        source=f"{sw['source']['path']}#{sw['source'].get('packet', 0)}",
    )


def seen_of(rec: dict[str, Any]) -> Seen:
    """An object record another sensor's logs gave (`stagewatch.scanned: false`) to a Seen."""
    f, sw = rec.get("file", {}), rec["stagewatch"]
    bridge = sw.get("bridge", {})
    return Seen(
        ref=rec["event"]["id"],
        ts=_epoch(rec["@timestamp"]),
        sha256=(f.get("hash") or {}).get("sha256") or (bridge.get("hash") or {}).get("sha256"),
        size=int(f.get("size") or 0),
        name=f.get("name"),
        src=rec["source"]["ip"],
        dst=rec["destination"]["ip"],
        dport=int(rec["destination"]["port"]),
        protocol=rec.get("network", {}).get("protocol"),
        direction=rec.get("network", {}).get("direction", ""),
        sensor=bridge.get("sensor", ""),
        source=bridge.get("log", ""),
    )


def staged_of(rec: dict[str, Any]) -> Staged | None:
    """A file finding record (ECS) to a Staged; None for network findings."""
    f = rec.get("file", {})
    if "path" not in f:
        return None
    return Staged(
        ref=rec["event"]["id"],
        ts=_epoch(f.get("mtime") or rec["@timestamp"]),
        sha256=f["hash"]["sha256"],
        size=int(f["size"]),
        host=(rec.get("host") or {}).get("name"),
        path=f["path"],
        kind=rec["event"]["kind"],
    )


def hit_of(rec: dict[str, Any]) -> RuleHit:
    """A host finding record (ECS) to a RuleHit."""
    proc, host = rec.get("process", {}), rec.get("host", {})
    src = rec["stagewatch"]["source"]
    return RuleHit(
        ref=rec["event"]["id"],
        ts=_epoch(rec["@timestamp"]),
        host=host.get("name"),
        ips=tuple(host.get("ip", ())),
        label=rec["stagewatch"]["label"],
        operation=rec["stagewatch"]["operation"],
        image=proc.get("executable"),
        command_line=proc.get("command_line"),
        pid=proc.get("pid"),
        user=(rec.get("user") or {}).get("name"),
        target_file=(rec.get("file") or {}).get("path"),
        source=f"{src['path']}#{src['record_id']}",
    )


def flow_of(rec: dict[str, Any], ref: str) -> FlowIn:
    """A stored --flows record to a FlowIn."""
    s, d = rec["source"], rec["destination"]
    return FlowIn(
        ref=ref,
        start=_epoch(rec["event"]["start"]),
        end=_epoch(rec["event"]["end"]),
        src=s["ip"],
        sport=int(s["port"]),
        dst=d["ip"],
        dport=int(d["port"]),
        direction=rec["network"].get("direction", ""),
        bytes_out=int(s.get("bytes", 0)),
        sni=((rec.get("tls") or {}).get("client") or {}).get("server_name"),
    )


def identity_of(rec: dict[str, Any]) -> Identity:
    """A stored identity record (ecs.identity_record) back to an Identity."""
    sw = rec.get("stagewatch", {})
    ident, host = sw.get("identity", {}), rec.get("host", {})
    until = ident.get("until")
    return Identity(
        address=(host.get("ip") or [""])[0],
        name=host.get("name"),
        source=ident.get("source", ""),
        ts=_epoch(rec["@timestamp"]),
        until=_epoch(until) if until else None,
        mac=(host.get("mac") or [None])[0],
        detail=ident.get("detail"),
        capture=sw.get("source", {}).get("path", ""),
        packet=sw.get("source", {}).get("packet", 0),
    )


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def event_ref(e: HostEvent) -> str:
    return f"{e.source}#{e.record_id}#{e.action}"


__all__ = [
    "FlowIn",
    "RuleHit",
    "Seen",
    "Staged",
    "Transfer",
    "event_ref",
    "flow_of",
    "hit_of",
    "identity_of",
    "seen_of",
    "staged_of",
    "transfer_of",
]
