"""The evidence chain of an incident (process -> staged file -> transfer) and one-line descriptions of records.

Shared by the HTML report and `explain`, so both tell the same story from the same stored records.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sensor.flow.direction import endpoint_text
from sensor.model import HostEvent
from sensor.output.ecs import iso

STAGES = ("process", "staged", "transfer")
STAGE_TITLES = {"process": "process", "staged": "staged file", "transfer": "transfer"}
# Evidence kinds written by correlate/engine.py, placed on the chain.
STAGE_OF = {
    "host_rule": "process",
    "host_event": "process",
    "staged_file": "staged",
    "network": "transfer",
    "flow": "transfer",
}


@dataclass(frozen=True, slots=True)
class Link:
    """One piece of evidence on the chain, with the stored record it names when the store still has it."""

    stage: str
    kind: str
    ref: str
    ts: str
    text: str
    record: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Chain:
    """An incident laid out by stage."""

    incident: dict[str, Any]
    process: str
    links: dict[str, list[Link]]


def ts_of(record: Mapping[str, Any]) -> float:
    """Epoch seconds of a record's `@timestamp` (0 when missing or unreadable)."""
    try:
        return datetime.fromisoformat(str(record.get("@timestamp", ""))).timestamp()
    except ValueError:
        return 0.0


def host_key(name: str | None) -> str:
    """Hosts are the same when their names agree without the domain (WS-09 and ws-09.corp.example); an address is
    kept whole."""
    text = (name or "").lower()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text.split(".", 1)[0]


def endpoint(side: Mapping[str, Any] | None) -> str:
    side = side or {}
    return endpoint_text(str(side.get("ip", "?")), side.get("port", "?"))


def finding_where(r: Mapping[str, Any]) -> str:
    """Where a finding was seen: host and path for a file, protocol and endpoints (and URL) for the network."""
    f = r.get("file", {})
    if "source" not in r or "ip" not in r.get("source", {}):
        host = r.get("host", {}).get("name")
        return f"{host}: {f.get('path', '?')}" if host else str(f.get("path", "?"))
    net = r.get("network", {})
    url = r.get("url", {})
    proto = net.get("protocol") or net.get("transport") or "?"
    where = f"{proto} {endpoint(r.get('source'))} > {endpoint(r.get('destination'))} {net.get('direction', '')}"
    if url.get("original"):
        where += f" {url.get('domain', '')}{url['original']}"
    return where.strip()


def finding_what(r: Mapping[str, Any]) -> str:
    """What a finding is: format, size and name."""
    sw, f = r.get("stagewatch", {}), r.get("file", {})
    return f"{sw.get('format', '?')} {f.get('size', '?')} bytes {f.get('name') or '(unnamed)'}"


def finding_line(r: Mapping[str, Any]) -> str:
    """One line for a finding: format, size, name and where."""
    return f"{finding_what(r)} at {finding_where(r)}"


def host_finding_line(r: Mapping[str, Any]) -> str:
    """One line for a host-rule hit: rule, operation, process and the file or DLL it touched."""
    sw, proc = r.get("stagewatch", {}), r.get("process", {})
    target = r.get("file", {}).get("path") or r.get("dll", {}).get("path") or ""
    pid = f" (pid {proc['pid']})" if "pid" in proc else ""
    line = f"{sw.get('label') or r.get('rule', {}).get('name', '?')} ({sw.get('operation', '?')}): "
    return (line + f"{proc.get('executable', '?')}{pid} {target}").strip()


def host_event_line(r: Mapping[str, Any]) -> str:
    """One line for a host event: action, process and the file, DLL or connection it names."""
    ev, proc = r.get("event", {}), r.get("process", {})
    pid = f" (pid {proc['pid']})" if "pid" in proc else ""
    if "ip" in r.get("destination", {}):
        target = f"{endpoint(r.get('source'))} > {endpoint(r.get('destination'))}"
    else:
        target = r.get("file", {}).get("path") or r.get("dll", {}).get("path") or proc.get("command_line") or ""
    head = f"{ev.get('action', '?')} ({ev.get('provider', '?')} {ev.get('code', '?')}): "
    return (head + f"{proc.get('executable', '?')}{pid} {target}").strip()


def record_line(table: str, r: Mapping[str, Any]) -> str:
    """One line for any stored record, by the table it came from."""
    if table == "host_findings":
        return host_finding_line(r)
    if table == "host_events":
        return host_event_line(r)
    if table == "incidents":
        inc = r.get("stagewatch", {}).get("incident", {})
        return f"incident on {r.get('host', {}).get('name', '?')}, score {inc.get('score', '?')}"
    if table == "flows":
        return f"flow {endpoint(r.get('source'))} > {endpoint(r.get('destination'))}"
    return finding_line(r)


def process_of(incident: Mapping[str, Any]) -> str:
    """The incident's process: executable and pid, or '(process unknown)'."""
    proc = incident.get("process", {})
    if not proc.get("executable"):
        return "(process unknown)"
    return proc["executable"] + (f" (pid {proc['pid']})" if "pid" in proc else "")


def evidence_of(incident: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(incident.get("stagewatch", {}).get("incident", {}).get("evidence", []))


def incident_chain(incident: dict[str, Any], resolved: Mapping[str, tuple[str, dict[str, Any]]]) -> Chain:
    """Lay an incident's evidence out as process -> staged file -> transfer, in time order within each stage.

    `resolved` maps evidence ids to (table, stored record); evidence the store no longer holds keeps
    the summary the correlator wrote.
    """
    links: dict[str, list[Link]] = {stage: [] for stage in STAGES}
    for ev in sorted(evidence_of(incident), key=lambda e: str(e.get("@timestamp", ""))):
        ref = str(ev.get("id", ""))
        kind = str(ev.get("kind", "?"))
        table, record = resolved.get(ref, ("", None))
        text = record_line(table, record) if record is not None else str(ev.get("summary", ""))
        stage = STAGE_OF.get(kind, "transfer")
        links[stage].append(Link(stage, kind, ref, str(ev.get("@timestamp", "")), text, record))
    return Chain(incident, process_of(incident), links)


def short_ref(ref: str) -> str:
    """A UUID's first 8 characters (unique enough to read, and what `explain` accepts); other ids whole."""
    return ref[:8] if len(ref) == 36 and ref.count("-") == 4 else ref


def host_event_ref(e: HostEvent) -> str:
    """The id an incident's evidence list gives a host event (correlate/inputs.py `event_ref`)."""
    return f"{e.source}#{e.record_id}#{e.action}"


def split_host_event_ref(ref: str) -> tuple[str, str, str] | None:
    """(source, record id, action) of a host event's evidence id, or None when `ref` is not one."""
    parts = ref.rsplit("#", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 and all(parts) else None


def host_event_record(key: str, e: HostEvent) -> dict[str, Any]:
    """A stored host event (the store keeps its columns, not a JSON line) in the ECS names of host findings;
    `event.id` is its event_key, `stagewatch.evidence_id` the id incidents cite it by."""
    n = e.net
    record = {
        "@timestamp": iso(e.ts),
        "event": {
            "id": key,
            "kind": "event",
            "module": "stagewatch",
            "dataset": "stagewatch.host_event",
            "action": e.action,
            "code": e.code,
            "provider": e.provider,
        },
        "host": {"name": e.host, "ip": list(e.host_ips)},
        "process": {
            "executable": e.image,
            "command_line": e.command_line,
            "pid": e.pid,
            "parent": {"executable": e.parent_image, "pid": e.ppid},
        },
        "user": {"name": e.user},
        "file": {"path": e.target_file},
        "dll": {"path": e.loaded_image},
        "source": {"ip": n.src, "port": n.sport} if n else None,
        "destination": {"ip": n.dst, "port": n.dport} if n else None,
        "network": {"transport": n.transport} if n else None,
        "stagewatch": {
            "source": {"path": e.source, "record_id": e.record_id},
            "evidence_id": host_event_ref(e),
            "hashes": e.hashes,
            "label": e.label,
        },
    }
    return _pruned(record)


def _pruned(value: Any) -> Any:
    """Without None, empty strings and the dicts and lists they leave empty."""
    if isinstance(value, dict):
        kept = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, "", {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """A record as dotted keys and text values; empty values left out."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list):
        if value:
            text = ", ".join(json.dumps(x, ensure_ascii=False) if isinstance(x, dict) else str(x) for x in value)
            yield prefix, text
    elif value is not None and value != "":
        yield prefix, str(value)
