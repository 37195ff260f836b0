"""QRadar AQL exports of the T1560.002 query (seed 000): CSV, JSON list, Ariel `{"events": [...]}`, NDJSON.

Every export is written here from the same rows: the seed's four atomic tests as its query shows
them (Sysmon EID 1 rows, the Linux one from Sysmon for Linux), plus an EID 7 compression-DLL load
and an EID 11 staged-file creation.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import struct
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from loguru import logger

from sensor.errors import InputError
from sensor.hostevents import HEAD_BYTES, parsers
from sensor.hostevents.qradar import QRadar
from sensor.model import HostEvent
from sensor.stats import RunStats

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
TEMP = "C:\\Users\\bob\\AppData\\Local\\Temp\\"
PY = "C:\\Users\\bob\\AppData\\Local\\Programs\\Python\\Python311\\python.exe"
PS = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
CMD = "C:\\Windows\\System32\\cmd.exe"
HOSTS = "C:\\Windows\\System32\\drivers\\etc\\hosts"

# the seed's column order; the exports below shuffle it
COLUMNS = [
    "EventTime",
    "LogSource",
    "UserName",
    "HostIP",
    "ProcessPath",
    "CmdLine",
    "Artifact",
    "ParentProcess",
    "DetectionSource",
]
SHUFFLED = [
    "DetectionSource",
    "CmdLine",
    "HostIP",
    "EventTime",
    "Artifact",
    "LogSource",
    "UserName",
    "ParentProcess",
    "ProcessPath",
]


def row(time: str, user: str, ip: str, image: str, cmd: str, artifact: str, parent: str, label: str) -> dict:
    source = "SysmonForLinux @ lnx-07" if image.startswith("/") else "WindowsAuthServer @ WS-01"
    values = [time, source, user, ip, image, cmd, artifact, parent, label]
    return dict(zip(COLUMNS, values, strict=True))


# newest first, as the query's ORDER BY devicetime DESC returns them; EventTime has no zone (DATEFORMAT)
ROWS = [
    # Test 4: python zipfile, ZIP_DEFLATED into %TEMP%
    row(
        "2024-05-14 09:15:40",
        "CORP\\bob",
        "10.20.30.41",
        PY,
        f"python.exe -c \"import zipfile; z=zipfile.ZipFile(r'{TEMP}stage_df00_lib.zip','w',zipfile.ZIP_DEFLATED); "
        f"z.write(r'{HOSTS}'); z.close()\"",
        "",
        CMD,
        "PythonLibraryCompression",
    ),
    # Test 3: auditd/Sysmon for Linux, python3 tarfile + bz2 to /tmp
    row(
        "2024-05-14 09:14:22",
        "bob",
        "10.20.30.77",
        "/usr/bin/python3.11",
        "python3 -c \"import bz2, tarfile; t=tarfile.open('/tmp/stage_df00.tar.bz2','w:bz2'); "
        "[t.add(p) for p in ('/etc/passwd','/etc/hosts')]; t.close()\"",
        "",
        "/usr/bin/bash",
        "PythonLibraryCompression",
    ),
    # Test 2: PowerShell GZipStream (commas and quotes: CSV quoting must hold)
    row(
        "2024-05-14 09:13:10",
        "CORP\\bob",
        "10.20.30.41",
        PS,
        f"powershell.exe -NoProfile -Command \"$d=[IO.File]::ReadAllBytes('{HOSTS}'); $ms=New-Object IO.MemoryStream; "
        "$gz=New-Object IO.Compression.GZipStream($ms,[IO.Compression.CompressionMode]::Compress); "
        '$gz.Write($d,0,$d.Length); $gz.Close(); [IO.File]::WriteAllBytes("$env:TEMP\\stage_df00.gz",$ms.ToArray())"',
        "",
        CMD,
        "PowerShellLibraryCompression",
    ),
    # Test 1, EID 11: the .zlib staged by python.exe (EID 11 carries no command line or parent)
    row(
        "2024-05-14 09:12:04",
        "CORP\\bob",
        "10.20.30.41",
        PY,
        "",
        f"{TEMP}stage_df00.zlib",
        "",
        "StagedCompressedFileCreation",
    ),
    # Test 1, EID 1: python zlib
    row(
        "2024-05-14 09:12:03",
        "CORP\\bob",
        "10.20.30.41",
        PY,
        f"python.exe -c \"import zlib; d=open(r'{HOSTS}','rb').read(); "
        f"open(r'{TEMP}stage_df00.zlib','wb').write(zlib.compress(d, 9))\"",
        "",
        CMD,
        "PythonLibraryCompression",
    ),
    # EID 7: a PyInstaller-style bundle loads its own zlib1.dll outside System32
    row(
        "2024-05-14 09:11:58",
        "CORP\\bob",
        "10.20.30.41",
        f"{TEMP}_MEI48122\\collector.exe",
        "",
        f"{TEMP}_MEI48122\\zlib1.dll",
        "",
        "CompressionDllLoad",
    ),
]
# what each row becomes: (code, action, target_file, loaded_image)
EXPECTED = [
    ("1", "process", None, None),
    ("1", "process", None, None),
    ("1", "process", None, None),
    ("11", "file_create", f"{TEMP}stage_df00.zlib", None),
    ("1", "process", None, None),
    ("7", "image_load", None, f"{TEMP}_MEI48122\\zlib1.dll"),
]


def at(text: str, tz: dt.tzinfo) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def write_csv(path: Path, rows: list[dict], columns: list[str] = SHUFFLED) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for r in rows:
            w.writerow([r.get(c, "") for c in columns])
    return path


def shuffled(r: dict) -> dict:
    return {c: r[c] for c in SHUFFLED}


def write_export(tmp_path: Path, form: str, rows: list[dict] = ROWS) -> Path:
    """One export of `rows` in `form`: csv | json | ariel | ndjson."""
    path = tmp_path / f"export-{form}.dat"  # a neutral name: the parser is chosen by content
    if form == "csv":
        return write_csv(path, rows)
    objs = [shuffled(r) for r in rows]
    if form == "json":
        path.write_text(json.dumps(objs, indent=2), encoding="utf-8")
    elif form == "ariel":
        path.write_text(json.dumps({"events": objs}), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    return path


def parse(path: Path, tz: dt.tzinfo = UTC) -> tuple[list[HostEvent], RunStats]:
    stats = RunStats()
    return list(QRadar().parse(str(path), stats, tz)), stats


def sniff(path: Path) -> bool:
    return QRadar.sniff(path.read_bytes()[:HEAD_BYTES], str(path))


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    seen: list[str] = []
    logger.enable("sensor")  # the package keeps loguru quiet unless the CLI turns it on
    sink = logger.add(lambda m: seen.append(m.record["message"]), level="WARNING", format="{message}")
    try:
        yield seen
    finally:
        logger.remove(sink)
        logger.disable("sensor")


def test_registered() -> None:
    assert parsers.get("qradar") is QRadar
    assert QRadar.name == "qradar"


@pytest.mark.parametrize("form", ["csv", "json", "ariel", "ndjson"])
def test_seed_rows_every_form(tmp_path: Path, form: str) -> None:
    path = write_export(tmp_path, form)
    assert sniff(path)
    events, stats = parse(path)
    assert stats.host == {"records": 6, "events": 6}
    assert len(events) == len(ROWS)
    for n, (ev, r, (code, action, target, loaded)) in enumerate(zip(events, ROWS, EXPECTED, strict=True), 1):
        assert (ev.code, ev.action, ev.target_file, ev.loaded_image) == (code, action, target, loaded)
        assert ev.ts == at(r["EventTime"], UTC)
        assert ev.provider == "qradar"
        assert ev.record_id == str(n)
        assert ev.source == str(path)
        assert ev.label == r["DetectionSource"]
        assert ev.host is None  # the query selects no host name, only sourceip
        assert ev.host_ips == (r["HostIP"],)
        assert ev.image == r["ProcessPath"]
        assert ev.command_line == (r["CmdLine"] or None)
        assert ev.parent_image == (r["ParentProcess"] or None)
        assert ev.user == r["UserName"]
    assert "import zlib" in events[4].command_line and "GZipStream" in events[2].command_line
    assert "/tmp/stage_df00.tar.bz2" in events[1].command_line and "ZIP_DEFLATED" in events[0].command_line


@pytest.mark.parametrize("form", ["csv", "json", "ariel", "ndjson"])
def test_forms_agree(tmp_path: Path, form: str) -> None:
    base, _ = parse(write_export(tmp_path, "csv"))
    other, _ = parse(write_export(tmp_path, form))
    assert [replace(e, source="") for e in other] == [replace(e, source="") for e in base]


@pytest.mark.parametrize("form", ["csv", "ndjson"])
def test_zone_handling(tmp_path: Path, form: str) -> None:
    times = ["2024-05-14 11:12:03", "2024-05-14T09:12:03Z", "2024-05-14 11:12:03+02:00", "1715677923000"]
    rows = [{**ROWS[4], "EventTime": t} for t in times]
    if form == "ndjson":
        rows[3]["EventTime"] = 1715677923000  # the Ariel API gives starttime as a JSON number, milliseconds
    path = write_export(tmp_path, form, rows)
    utc = [e.ts for e in parse(path, UTC)[0]]
    berlin = [e.ts for e in parse(path, BERLIN)[0]]
    noon = at("2024-05-14 09:12:03", UTC)
    assert utc == [noon + 7200, noon, noon, noon]
    assert berlin == [noon, noon, noon, noon]  # CEST is UTC+2: only the zoneless time moves


def test_winter_time_in_berlin(tmp_path: Path) -> None:
    path = write_export(tmp_path, "csv", [{**ROWS[4], "EventTime": "2024-01-10 10:00:00"}])
    assert parse(path, BERLIN)[0][0].ts == at("2024-01-10 09:00:00", UTC)


def test_header_names_tolerant_and_unknown_columns_warned_once(tmp_path: Path, warnings: list[str]) -> None:
    header = ["event time", "LOG_SOURCE", "User Name", "host-ip", "Process Path", "cmdline", "ARTIFACT"]
    header += ["Parent Process", "detection_source", "qid", "magnitude", "Hostname"]
    path = tmp_path / "named.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as f:  # with a BOM, as Excel-bound exports have
        w = csv.writer(f)
        w.writerow(header)
        for r in ROWS:
            w.writerow([r[c] for c in COLUMNS] + ["4688", "7", "WS-01"])
    assert sniff(path)
    events, stats = parse(path)
    assert stats.host["events"] == 6
    assert events[5].loaded_image == f"{TEMP}_MEI48122\\zlib1.dll"
    assert {e.host for e in events} == {"WS-01"}
    unknown = [m for m in warnings if "unknown QRadar column" in m]
    assert len(unknown) == 1 and "2 unknown" in unknown[0] and "qid" in unknown[0] and "magnitude" in unknown[0]


def test_json_unknown_keys_warned_once(tmp_path: Path, warnings: list[str]) -> None:
    path = tmp_path / "ariel.json"
    path.write_text(json.dumps({"events": [{**r, "qid": 5001000, "starttime": 1} for r in ROWS]}), encoding="utf-8")
    assert len(parse(path)[0]) == 6
    unknown = [m for m in warnings if "unknown QRadar column" in m]
    assert unknown == [f"{path}: 2 unknown QRadar column(s) ignored: qid, starttime"]


def test_bad_time_and_short_row_counted_rest_parsed(tmp_path: Path, warnings: list[str]) -> None:
    path = write_csv(tmp_path / "damaged.csv", [ROWS[0], {**ROWS[1], "EventTime": "2024-13-45 99:00:00"}, *ROWS[2:]])
    with path.open("a", encoding="utf-8") as f:
        f.write("PythonLibraryCompression,python.exe -c x,10.20.30.41\n")  # short row: 3 of 9 fields
        w = csv.writer(f)
        w.writerow([ROWS[4][c] for c in SHUFFLED])
    events, stats = parse(path)
    assert stats.host == {"records": 8, "events": 6, "bad_records": 2}
    assert [e.record_id for e in events] == ["1", "3", "4", "5", "6", "8"]  # bad rows keep their numbers
    assert any("row 2" in m and "unreadable" in m for m in warnings)
    assert any("2 QRadar CSV records unreadable" in m for m in warnings)


def test_json_bad_rows(tmp_path: Path) -> None:
    lines = [json.dumps(shuffled(r)) for r in ROWS[:3]]
    lines.insert(1, '{"EventTime": "2024-05-14 09:1')  # a line cut off
    lines.append(json.dumps({**ROWS[3], "EventTime": "yesterday"}))
    lines.append(json.dumps(["not", "a", "row"]))
    path = tmp_path / "rows.ndjson"
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    events, stats = parse(path)
    assert stats.host == {"records": 6, "events": 3, "bad_records": 3}
    assert [e.record_id for e in events] == ["1", "3", "4"]


def test_json_list_cut_off_keeps_rows_before_damage(tmp_path: Path) -> None:
    text = json.dumps({"events": [shuffled(r) for r in ROWS]}, indent=1)
    path = tmp_path / "cut.json"
    path.write_text(text[: text.index("StagedCompressedFileCreation")], encoding="utf-8")
    assert sniff(path)
    events, stats = parse(path)
    assert [e.label for e in events] == [r["DetectionSource"] for r in ROWS[:3]]
    assert stats.host["bad_records"] == 1 and stats.host["events"] == 3


def test_unknown_columns_only_is_input_error(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("name,age,city\nbob,42,Berlin\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        parse(path)
    assert err.value.where == str(path) and "none of the QRadar query's columns" in str(err.value)
    assert "\n" not in str(err.value)


def test_no_event_time_is_input_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "notime.csv", ROWS, [c for c in SHUFFLED if c != "EventTime"])
    with pytest.raises(InputError, match="no EventTime column"):
        parse(path)


def test_json_without_query_columns_is_input_error(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('[{"a": 1}]', encoding="utf-8")
    with pytest.raises(InputError, match="none of the QRadar"):
        parse(path)


WINLOGBEAT = {
    "@timestamp": "2024-05-14T09:12:03.123Z",
    "event": {"code": "1", "provider": "Microsoft-Windows-Sysmon"},
    "host": {"name": "WS-01", "ip": ["10.20.30.41"]},
    "winlog": {
        "channel": "Microsoft-Windows-Sysmon/Operational",
        "event_id": 1,
        "computer_name": "WS-01",
        "event_data": {"Image": PY, "CommandLine": "python.exe -c import zlib", "ParentImage": CMD, "User": "bob"},
    },
}
MORDOR = {  # NXLog/Mordor flat Sysmon JSON: EventTime and UserName but none of the query's own aliases
    "EventTime": "2024-05-14 09:12:03",
    "Hostname": "WS-01",
    "UserName": "bob",
    "EventID": 1,
    "SourceName": "Microsoft-Windows-Sysmon",
    "Image": PY,
    "CommandLine": "python.exe -c import zlib",
    "ParentImage": CMD,
}


@pytest.mark.parametrize(
    "content",
    [
        b"name,age\nbob,42\n",
        b"EventTime,Computer,EventID\n2024-05-14 09:12:03,WS-01,1\n",
        json.dumps(WINLOGBEAT).encode() + b"\n",
        json.dumps([WINLOGBEAT]).encode(),
        json.dumps(MORDOR).encode() + b"\n",
        struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + b"\x00" * 40,
        b"ElfFile\x00" + b"\x00" * 120,
        b"",
    ],
    ids=["generic-csv", "csv-two-names", "winlogbeat", "winlogbeat-list", "mordor", "pcap", "evtx", "empty"],
)
def test_sniff_rejects(tmp_path: Path, content: bytes) -> None:
    assert not QRadar.sniff(content, str(tmp_path / "qradar_export.csv"))  # the name says QRadar: content decides


def test_sniff_three_columns_enough() -> None:
    assert QRadar.sniff(b"Event Time,Process Path,Cmd Line\r\n", "x")
    assert QRadar.sniff(
        b'\xef\xbb\xbf{"events": [{"EventTime": 1715677923000, "HostIP": "10.0.0.1", "UserName": "bo', "x"
    )


def test_ndjson_first_line_damaged(tmp_path: Path) -> None:
    path = tmp_path / "rows.ndjson"
    path.write_text('{"EventTime": "2024-05-14 09:1\n' + json.dumps(ROWS[0]) + "\n", encoding="utf-8")
    events, stats = parse(path)
    assert [e.record_id for e in events] == ["2"]
    assert stats.host == {"records": 2, "events": 1, "bad_records": 1}


def test_json_garbage_is_input_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.json"
    path.write_text('{"EventTime": "2024\n{{{\n', encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON"):
        parse(path)


def test_json_null_row_is_bad(tmp_path: Path) -> None:
    path = tmp_path / "nulls.json"
    path.write_text(json.dumps([ROWS[0], None, ROWS[1]]), encoding="utf-8")
    events, stats = parse(path)
    assert [e.record_id for e in events] == ["1", "3"]
    assert stats.host == {"records": 3, "events": 2, "bad_records": 1}


def test_csv_oversized_field_is_one_bad_row(tmp_path: Path) -> None:
    huge = {**ROWS[2], "CmdLine": "powershell.exe -EncodedCommand " + "A" * (csv.field_size_limit() + 10)}
    path = write_csv(tmp_path / "huge.csv", [ROWS[0], huge, ROWS[1]])
    events, stats = parse(path)
    assert [e.record_id for e in events] == ["1", "3"]
    assert stats.host == {"records": 3, "events": 2, "bad_records": 1}
