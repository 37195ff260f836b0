"""Correlation end to end: the seed's four atomic tests, each on its own host, recorded three ways — host
telemetry (Sysmon XML or auditd), the staged folder copied from the hosts, and the capture of the
exfiltration — scanned into one store, then `stagewatch correlate`. Exactly one incident per attacked host,
naming the process and the file; benign noise on another host gives none.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from scapy.layers.inet import TCP

from sensor.cli import main as cli_main
from sensor.correlate.engine import Correlator
from sensor.correlate.hosts import HostMap
from sensor.correlate.inputs import FlowIn, RuleHit, Staged
from sensor.errors import InputError
from sensor.store.db import FindingStore
from tests import appbuild as ab
from tests import hostbuild as hb
from tests.builders import HOSTS, gzip_dotnet, gzip_named, sample_text, tar_archive, zip_archive, zlib_member
from tests.netbuild import BASE_TIME, Conv, segments, write_pcap

T = BASE_TIME  # the captures start here (2025-11-22 08:26:40 UTC); staging happens a minute before
ZLIB = zlib_member(HOSTS)  # atomic test 1: stage_df00.zlib
GZ = gzip_dotnet(HOSTS)  # atomic test 2: stage_df00.gz (PowerShell GZipStream)
TAR = tar_archive({"etc/hosts": HOSTS}, "bz2")  # atomic test 3: stage_df00.tar.bz2
ZIP = zip_archive({"hosts": HOSTS})  # atomic test 4: stage_df00_lib.zip
PY = r"C:\Python312\python.exe"
PS = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
TEMP = r"C:\Users\bob\AppData\Local\Temp"
HOSTS_FILE = r"C:\Windows\System32\drivers\etc\hosts"


def iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sport_of(pkts, client: str) -> int:
    return next(p[TCP].sport for p in pkts if p.haslayer(TCP) and p["IP"].src == client)


def windows_host(name: str, ip: str, staged: str, cmd: str, image: str, pid: int, flow: tuple[str, int, int]) -> str:
    """Sysmon XML of one Windows host: the process, its file, its connection (src port from the capture)."""
    dst, dport, sport = flow
    events = [
        hb.process(10, iso(T - 60), image, cmd, r"C:\Windows\explorer.exe", pid, f"CORP\\{name.lower()}"),
        hb.file_create(11, iso(T - 59), image, TEMP + "\\" + staged, pid),
        hb.connection(12, iso(T + 0.5), image, pid, (ip, sport), (dst, dport)),
    ]
    events = [
        hb.WinEvent(e.event_id, e.time, e.data, computer=f"{name}.corp.example", record_id=e.record_id) for e in events
    ]
    for e in events:
        if e.event_id == 3:
            e.data["SourceHostname"] = f"{name}.corp.example"  # type: ignore[index]
    return hb.events_xml(events)


def build(tmp: Path) -> tuple[Path, Path, Path, Path]:
    caps, staged, logs = tmp / "captures", tmp / "staged", tmp / "telemetry"
    for d in (caps, staged, logs):
        d.mkdir()
    # 1. WS-01: Python zlib, POSTed raw over HTTP
    req = ab.http_request("POST", "/upload", "drop.example", ZLIB)
    c1 = ab.http_conversation([(req, ab.http_response(200, b"ok"))], client="10.1.2.3", server="203.0.113.9", start=T)
    p1 = segments(c1)
    # 2. WS-02: PowerShell GZipStream, POSTed base64
    req = ab.http_request("POST", "/api/telemetry", "drop.example", base64.b64encode(GZ))
    c2 = ab.http_conversation(
        [(req, ab.http_response(200, b"ok"))], client="10.1.2.4", server="203.0.113.10", client_port=50_000, start=T + 5
    )
    p2 = segments(c2)
    # 3. lnx-01: Python tarfile + bz2, stored by FTP
    ftp = ab.ftp_session(
        [ab.Transfer("STOR", "stage_df00.tar.bz2", TAR)], client="10.1.2.5", server="198.51.100.21", start=T + 10
    )
    p3 = ab.ftp_packets(ftp)
    # 4. WS-04: Python zipfile, mailed
    msg = ab.smtp_message(
        "bob@corp.example", ["drop@mail.example"], "q", "see attached", [ab.Attachment("stage_df00_lib.zip", ZIP)]
    )
    c4 = ab.smtp_session(
        [("bob@corp.example", ["drop@mail.example"], msg)], client="10.1.2.6", server="198.51.100.25", start=T + 20
    )
    p4 = segments(c4)
    # 5. WS-05: benign noise only: a gzip page coming in, Git loading its own zlib1.dll, an installer's zip in Temp
    page = gzip_named(sample_text(20_000, 3), "index.html")
    c5 = Conv(
        "10.1.2.7",
        51_000,
        "192.0.2.80",
        80,
        sends=[
            ("c2s", b"GET / HTTP/1.1\r\nHost: news\r\n\r\n"),
            ("s2c", ab.http_response(200, page, [("Content-Encoding", "gzip")])),
        ],
        start=T + 30,
    )
    write_pcap(caps / "day.pcap", sorted(p1 + p2 + p3 + p4 + segments(c5), key=lambda p: float(p.time)))

    py_zlib = (
        f"import zlib;open(r'{TEMP}\\stage_df00.zlib','wb').write(zlib.compress(open(r'{HOSTS_FILE}','rb').read()))"
    )
    ps_gzip = (
        "$g=New-Object IO.Compression.GZipStream([IO.File]::Create($env:TEMP+'\\stage_df00.gz'),"
        "[IO.Compression.CompressionMode]::Compress)"
    )
    py_zip = f"import zipfile;zipfile.ZipFile(r'{TEMP}\\stage_df00_lib.zip','w',8).write(r'{HOSTS_FILE}')"
    flow1 = ("203.0.113.9", 80, sport_of(p1, "10.1.2.3"))
    ws1 = windows_host("WS-01", "10.1.2.3", "stage_df00.zlib", f'python.exe -c "{py_zlib}"', PY, 4100, flow1)
    flow2 = ("203.0.113.10", 80, 50_000)
    ws2 = windows_host("WS-02", "10.1.2.4", "stage_df00.gz", f'powershell.exe -c "{ps_gzip}"', PS, 4200, flow2)
    flow4 = ("198.51.100.25", 25, 49200)
    ws4 = windows_host("WS-04", "10.1.2.6", "stage_df00_lib.zip", f'python.exe -c "{py_zip}"', PY, 4400, flow4)
    git = r"C:\Program Files\Git\mingw64\bin"
    msi, explorer = r"C:\Windows\System32\msiexec.exe", r"C:\Windows\explorer.exe"
    noise = [
        hb.image_load(20, iso(T + 25), git + r"\git.exe", git + r"\zlib1.dll", 900),
        hb.process(21, iso(T + 26), msi, "msiexec.exe /i setup.msi", explorer, 901, "CORP\\eve"),
    ]
    noise = [hb.WinEvent(e.event_id, e.time, e.data, computer="WS-05", record_id=e.record_id) for e in noise]
    for name, xml in (("ws01.xml", ws1), ("ws02.xml", ws2), ("ws04.xml", ws4), ("ws05.xml", hb.events_xml(noise))):
        (logs / name).write_text(xml)
    (logs / "lnx01-audit.log").write_text(hb.python_tarfile_audit(T - 50, node="lnx-01"))

    for host, rel, data, t in (
        ("WS-01", "Users/bob/AppData/Local/Temp/stage_df00.zlib", ZLIB, T - 59),
        ("WS-02", "Users/bob/AppData/Local/Temp/stage_df00.gz", GZ, T - 59),
        ("lnx-01", "tmp/stage_df00.tar.bz2", TAR, T - 50),
        ("WS-04", "Users/bob/AppData/Local/Temp/stage_df00_lib.zip", ZIP, T - 59),
        ("WS-05", "Users/eve/AppData/Local/Temp/setup/payload.zip", zip_archive({"a.dll": b"MZ" * 4000}), T + 26),
    ):
        f = staged / host / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
        os.utime(f, (t, t))
    hostmap = tmp / "hosts.csv"
    hostmap.write_text("name,ip\nlnx-01,10.1.2.5\n")  # auditd names the host, not its address
    return caps, staged, logs, hostmap


def test_four_atomic_tests_become_four_incidents_and_noise_none(tmp_path, rule_cache):
    caps, staged, logs, hostmap = build(tmp_path)
    db, out = tmp_path / "sw.db", tmp_path / "incidents.jsonl"
    cfg = tmp_path / "sw.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "test"\n')
    scan = ["-q", "scan", str(caps), str(staged), str(logs), "--db", str(db), "--config", str(cfg)]
    assert cli_main([*scan, "--home-net", "10.0.0.0/8", "--host-from-path", "/staged/([^/]+)/"]) == 0
    assert cli_main(["-q", "correlate", "--db", str(db), "--host-map", str(hostmap), "--jsonl", str(out)]) == 0
    incidents = {r["host"]["name"].split(".")[0].lower(): r for r in map(json.loads, out.read_text().splitlines())}
    assert sorted(incidents) == ["lnx-01", "ws-01", "ws-02", "ws-04"]
    want = {
        "ws-01": (PY, "stage_df00.zlib", "T1567"),
        "ws-02": (PS, "stage_df00.gz", "T1567"),
        "lnx-01": ("/usr/bin/python3.11", "stage_df00.tar.bz2", "T1048"),
        "ws-04": (PY, "stage_df00_lib.zip", "T1048"),
    }
    for host, (image, name, exfil) in want.items():
        r = incidents[host]
        inc = r["stagewatch"]["incident"]
        assert r["process"]["executable"] == image, host
        assert any(f.replace("\\", "/").endswith(name) for f in inc["files"]), (host, inc["files"])
        assert set(r["threat"]["technique"]["id"]) == {"T1560.002", exfil}, host
        assert {"network", "staged_file", "host_rule"} <= set(inc["kinds"]), host
        assert "same_sha256" in inc["reasons"], host  # the staged file is the member that left
        kinds = {e["kind"] for e in inc["evidence"]}
        assert {"network", "staged_file", "host_rule"} <= kinds
    assert "process_connection" in incidents["ws-01"]["stagewatch"]["incident"]["reasons"]  # Sysmon 3 = the flow
    # a second correlation adds nothing; `incidents` reads them back, also by host
    assert cli_main(["-q", "correlate", "--db", str(db), "--host-map", str(hostmap)]) == 0
    with FindingStore(str(db)) as store:
        assert len(store.incident_records()) == 4
        assert [r["host"]["name"] for r in store.incident_records(host="ws-02")] == ["WS-02.corp.example"]


# -- the join on its own: typed inputs, no store ----------------------------------------------------


def _staged(ref: str, host: str, path: str, size: int, ts: float, sha: str = "a" * 64) -> Staged:
    return Staged(ref, ts, sha, size, host, path, "alert")


def _hit(ref: str, host: str, ts: float, op: str, label: str = "PythonLibraryCompression") -> RuleHit:
    return RuleHit(ref, ts, host, (), label, op, r"C:\Python312\python.exe", "python.exe -c ...", 7, "bob", None, "x#1")


def test_an_encrypted_upload_whose_size_fits_a_staged_file_is_joined():
    hosts = HostMap()
    hosts.add("WS-07.corp.example", ["10.1.2.7"])
    size = 5_000_000
    staged = [_staged("s1", "WS-07", r"C:\Users\bob\AppData\Local\Temp\out.7z", size, T - 30)]
    hits = [_hit("h1", "WS-07", T - 40, "compress")]
    fits = FlowIn("f1", T, T + 9, "10.1.2.7", 50123, "198.51.100.80", 443, "outbound", size + 9_000, "files.example")
    too_big = FlowIn("f2", T, T + 9, "10.1.2.7", 50124, "198.51.100.80", 443, "outbound", size * 2, "files.example")
    (inc,) = Correlator(hosts).run([], staged, hits, [], [fits, too_big])
    assert "size_fits_encrypted_flow" in inc.reasons and inc.destinations == ("198.51.100.80:443",)
    assert {e.ref for e in inc.evidence} == {"s1", "h1", "f1"} and "T1567" in inc.techniques
    assert inc.host == "WS-07.corp.example" and inc.host_ips == ("10.1.2.7",)


def test_single_kinds_and_decompression_stay_findings():
    hosts = HostMap()
    installer = [_staged("s1", "WS-05", r"C:\Users\eve\AppData\Local\Temp\setup\payload.zip", 1000, T)]
    loader = [_hit("h1", "WS-05", T + 5, "decompress", "PowerShellLibraryCompression")]
    git = [_hit("h2", "WS-05", T + 6, "unknown", "CompressionDllLoad")]
    assert Correlator(hosts).run([], installer, loader + git, []) == []  # one kind only: no incident
    far = [_hit("h3", "WS-05", T - 3600, "compress")]
    assert Correlator(hosts).run([], installer, far, []) == []  # outside the 15-minute window
    near = [_hit("h4", "WS-05", T - 300, "compress")]
    (inc,) = Correlator(hosts).run([], installer, near, [])
    assert inc.kinds == ("host_rule", "staged_file")


def test_host_map_files(tmp_path):
    csv_map, json_map = tmp_path / "m.csv", tmp_path / "m.json"
    csv_map.write_text("name,ip\n# comment\nlnx-01,10.0.0.5,10.0.0.6\n")
    json_map.write_text('{"WS-01.corp.example": ["10.0.0.7"], "WS-02": "10.0.0.8"}')
    hosts = HostMap()
    hosts.load(csv_map)
    hosts.load(json_map)
    assert [hosts.host_of(None, ip) for ip in ("10.0.0.6", "10.0.0.7", "10.0.0.8", "10.9.9.9")] == [
        "lnx-01",
        "ws-01",
        "ws-02",
        "10.9.9.9",
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("lonely\n")
    with pytest.raises(InputError, match="bad.csv: line 1"):
        hosts.load(bad)
