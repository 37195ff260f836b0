"""Host telemetry in: Windows EVTX/XML/JSON parsers on real files (../shared/hostevents/real, MANIFEST.md gives
the expected counts) and on crafted ones (tests/hostbuild.py), recognition by content, damaged input, and the
host rules (signatures/host, Sigma) on the real positives and negatives and on the seed's four atomic tests."""

from __future__ import annotations

import codecs
import collections
import datetime as dt
import json
from pathlib import Path

import pytest

from sensor.cli import main as cli_main
from sensor.hostevents import sniff
from sensor.hostrules.engine import HostRules
from sensor.model import HostEvent, HostFinding
from sensor.stats import RunStats
from sensor.store.db import FindingStore
from tests import hostbuild as hb
from tests.conftest import SHARED, absent, requires

REAL = SHARED / "hostevents" / "real"
needs_real = requires(absent(REAL))
T0 = "2026-11-20T09:14:02.125000Z"


def read(path: Path, tz: dt.tzinfo = dt.UTC) -> tuple[list[HostEvent], RunStats]:
    head = path.read_bytes()[:65536]
    what = sniff.which(str(path), head)
    assert what is not None, f"{path.name} not recognised"
    stats = RunStats()
    return list(sniff.read(str(path), what, stats, tz)), stats


def hits(events: list[HostEvent]) -> list[HostFinding]:
    rules = HostRules("test")
    return [h for e in events for h in rules.check(e)]


# -- recognition ------------------------------------------------------------------------------------


@needs_real
def test_every_real_file_goes_to_the_right_parser():
    want = {".evtx": "evtx", ".log": "auditd", ".zip": "winjson"}
    for p in sorted(REAL.iterdir()):
        if p.suffix not in want:
            continue
        what = sniff.which(str(p), p.read_bytes()[:65536])
        assert what is not None and what.parser == want[p.suffix], p.name
        assert (what.member is not None) == (p.suffix == ".zip")


def test_captures_staged_archives_and_text_are_not_telemetry(tmp_path):
    import zipfile

    staged = tmp_path / "stage.zip"
    with zipfile.ZipFile(staged, "w") as z:
        z.writestr("report.csv", "a,b\n1,2\n")
    for head in (b"\xd4\xc3\xb2\xa1" + b"\0" * 20, b"name,age\nbob,4\n", b'{"a": 1}', b"<html></html>"):
        assert sniff.which("x", head) is None
    assert sniff.which(str(staged), staged.read_bytes()) is None


# -- EVTX (real) ------------------------------------------------------------------------------------


SYSMON, PS = "sysmon", "powershell"
EVTX_COUNTS = {  # per (provider, event id), from MANIFEST.md's record tables
    "jk__T1560-1_compress-archive_sysmon.evtx": {(SYSMON, "1"): 32},
    "eas__PanacheSysmon_vs_AtomicRedTeam01.evtx": {(SYSMON, "1"): 511, (SYSMON, "7"): 5, (SYSMON, "11"): 4}
    | {(SYSMON, "3"): 4},
    "eas__sysmon_1_7_11_migwiz_makecab.evtx": {(SYSMON, "1"): 4, (SYSMON, "11"): 2, (SYSMON, "7"): 1},
    "hb__deepbluecli_metasploit-psexec-powershell-target-security.evtx": {("security", "4688"): 7},
    "eas__LM_sysmon_psexec_smb_meterpreter.evtx": {(SYSMON, "1"): 3, (SYSMON, "3"): 2},
    "jk__T1560-1_compress-archive_powershell-classic.evtx": {(PS, "800"): 44, (PS, "600"): 6, (PS, "400"): 1}
    | {(PS, "403"): 1},
}


@needs_real
@pytest.mark.parametrize("name,counts", sorted(EVTX_COUNTS.items()))
def test_evtx_records_by_event_id(name, counts):
    events, stats = read(REAL / name)
    assert collections.Counter((e.provider, e.code) for e in events) == counts
    assert stats.host["bad_records"] == 0


@needs_real
def test_evtx_fields_and_time_come_from_the_record():
    events, _ = read(REAL / "eas__sysmon_1_7_11_migwiz_makecab.evtx")
    (cab,) = [e for e in events if e.action == "file_create" and e.target_file.endswith(".cab")]
    assert cab.target_file == r"C:\Users\IEUser\AppData\Local\Temp\suspicious.cab"
    assert cab.image.lower().endswith("makecab.exe") and cab.host and cab.pid
    # the time is System/TimeCreated/@SystemTime, not the record header (zero in some files)
    assert dt.datetime.fromtimestamp(cab.ts, dt.UTC).year == 2019
    (sec,) = read(REAL / "hb__deepbluecli_metasploit-psexec-powershell-target-security.evtx")[0][:1]
    assert sec.action == "process" and sec.image and sec.pid and sec.user


@needs_real
def test_a_damaged_evtx_keeps_its_good_records(tmp_path):
    data = bytearray((REAL / "eas__PanacheSysmon_vs_AtomicRedTeam01.evtx").read_bytes())
    # wreck the second 64 KiB chunk's records (header kept, so the parser reaches them)
    for i in range(0x10000 + 0x10000 + 0x400, 0x10000 + 0x10000 + 0x6000, 7):
        data[i] ^= 0x5A
    broken = tmp_path / "broken.evtx"
    broken.write_bytes(bytes(data))
    events, stats = read(broken)
    whole, _ = read(REAL / "eas__PanacheSysmon_vs_AtomicRedTeam01.evtx")
    assert 0 < len(events) < len(whole)
    assert stats.host["bad_records"] >= 1


# -- XML and JSON (crafted) -------------------------------------------------------------------------


HOSTS_FILE = r"C:\Windows\System32\drivers\etc\hosts"
TEMP = r"C:\Users\bob\AppData\Local\Temp"
PY_ZLIB = (  # the seed's atomic test 1: Python zlib
    f"python.exe -c \"import zlib;open(r'{TEMP}\\stage_df00.zlib','wb')"
    f".write(zlib.compress(open(r'{HOSTS_FILE}','rb').read()))\""
)
PS_GZIP = (  # atomic test 2: PowerShell GZipStream
    "powershell.exe -c \"$o=[IO.File]::Create($env:TEMP+'\\stage_df00.gz');"
    "$g=New-Object IO.Compression.GZipStream($o,[IO.Compression.CompressionMode]::Compress);"
    f"$b=[IO.File]::ReadAllBytes('{HOSTS_FILE}');$g.Write($b,0,$b.Length);$g.Close()\""
)
PY_ZIP = (  # atomic test 4: Python zipfile ZIP_DEFLATED
    f"python.exe -c \"import zipfile;zipfile.ZipFile(r'{TEMP}\\stage_df00_lib.zip','w',zipfile.ZIP_DEFLATED)"
    f".write(r'{HOSTS_FILE}')\""
)
PS_LOADER = (  # a decompression loader, as psexec_psh writes it
    'powershell.exe -nop -c "IEX (New-Object IO.StreamReader(New-Object IO.Compression.GzipStream('
    "(New-Object IO.MemoryStream(,[Convert]::FromBase64String('H4sIAAAA'))),"
    '[IO.Compression.CompressionMode]::Decompress))).ReadToEnd()"'
)


def seed_windows_events() -> list[hb.WinEvent]:
    py, ps = r"C:\Python312\python.exe", r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
    explorer, git = r"C:\Windows\explorer.exe", r"C:\Program Files\Git\mingw64\bin"
    services = r"C:\Windows\System32\services.exe"
    return [
        hb.process(101, T0, py, PY_ZLIB, explorer, 5100, "CORP\\bob"),
        hb.file_create(102, "2026-11-20T09:14:02.400000Z", py, TEMP + r"\stage_df00.zlib", 5100),
        hb.process(103, "2026-11-20T09:15:00.000000Z", ps, PS_GZIP, explorer, 5200, "CORP\\bob"),
        hb.file_create(104, "2026-11-20T09:15:00.300000Z", ps, TEMP + r"\stage_df00.gz", 5200),
        hb.process(105, "2026-11-20T09:16:00.000000Z", py, PY_ZIP, explorer, 5300, "CORP\\bob"),
        hb.file_create(106, "2026-11-20T09:16:00.200000Z", py, TEMP + r"\stage_df00_lib.zip", 5300),
        hb.image_load(107, "2026-11-20T09:17:00.000000Z", git + r"\git.exe", git + r"\zlib1.dll", 5400),
        hb.process(108, "2026-11-20T09:18:00.000000Z", ps, PS_LOADER, services, 5500, "SYSTEM"),
        hb.connection(109, "2026-11-20T09:19:00.000000Z", py, 5100, ("10.1.2.3", 50512), ("203.0.113.9", 80)),
    ]


@pytest.mark.parametrize("form", ["event-viewer", "wevtutil", "utf16", "winlogbeat"])
def test_the_same_events_from_xml_and_json(tmp_path, form):
    events = seed_windows_events()
    path = tmp_path / "events.dat"  # the name says nothing: content decides
    if form == "event-viewer":
        path.write_text(hb.events_xml(events), encoding="utf-8")
    elif form == "wevtutil":
        path.write_text(hb.events_xml(events, root=False), encoding="utf-8")
    elif form == "utf16":
        path.write_bytes(codecs.BOM_UTF16_LE + hb.events_xml(events).encode("utf-16-le"))
    else:
        path.write_text("\n".join(hb.winlogbeat(e, ["10.1.2.3"]) for e in events) + "\n")
    got, stats = read(path)
    assert [(e.code, e.record_id) for e in got] == [(str(e.event_id), str(e.record_id)) for e in events]
    first = got[0]
    assert first.image == r"C:\Python312\python.exe" and "import zlib" in first.command_line
    assert first.ts == dt.datetime(2026, 11, 20, 9, 14, 2, 125000, tzinfo=dt.UTC).timestamp()
    conn = got[-1]
    assert conn.net is not None and (conn.net.dst, conn.net.dport) == ("203.0.113.9", 80)
    assert "10.1.2.3" in conn.host_ips
    assert stats.host["bad_records"] == 0


def test_a_broken_xml_record_is_counted_and_the_rest_read(tmp_path):
    events = seed_windows_events()
    text = hb.events_xml(events)
    cut = text.index("<EventRecordID>104</EventRecordID>")
    broken = text[:cut] + "<EventRecordID>104<<broken" + text[cut + 30 :]
    path = tmp_path / "broken.xml"
    path.write_text(broken)
    got, stats = read(path)
    assert len(got) == len(events) - 1 and stats.host["bad_records"] == 1


def test_bad_json_lines_are_counted_and_the_rest_read(tmp_path):
    lines = [hb.winlogbeat(e) for e in seed_windows_events()]
    lines.insert(3, '{"winlog": {"event_id": "1", "truncated')
    lines.insert(5, "not json at all")
    path = tmp_path / "beats.ndjson"
    path.write_text("\n".join(lines))
    got, stats = read(path)
    assert len(got) == 9 and stats.host["bad_records"] == 2


# -- host rules -------------------------------------------------------------------------------------


def test_seed_windows_tests_are_host_findings_and_the_loader_is_decompression(tmp_path):
    path = tmp_path / "sysmon.xml"
    path.write_text(hb.events_xml(seed_windows_events()))
    found = {(h.event.record_id, h.label, h.operation) for h in hits(read(path)[0])}
    assert found == {
        ("101", "PythonLibraryCompression", "compress"),
        ("102", "StagedCompressedFileCreation", "compress"),
        ("103", "PowerShellLibraryCompression", "compress"),
        ("104", "StagedCompressedFileCreation", "compress"),
        ("105", "PythonLibraryCompression", "compress"),
        ("106", "StagedCompressedFileCreation", "compress"),
        ("107", "CompressionDllLoad", "unknown"),  # Git's own zlib1.dll: a hit, never an incident alone
        ("108", "PowerShellLibraryCompression", "decompress"),
    }


@needs_real
def test_real_powershell_archiving_is_found_and_loaders_are_decompression():
    labels = {}
    for name in (
        "jk__T1560-1_compress-archive_sysmon.evtx",
        "jk__T1074.001-3_zip-to-temp_sysmon.evtx",
        "jk__T1005-1_search-and-zip_sysmon.evtx",
        "eas__LM_sysmon_psexec_smb_meterpreter.evtx",
        "hb__deepbluecli_metasploit-psexec-powershell-target-security.evtx",
        "otrf__covenant_psremoting_grunt.zip",
        "jk__T1036-2_expand-archive_sysmon.evtx",
    ):
        labels[name] = {(h.label, h.operation) for h in hits(read(REAL / name)[0])}
    for run in ("jk__T1560-1", "jk__T1074.001-3", "jk__T1005-1"):  # the seed's query found none of these
        (name,) = [n for n in labels if n.startswith(run)]
        assert labels[name] == {("PowerShellLibraryCompression", "compress")}, name
    for loader in ("eas__LM", "hb__deepbluecli", "otrf__covenant"):  # the seed's query fired on these
        (name,) = [n for n in labels if n.startswith(loader)]
        assert labels[name] == {("PowerShellLibraryCompression", "decompress")}, name
    assert labels["jk__T1036-2_expand-archive_sysmon.evtx"] == set()


@needs_real
def test_real_auditd_recording_matches_its_labels():
    labels = json.loads((REAL / "local__auditd_atomic-T1560.002_debian12.labels.json").read_text())
    events, _ = read(REAL / "local__auditd_atomic-T1560.002_debian12.log")
    by_serial = collections.defaultdict(set)
    for h in hits(events):
        by_serial[int(h.event.record_id)].add((h.label, h.operation))
    for step in labels:
        seen = set().union(*(by_serial.get(n, set()) for n in step["audit_serials"]))
        label = step["label"]
        if label.startswith("T1560.002 positive"):  # every library run, the script-file one included
            assert any(op == "compress" for _, op in seen), step["step"]
        elif label.startswith(("T1560.001", "cleanup", "benign |")) or label == "benign":
            assert seen == set(), step["step"]  # utilities, cleanups and noise stay silent
        else:  # hard negatives: at most labelled as decompression
            assert all(op == "decompress" for _, op in seen), step["step"]


# -- through the command line into the store --------------------------------------------------------


def test_scan_stores_host_events_and_writes_host_findings(tmp_path):
    path = tmp_path / "sysmon.xml"
    path.write_text(hb.events_xml(seed_windows_events()))
    db, out = tmp_path / "sw.db", tmp_path / "f.jsonl"
    assert cli_main(["-q", "scan", str(path), "--db", str(db), "--jsonl", str(out)]) == 0
    store = FindingStore(str(db))
    assert len(store.host_events()) == 9
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 8 and len(store.host_finding_records()) == 8
    py = next(r for r in records if r["event"]["code"] == "1" and "zlib" in r["process"]["command_line"])
    assert py["stagewatch"]["label"] == "PythonLibraryCompression" and py["host"]["name"] == "WS-01.corp.example"
    assert py["threat"]["technique"]["id"] == ["T1560.002"] and py["event"]["kind"] == "event"
    # a second scan adds nothing: ids are deterministic
    assert cli_main(["-q", "scan", str(path), "--db", str(db)]) == 0
    assert len(FindingStore(str(db)).host_finding_records()) == 8
    assert cli_main(["-q", "scan", str(path), "--no-db", "--tz", "Mars/Olympus"]) == 2
