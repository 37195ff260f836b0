#!/usr/bin/env python3
"""Builds the demo's host side for pcaps/samples/mail-and-ftp.pcap: what the two sending hosts logged, and
the archives they staged, so `stagewatch correlate` can join telemetry, disk and wire.

    python samples/make_hostevents.py samples/telemetry samples/staged

- WS-09 (10.1.2.9, Windows, Sysmon): python.exe zips the hosts file into %TEMP%\\stage_df00_lib.zip
  (Event IDs 1 and 11), then connects to 198.51.100.25:25 (Event ID 3) and mails it.
- lnx-12 (10.1.2.12, Linux, auditd): python3 tars and bzips /etc/hosts into /tmp/stage_df00.tar.bz2
  (EXECVE, PATH CREATE), then stores it by FTP. auditd names no address: host-map.csv does.
Fixed times (a minute before the captures start) and ids: the same files on every run.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

HERE = Path(__file__).resolve().parent
BASE_TIME = 1_763_800_000  # the captures' first packet (2025-11-22 08:26:40 UTC)
NS = "http://schemas.microsoft.com/win/2004/08/events/event"
PY = r"C:\Program Files\Python312\python.exe"
TEMP = r"C:\Users\bob\AppData\Local\Temp"


def samples_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_samples", HERE.parent / "pcaps" / "make_samples.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def sysmon(record: int, event_id: int, t: float, data: dict[str, str]) -> str:
    fields = "".join(f"<Data Name={quoteattr(k)}>{escape(v)}</Data>" for k, v in data.items())
    return (
        f'<Event xmlns="{NS}"><System><Provider Name="Microsoft-Windows-Sysmon"/><EventID>{event_id}</EventID>'
        f"<TimeCreated SystemTime={quoteattr(iso(t))}/><EventRecordID>{record}</EventRecordID>"
        "<Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>WS-09.corp.example</Computer>"
        f"</System><EventData>{fields}</EventData></Event>"
    )


def windows_log() -> str:
    t = BASE_TIME - 60
    cmd = (
        f"\"{PY}\" -c \"import zipfile;zipfile.ZipFile(r'{TEMP}\\stage_df00_lib.zip','w',zipfile.ZIP_DEFLATED)"
        ".write(r'C:\\Windows\\System32\\drivers\\etc\\hosts','hosts')\""
    )
    proc = {"ProcessId": "6120", "Image": PY}
    events = [
        sysmon(
            8811, 1, t, {**proc, "CommandLine": cmd, "User": "CORP\\bob", "ParentImage": r"C:\Windows\explorer.exe"}
        ),
        sysmon(8812, 11, t + 0.4, {**proc, "TargetFilename": TEMP + r"\stage_df00_lib.zip"}),
        sysmon(
            8815,
            3,
            BASE_TIME + 1,
            {
                **proc,
                "Protocol": "tcp",
                "Initiated": "true",
                "SourceIp": "10.1.2.9",
                "SourceHostname": "WS-09.corp.example",
                "SourcePort": "49310",
                "DestinationIp": "198.51.100.25",
                "DestinationPort": "25",
            },
        ),
    ]
    return '<?xml version="1.0" encoding="utf-8"?>\r\n<Events>' + "\r\n".join(events) + "</Events>\r\n"


def audit_log() -> str:
    t = BASE_TIME - 40
    code = "import tarfile;t=tarfile.open('/tmp/stage_df00.tar.bz2','w:bz2');t.add('/etc/hosts');t.close()"
    proc = 'ppid=2210 pid=2231 auid=1000 uid=1000 comm="python3" exe="/usr/bin/python3.11"'
    lines = [
        f'type=SYSCALL msg=audit({t:.3f}:4401): arch=c000003e syscall=59 success=yes exit=0 items=2 {proc} key="exec"',
        f'type=EXECVE msg=audit({t:.3f}:4401): argc=3 a0="python3" a1="-c" a2={code.encode().hex().upper()}',
        f'type=CWD msg=audit({t:.3f}:4401): cwd="/home/ops"',
        f"type=SYSCALL msg=audit({t + 0.2:.3f}:4402): arch=c000003e syscall=257 success=yes exit=3 items=2 {proc}",
        f'type=CWD msg=audit({t + 0.2:.3f}:4402): cwd="/home/ops"',
        f'type=PATH msg=audit({t + 0.2:.3f}:4402): item=0 name="/tmp/" nametype=PARENT',
        f'type=PATH msg=audit({t + 0.2:.3f}:4402): item=1 name="/tmp/stage_df00.tar.bz2" nametype=CREATE',
    ]
    return "".join(f"node=lnx-12 {line}\n" for line in lines)


def main(argv: list[str]) -> int:
    telemetry = Path(argv[1]) if len(argv) > 1 else HERE / "telemetry"
    staged = Path(argv[2]) if len(argv) > 2 else HERE / "staged"
    telemetry.mkdir(parents=True, exist_ok=True)
    (telemetry / "ws-09-sysmon.xml").write_text(windows_log(), encoding="utf-8")
    (telemetry / "lnx-12-audit.log").write_text(audit_log(), encoding="utf-8")
    (telemetry / "host-map.csv").write_text("name,ip\nlnx-12,10.1.2.12\n", encoding="utf-8")
    zipped, tarred = samples_module().staged_archives()
    for rel, data, t in (
        ("WS-09/Users/bob/AppData/Local/Temp/stage_df00_lib.zip", zipped, BASE_TIME - 59.6),
        ("lnx-12/tmp/stage_df00.tar.bz2", tarred, BASE_TIME - 39.8),
    ):
        path = staged / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (t, t))
    print(f"wrote {telemetry} (Sysmon XML, auditd, host map) and 2 staged archives under {staged}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
