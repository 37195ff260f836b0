"""Windows event records (Sysmon, Security 4688, PowerShell) to HostEvents, whatever file format carried them.

EVTX, Event Viewer / wevtutil XML, winlogbeat ECS JSON, NXLog/Mordor flat JSON and Sysmon for Linux
all deliver the same record: a System part (provider, event id, time, computer, record id) and
named data fields. The format parsers reduce their input to a `WinRecord`; this module knows what
each event id means.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sensor.hostevents.base import parse_time
from sensor.model import HostEvent, NetTuple

SYSMON_ACTIONS = {
    "1": "process",
    "3": "network",
    "7": "image_load",
    "11": "file_create",
    "23": "file_delete",
    "26": "file_delete",
}
POWERSHELL_CODES = {"400", "403", "600", "800", "4103", "4104"}
HOST_APPLICATION = re.compile(r"HostApplication=([^\r\n]*)")


@dataclass(frozen=True, slots=True)
class WinRecord:
    """One Windows event reduced to what the mapping needs."""

    provider: str  # provider name or channel
    code: str  # event id as text
    time: str | None  # System/TimeCreated/@SystemTime (or the export's own timestamp)
    host: str | None
    record_id: str
    data: Mapping[str, object]  # named EventData / UserData fields
    texts: Sequence[str] = field(default_factory=tuple)  # unnamed Data values (classic PowerShell log)
    host_ips: tuple[str, ...] = ()


def provider_of(name: str) -> str:
    """sysmon | security | powershell | other, from a provider name or channel."""
    low = name.lower()
    if "sysmon" in low:
        return "sysmon-linux" if "linux" in low else "sysmon"
    if "security" in low:
        return "security"
    if "powershell" in low:
        return "powershell"
    return "other"


def _text(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, dict):  # evtx's {"#attributes": ..., "#text": ...}
        return _text(v.get("#text"))
    s = str(v)
    return s if s and s != "-" else None


def _int(v: object) -> int | None:
    s = _text(v)
    if s is None:
        return None
    try:
        return int(s, 16) if s.lower().startswith("0x") else int(s)
    except ValueError:
        return None


def event_of(rec: WinRecord, source: str, tz: dt.tzinfo) -> HostEvent | None:
    """The HostEvent of a record, or None for event ids stagewatch does not use."""
    prov = provider_of(rec.provider)
    # decide first whether the event is used at all: most records of a busy log are not
    if prov in ("sysmon", "sysmon-linux"):
        if rec.code not in SYSMON_ACTIONS:
            return None
    elif not ((prov == "security" and rec.code == "4688") or (prov == "powershell" and rec.code in POWERSHELL_CODES)):
        return None
    d = rec.data
    g = d.get
    when = rec.time or _text(g("UtcTime"))
    if not when:
        raise ValueError("no event time")
    ts = parse_time(when, dt.UTC if rec.time or g("UtcTime") else tz)
    base = {"ts": ts, "source": source, "record_id": rec.record_id, "provider": prov, "code": rec.code}
    base |= {"host": rec.host, "host_ips": rec.host_ips}
    if prov in ("sysmon", "sysmon-linux"):
        action = SYSMON_ACTIONS.get(rec.code)
        if action is None:
            return None
        common = {
            "image": _text(g("Image")),
            "user": _text(g("User")),
            "pid": _int(g("ProcessId")),
            "process_guid": _text(g("ProcessGuid")),
        }
        if action == "process":
            extra = {
                "command_line": _text(g("CommandLine")),
                "parent_image": _text(g("ParentImage")),
                "parent_command_line": _text(g("ParentCommandLine")),
                "ppid": _int(g("ParentProcessId")),
                "hashes": _text(g("Hashes")),
            }
        elif action == "network":
            net = NetTuple(
                _text(g("SourceIp")) or "",
                _int(g("SourcePort")) or 0,
                _text(g("DestinationIp")) or "",
                _int(g("DestinationPort")) or 0,
                (_text(g("Protocol")) or "tcp").lower(),
            )
            # Sysmon writes the local end as Source* whichever side opened the connection
            # (an inbound SMB session shows SourceIp = the host, SourcePort = 445)
            extra = {"net": net, "host_ips": rec.host_ips or ((net.src,) if net.src else ())}
            if not rec.host and _text(g("SourceHostname")):
                extra["host"] = _text(g("SourceHostname"))
        elif action == "image_load":
            extra = {"loaded_image": _text(g("ImageLoaded")), "hashes": _text(g("Hashes"))}
        else:
            extra = {"target_file": _text(g("TargetFilename"))}
        return HostEvent(action=action, **(base | common | extra))  # type: ignore[arg-type]
    if prov == "security" and rec.code == "4688":
        domain, name = _text(g("SubjectDomainName")), _text(g("SubjectUserName"))
        return HostEvent(
            action="process",
            image=_text(g("NewProcessName")),
            command_line=_text(g("CommandLine")),
            parent_image=_text(g("ParentProcessName")),
            user=f"{domain}\\{name}" if domain and name else name,
            pid=_int(g("NewProcessId")),
            ppid=_int(g("ProcessId")),
            **base,  # type: ignore[arg-type]
        )
    if prov == "powershell" and rec.code in POWERSHELL_CODES:
        return _powershell(rec, base)
    return None


def _powershell(rec: WinRecord, base: dict[str, object]) -> HostEvent | None:
    """4104 script blocks, 4103 module logging, and the classic log's 400/403/600/800 text records."""
    g = rec.data.get
    if rec.code == "4104":
        script = _text(g("ScriptBlockText"))
        context = ""
    elif rec.code == "4103":
        script = _text(g("Payload"))
        context = _text(g("ContextInfo")) or ""
    else:
        texts = [t for t in rec.texts if t]
        script = texts[0] if rec.code == "800" and texts else None
        context = "\n".join(texts)
    m = HOST_APPLICATION.search(context)
    host_app = m.group(1).strip() if m else None
    if not script and not host_app:
        return None
    return HostEvent(action="script", command_line=host_app, script=script, **base)  # type: ignore[arg-type]


__all__ = ["WinRecord", "event_of", "provider_of"]
