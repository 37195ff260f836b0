"""Craft host telemetry the way the real producers write it: Sysmon/Event Viewer XML, winlogbeat NDJSON and
auditd lines, for the seed's four atomic tests and for bad input. Deterministic: fixed times and ids.

Times are UTC ISO strings; Sysmon's `UtcTime` field is written as Sysmon writes it ("YYYY-MM-DD
HH:MM:SS.mmm"). Record ids count from `first_record`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

SYSMON = ("Microsoft-Windows-Sysmon", "Microsoft-Windows-Sysmon/Operational")
NS = "http://schemas.microsoft.com/win/2004/08/events/event"


@dataclass(frozen=True)
class WinEvent:
    """One Windows event: provider, id, time (ISO, UTC), computer and named data fields."""

    event_id: int
    time: str
    data: Mapping[str, str] = field(default_factory=dict)
    computer: str = "WS-01.corp.example"
    provider: tuple[str, str] = SYSMON
    record_id: int = 1


def event_xml(e: WinEvent) -> str:
    """The <Event> element exactly as Event Viewer's "Save as XML" and wevtutil write it."""
    data = "".join(f"<Data Name={quoteattr(k)}>{escape(v)}</Data>" for k, v in e.data.items())
    return (
        f'<Event xmlns="{NS}"><System><Provider Name="{e.provider[0]}"/><EventID>{e.event_id}</EventID>'
        f"<Version>5</Version><Level>4</Level><TimeCreated SystemTime={quoteattr(e.time)}/>"
        f"<EventRecordID>{e.record_id}</EventRecordID><Channel>{e.provider[1]}</Channel>"
        f"<Computer>{escape(e.computer)}</Computer></System><EventData>{data}</EventData></Event>"
    )


def events_xml(events: Sequence[WinEvent], root: bool = True) -> str:
    """Several events: inside <Events> (Event Viewer) or bare one after another (wevtutil)."""
    body = "\r\n".join(event_xml(e) for e in events)
    return f'<?xml version="1.0" encoding="utf-8"?>\r\n<Events>{body}</Events>' if root else body


def winlogbeat(e: WinEvent, ips: Sequence[str] = ()) -> str:
    """One winlogbeat (ECS) NDJSON line for the event."""
    row = {
        "@timestamp": e.time,
        "event": {"code": str(e.event_id), "provider": e.provider[0]},
        "host": {"name": e.computer.split(".")[0].lower(), "ip": list(ips)},
        "winlog": {
            "channel": e.provider[1],
            "provider_name": e.provider[0],
            "event_id": str(e.event_id),
            "computer_name": e.computer,
            "record_id": e.record_id,
            "event_data": dict(e.data),
        },
    }
    return json.dumps(row, separators=(",", ":"))


def utc_field(iso: str) -> str:
    """Sysmon's UtcTime text for an ISO time."""
    return iso.replace("T", " ").rstrip("Z")[:23]


def process(record: int, time: str, image: str, cmd: str, parent: str, pid: int, user: str) -> WinEvent:
    """Sysmon Event ID 1."""
    data = {
        "UtcTime": utc_field(time),
        "ProcessGuid": f"{{a1b2c3d4-0000-0000-0000-{pid:012d}}}",
        "ProcessId": str(pid),
        "Image": image,
        "CommandLine": cmd,
        "User": user,
        "ParentImage": parent,
        "ParentProcessId": "4242",
    }
    return WinEvent(1, time, data, record_id=record)


def file_create(record: int, time: str, image: str, target: str, pid: int) -> WinEvent:
    """Sysmon Event ID 11."""
    data = {"UtcTime": utc_field(time), "ProcessId": str(pid), "Image": image, "TargetFilename": target}
    return WinEvent(11, time, data, record_id=record)


def image_load(record: int, time: str, image: str, dll: str, pid: int) -> WinEvent:
    """Sysmon Event ID 7."""
    data = {"UtcTime": utc_field(time), "ProcessId": str(pid), "Image": image, "ImageLoaded": dll, "Signed": "false"}
    return WinEvent(7, time, data, record_id=record)


def connection(record: int, time: str, image: str, pid: int, src: tuple[str, int], dst: tuple[str, int]) -> WinEvent:
    """Sysmon Event ID 3 (an outbound TCP connection the process opened)."""
    data = {
        "UtcTime": utc_field(time),
        "ProcessId": str(pid),
        "Image": image,
        "Protocol": "tcp",
        "Initiated": "true",
        "SourceIp": src[0],
        "SourceHostname": "WS-01.corp.example",
        "SourcePort": str(src[1]),
        "DestinationIp": dst[0],
        "DestinationPort": str(dst[1]),
    }
    return WinEvent(3, time, data, record_id=record)


def audit_event(serial: int, epoch: float, records: Sequence[str], node: str | None = None) -> list[str]:
    """auditd lines of one event: each record gets its `type=... msg=audit(T:serial):` header."""
    head = f"node={node} " if node else ""
    out = []
    for rec in records:
        kind, _, rest = rec.partition(" ")
        out.append(f"{head}type={kind} msg=audit({epoch:.3f}:{serial}): {rest}")
    return out


def python_tarfile_audit(epoch: float, node: str | None = None) -> str:
    """The seed's atomic test 3 as auditd writes it: `python3 -c "import tarfile... bz2"` (EXECVE, its argument in
    hex) and the CREATE of /tmp/stage_df00.tar.bz2 a fifth of a second later; `node=` names the host or not."""
    code = "import tarfile;t=tarfile.open('/tmp/stage_df00.tar.bz2','w:bz2');t.add('/etc/hosts');t.close()"
    proc = 'ppid=880 pid=4300 auid=1000 uid=1000 comm="python3" exe="/usr/bin/python3.11"'
    execve = [
        f'SYSCALL arch=c000003e syscall=59 success=yes exit=0 items=2 {proc} key="exec"',
        f'EXECVE argc=3 a0="python3" a1="-c" a2={hex_arg(code)}',
        'CWD cwd="/home/bob"',
    ]
    create = [
        f'SYSCALL arch=c000003e syscall=257 success=yes exit=3 items=2 {proc} key="tmp"',
        'CWD cwd="/home/bob"',
        'PATH item=0 name="/tmp/" nametype=PARENT',
        'PATH item=1 name="/tmp/stage_df00.tar.bz2" nametype=CREATE',
    ]
    lines = audit_event(301, epoch, execve, node=node) + audit_event(302, epoch + 0.2, create, node=node)
    return "\n".join(lines) + "\n"


def hex_arg(text: str) -> str:
    """auditd writes an argument with a space or a quote as hex."""
    return text.encode().hex().upper()


__all__ = [
    "python_tarfile_audit",
    "WinEvent",
    "audit_event",
    "connection",
    "event_xml",
    "events_xml",
    "file_create",
    "hex_arg",
    "image_load",
    "process",
    "utc_field",
    "winlogbeat",
]
