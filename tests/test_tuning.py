"""Analyst tuning through the real CLI: every suppression key on real captures, staged files and Sysmon events;
expiry; thresholds; suppressed results kept in the output and the store with the entry named. Content rules:
an SSN-like pattern in a gzip member's plaintext, user detection and Sigma rules, validation errors."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from sensor.cli import main as cli_main
from sensor.tuning.facts import Facts
from sensor.tuning.suppress import Matcher
from sensor.tuning.threshold import Threshold
from tests import appbuild as ab
from tests import hostbuild as hb
from tests.builders import (
    bzip2_member,
    gzip_named,
    random_bytes,
    sample_text,
    tar_archive,
    xz_member,
    zip_archive,
    zlib_member,
)
from tests.netbuild import BASE_TIME, Conv, segments, write_pcap
from tests.test_network import client_hello

T = BASE_TIME
SHA_TARGET = bzip2_member(sample_text(30_000, 31))  # a staged file matched by its sha256
VEEAM = r"C:\Program Files\Veeam\Endpoint Backup\Veeam.Endpoint.Service.exe"


def conv(src: str, sport: int, dst: str, dport: int, start: float, *sends: tuple[str, bytes]) -> list:
    return segments(Conv(src, sport, dst, dport, sends=list(sends), start=start))


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One capture, one staged tree, one Sysmon log: one target per suppression key, and bystanders."""
    root = tmp_path_factory.mktemp("tuning")
    cap = root / "in" / "cap"
    cap.mkdir(parents=True)
    post = ab.http_request("POST", "/upload/db.gz", "backup.example.com", gzip_named(sample_text(20_000, 1), "db"))
    sync = ab.http_request("POST", "/api/v2/sync", "sync.example.org", zlib_member(sample_text(20_000, 2)))
    near = ab.http_request("POST", "/upload/db.gz", "xbackup.example.com", gzip_named(sample_text(20_000, 15), "db"))
    pkts = [
        *conv("10.0.0.5", 40001, "198.51.100.9", 9000, T, ("c2s", zlib_member(sample_text(9000, 3)))),  # source
        *conv("10.0.0.6", 40002, "203.0.113.7", 8443, T + 1, ("c2s", zlib_member(sample_text(9000, 4)))),  # dest
        *conv("10.0.0.7", 40003, "198.51.100.20", 80, T + 2, ("c2s", post)),  # domain (HTTP Host)
        *conv("10.0.0.8", 40004, "198.51.100.21", 80, T + 3, ("c2s", sync)),  # url
        *conv("10.0.0.9", 40005, "198.51.100.22", 443, T + 4,
              ("c2s", client_hello("cdn.fastupdates.net") + bzip2_member(sample_text(9000, 5)))),  # domain (SNI)
        *conv("10.0.0.10", 40006, "198.51.100.23", 9001, T + 5, ("c2s", xz_member(sample_text(9000, 6)))),  # format
        *conv("10.0.0.11", 40007, "198.51.100.24", 9002, T + 6,
              ("c2s", zip_archive({"a.txt": sample_text(5000, 7)}))),  # rule
        *conv("10.0.0.12", 40008, "198.51.100.25", 9003, T + 7, ("c2s", zlib_member(sample_text(9000, 8)))),  # kept
        *conv("10.0.0.13", 40009, "198.51.100.26", 80, T + 8, ("c2s", near)),  # kept: not backup.example.com
        *conv("10.0.0.14", 40010, "198.51.100.27", 9004, T + 9,
              ("c2s", zip_archive({"b.txt": sample_text(5000, 12)}))),  # kept: by-rule's rule holds, its source not
        *conv("10.0.0.15", 40011, "198.51.100.28", 443, T + 10,
              ("c2s", client_hello("dl.mirror.net") + bzip2_member(sample_text(9000, 13)))),  # one-label suffix
        *conv("10.0.0.16", 40012, "198.51.100.29", 443, T + 11,
              ("c2s", client_hello("net.mirror.org") + bzip2_member(sample_text(9000, 14)))),  # kept: not *.net
    ]  # fmt: skip
    write_pcap(cap / "day.pcap", sorted(pkts, key=lambda p: float(p.time)))
    temp = root / "in" / "staged" / "WS-01" / "Users" / "bob" / "AppData" / "Local" / "Temp"
    temp.mkdir(parents=True)
    (temp / "report.dat").write_bytes(gzip_named(sample_text(20_000, 9), "r"))  # host WS-01
    temp2 = root / "in" / "staged" / "WS-02" / "Users" / "amy" / "AppData" / "Local" / "Temp"
    (temp2 / "backup").mkdir(parents=True)
    (temp2 / "backup" / "nightly.gz").write_bytes(gzip_named(sample_text(20_000, 10), "n"))  # path
    (temp2 / "x.bz2").write_bytes(SHA_TARGET)  # sha256
    (temp2 / "kept.gz").write_bytes(gzip_named(sample_text(20_000, 11), "k"))  # kept
    logs = root / "in" / "logs"
    logs.mkdir()
    py = r"C:\Users\bob\AppData\Local\Temp\p"
    events = [
        hb.image_load(1, "2026-11-20T10:00:00Z", VEEAM, VEEAM.rsplit("\\", 1)[0] + r"\zlib1.dll", 700),  # process
        hb.image_load(2, "2026-11-20T10:00:05Z", py + r"\python.exe", py + r"\zlib1.dll", 701),  # kept
    ]
    (logs / "sysmon.xml").write_text(hb.events_xml(events))
    return root


def scan(case: Path, tmp: Path, *extra: str) -> tuple[list[dict], Path]:
    tmp.mkdir(exist_ok=True)
    out, db = tmp / "f.jsonl", tmp / "sw.db"
    args = ["-q", "scan", str(case / "in"), "--db", str(db), "--jsonl", str(out), "--home-net", "10.0.0.0/8"]
    assert cli_main([*args, "--host-from-path", "/staged/([^/]+)/", *extra]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()], db


def label(r: dict) -> str:
    """A result named by what makes it unique in the case."""
    if "process" in r:
        return "proc:" + r["process"]["executable"].rsplit("\\", 1)[-1]
    if "source" in r and "ip" in r["source"]:
        return "net:" + r["source"]["ip"]
    return "file:" + r["file"]["path"].split("/staged/", 1)[1]


ENTRIES = """
suppress:
  - {name: by-source, reason: lab box, author: ana, source: 10.0.0.5/32}
  - {name: by-destination, reason: partner sftp, author: ana, destination: [203.0.113.0/24]}
  - {name: by-domain, reason: backups, author: ana, domain: "backup.example.com"}
  - {name: by-sni, reason: updater cdn, author: ana, domain: "*.FastUpdates.net"}
  - {name: by-tld, reason: mirror downloads, author: ana, domain: "*.net", format: bzip2}
  - {name: by-url, reason: sync api, author: ana, url: "/api/v2/*"}
  - {name: by-format, reason: xz telemetry, author: ana, format: xz}
  - {name: by-rule, reason: zip ok here, author: ana, rule: "zip_*", source: 10.0.0.11}
  - {name: by-host, reason: ws-01 is the build box, author: bo, host: ws-01}
  - {name: by-path, reason: nightly job, author: bo, path: "*/Temp/backup/*"}
  - {name: by-sha256, reason: known file, author: bo, sha256: %s}
  - {name: by-process, reason: backup agent, author: bo, process: "*\\\\veeam\\\\*"}
  - name: expired
    reason: was a migration
    author: bo
    expires: 2020-01-31
    source: 10.0.0.12
"""


def test_each_suppression_key_keeps_the_result_as_an_event_naming_the_entry(case, tmp_path, capsys):
    tuning = tmp_path / "tuning.yaml"
    tuning.write_text(ENTRIES % hashlib.sha256(SHA_TARGET).hexdigest())
    plain, _ = scan(case, tmp_path / "plain")
    tuned, db = scan(case, tmp_path, "--suppress", str(tuning))
    assert sorted(r["event"]["id"] for r in tuned) == sorted(r["event"]["id"] for r in plain)  # nothing dropped
    by = {label(r): r for r in tuned}
    expected = {
        "net:10.0.0.5": "by-source",
        "net:10.0.0.6": "by-destination",
        "net:10.0.0.7": "by-domain",
        "net:10.0.0.9": "by-sni",
        "net:10.0.0.8": "by-url",
        "net:10.0.0.10": "by-format",
        "net:10.0.0.11": "by-rule",
        "net:10.0.0.15": "by-tld",
        "file:WS-01/Users/bob/AppData/Local/Temp/report.dat": "by-host",
        "file:WS-02/Users/amy/AppData/Local/Temp/backup/nightly.gz": "by-path",
        "file:WS-02/Users/amy/AppData/Local/Temp/x.bz2": "by-sha256",
        "proc:Veeam.Endpoint.Service.exe": "by-process",
    }
    got = {k: r["stagewatch"].get("suppressed", {}).get("name") for k, r in by.items()}
    assert {k: v for k, v in got.items() if v} == expected
    kept = ("net:10.0.0.12", "net:10.0.0.13", "net:10.0.0.14", "net:10.0.0.16",
            "file:WS-02/Users/amy/AppData/Local/Temp/kept.gz", "proc:python.exe")  # fmt: skip
    for key in kept:
        assert got[key] is None  # bystanders, look-alikes and the expired entry's target are untouched
    assert by["net:10.0.0.12"]["event"]["kind"] == "alert"
    for key in expected:
        assert by[key]["event"]["kind"] == "event"
    assert by["net:10.0.0.5"]["stagewatch"]["suppressed"] == {"name": "by-source", "reason": "lab box",
                                                             "author": "ana"}  # fmt: skip
    assert by["net:10.0.0.9"]["tls"]["client"]["server_name"] == "cdn.fastupdates.net"
    with sqlite3.connect(db) as conn:
        stored = {r[0]: (r[1], json.loads(r[2])) for r in conn.execute("SELECT event_id, kind, record FROM findings")}
        (stats,) = conn.execute("SELECT stats FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        hosts = [json.loads(r[0]) for r in conn.execute("SELECT record FROM host_findings")]
    for key, name in expected.items():
        if key.startswith("proc:"):
            continue
        kind, record = stored[by[key]["event"]["id"]]
        assert kind == "event" and record["stagewatch"]["suppressed"]["name"] == name
    assert [h["stagewatch"]["suppressed"]["name"] for h in hosts if "suppressed" in h["stagewatch"]] == ["by-process"]
    counts = json.loads(stats)["tuning"]
    assert counts["expired:expired"] == 1  # reported at start (a warning line) and in the run's statistics
    assert {k: v for k, v in counts.items() if k.startswith("suppressed:")} == {f"suppressed:{n}": 1 for n in
                                                                                 expected.values()}  # fmt: skip


def test_an_entry_past_its_expiry_stops_matching(case, tmp_path, capsys):
    tuning = tmp_path / "t.yaml"
    old = "  - {name: old, reason: r, author: a, source: 10.0.0.5, expires: 2020-01-01}\n"
    live = "  - {name: live, reason: r, author: a, source: 10.0.0.6, expires: '2999-01-01T00:00:00'}\n"
    tuning.write_text("suppress:\n" + old + live)
    by = {label(r): r for r in scan(case, tmp_path, "--suppress", str(tuning))[0]}
    empty = tmp_path / "none"
    empty.mkdir()
    assert cli_main(["scan", str(empty), "--no-db", "--suppress", str(tuning)]) == 1  # not quiet: warnings shown
    err = capsys.readouterr().err
    assert f"{tuning}:2: suppression entry 'old' expired 2020-01-01; it no longer matches" in err
    assert "suppressed" not in by["net:10.0.0.5"]["stagewatch"] and by["net:10.0.0.5"]["event"]["kind"] == "alert"
    assert by["net:10.0.0.6"]["stagewatch"]["suppressed"]["name"] == "live"


def repeats(folder: Path) -> Path:
    """Five uploads from one host to one destination within 4 minutes, a sixth 20 minutes later, one elsewhere."""
    folder.mkdir(parents=True)
    pkts = []
    for i, minute in enumerate((0, 1, 2, 3, 4, 24)):
        member = zlib_member(sample_text(5000, 40 + i) + random_bytes(64, i))
        pkts += conv("10.0.0.5", 41000 + i, "198.51.100.9", 9000, T + 60 * minute, ("c2s", member))
    pkts += conv("10.0.0.5", 42000, "198.51.100.77", 9000, T + 30, ("c2s", zlib_member(sample_text(5000, 99))))
    write_pcap(folder / "rep.pcap", sorted(pkts, key=lambda p: float(p.time)))
    return folder


def test_a_threshold_folds_repeats_into_the_first_alert_with_a_count(tmp_path):
    cap = repeats(tmp_path / "in")
    tuning = tmp_path / "t.yaml"
    tuning.write_text("thresholds:\n  - {name: repeat-upload, window: 10m}\n")
    out, db = tmp_path / "f.jsonl", tmp_path / "sw.db"
    args = ["-q", "scan", str(cap), "--db", str(db), "--jsonl", str(out), "--home-net", "10.0.0.0/8"]
    assert cli_main([*args, "--suppress", str(tuning)]) == 0
    rows = sorted((json.loads(line) for line in out.read_text().splitlines()), key=lambda r: r["@timestamp"])
    to9 = [r for r in rows if r["destination"]["ip"] == "198.51.100.9"]
    assert [r["event"]["kind"] for r in to9] == ["alert", "event", "event", "event", "event", "alert"]
    first = to9[0]["event"]["id"]
    assert [r["stagewatch"]["threshold"]["count"] for r in to9[1:5]] == [2, 3, 4, 5]
    assert {r["stagewatch"]["threshold"]["first"] for r in to9[1:5]} == {first}
    assert "threshold" not in to9[5]["stagewatch"]  # after the window: a new alert
    other = [r for r in rows if r["destination"]["ip"] == "198.51.100.77"]
    assert [r["event"]["kind"] for r in other] == ["alert"]  # another destination is another key
    with sqlite3.connect(db) as conn:
        query = "SELECT event_id, record FROM findings WHERE kind='alert'"
        alerts = {r[0]: json.loads(r[1]) for r in conn.execute(query)}
        assert conn.execute("SELECT count(*) FROM findings").fetchone()[0] == 7  # every repeat stored
        (stats,) = conn.execute("SELECT stats FROM runs").fetchone()
    assert len(alerts) == 3 and alerts[first]["stagewatch"]["threshold"] == {"name": "repeat-upload", "count": 5}
    assert json.loads(stats)["tuning"]["threshold:repeat-upload"] == 4
    assert json.loads(stats)["alerts"] == 3


def staged_alerts(folder: Path) -> Path:
    """One host's Temp folder: two plain gzip files, a gzip hidden in a .dat, a tar.gz holding id_rsa; one mtime."""
    temp = folder / "Users" / "bob" / "AppData" / "Local" / "Temp"
    temp.mkdir(parents=True)
    (temp / "a.gz").write_bytes(gzip_named(sample_text(20_000, 60), "a"))  # 70: staging_path
    (temp / "b.gz").write_bytes(gzip_named(sample_text(20_000, 61), "b"))  # 70: staging_path
    (temp / "c.dat").write_bytes(gzip_named(sample_text(20_000, 62), "c"))  # 80: and extension_mismatch
    keys = tar_archive({"root/.ssh/id_rsa": sample_text(3000, 63), "etc/hosts": sample_text(3000, 64)}, "gz")
    (temp / "keys.tar.gz").write_bytes(keys)  # 90: and sensitive_name
    for f in temp.iterdir():
        os.utime(f, (T, T))
    return folder


@pytest.mark.parametrize(
    ("track", "folded"),
    [
        (None, set()),  # default [host, rule, destination]: a staged file has no destination
        ("[host, rule, source]", set()),
        ("[host, domain]", set()),
        ("[host, rule]", {"a.gz", "b.gz"}),  # the two at one severity with the same reasons fold; never the others
        ("[host]", {"a.gz", "b.gz"}),
    ],
)
def test_a_threshold_folds_staged_files_only_by_what_they_have_and_at_one_severity(tmp_path, track, folded):
    staged = staged_alerts(tmp_path / "in")
    tuning = tmp_path / "t.yaml"
    tuning.write_text("thresholds:\n  - {name: t, window: 10m" + (f", track: {track}" if track else "") + "}\n")
    out = tmp_path / "f.jsonl"
    args = ["-q", "scan", str(staged), "--no-db", "--jsonl", str(out), "--host", "WS-01", "--suppress", str(tuning)]
    assert cli_main(args) == 0
    rows = {r["file"]["name"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert {n: r["event"]["severity"] for n, r in rows.items()} == {"a.gz": 70, "b.gz": 70, "c.dat": 80,
                                                                    "keys.tar.gz": 90}  # fmt: skip
    events = {n for n, r in rows.items() if r["event"]["kind"] == "event"}
    assert len(events) == (1 if folded else 0) and events <= folded  # one of the pair folds into the other
    for n in events:
        (first,) = (m for m in folded if m != n)
        assert rows[n]["stagewatch"]["threshold"]["first"] == rows[first]["event"]["id"]


def test_a_threshold_never_folds_alerts_of_another_severity_or_other_reasons(tmp_path):
    """Three zips from one host to one place within the window: the one holding etc/passwd is its own alert."""
    cap = tmp_path / "in"
    cap.mkdir()
    members = [zip_archive({"a.txt": sample_text(5000, 70)}), zip_archive({"etc/passwd": sample_text(5000, 71)}),
               zip_archive({"b.txt": sample_text(5000, 72)})]  # fmt: skip
    pkts = []
    for i, member in enumerate(members):
        pkts += conv("10.0.0.5", 43000 + i, "198.51.100.9", 9000, T + 60 * i, ("c2s", member))
    write_pcap(cap / "z.pcap", pkts)
    tuning = tmp_path / "t.yaml"
    tuning.write_text("thresholds:\n  - {name: t, window: 10m}\n")
    out = tmp_path / "f.jsonl"
    args = ["-q", "scan", str(cap), "--no-db", "--jsonl", str(out), "--home-net", "10.0.0.0/8"]
    assert cli_main([*args, "--suppress", str(tuning)]) == 0
    rows = sorted(map(json.loads, out.read_text().splitlines()), key=lambda r: r["@timestamp"])
    assert [r["rule"]["name"] for r in rows] == ["zip_local"] * 3
    assert [r["event"]["kind"] for r in rows] == ["alert", "alert", "event"]
    assert "sensitive_name" in rows[1]["stagewatch"]["reasons"] and "threshold" not in rows[1]["stagewatch"]
    fold = rows[2]["stagewatch"]["threshold"]
    assert (fold["name"], fold["first"], fold["count"]) == ("t", rows[0]["event"]["id"], 2)


def test_a_threshold_key_names_severity_reasons_and_only_values_the_result_has():
    t = Threshold("t", "r", 600.0, ("host", "rule", "destination"), Matcher(), "t:1")
    net = Facts(src="10.0.0.5", dst="198.51.100.9", rules=("zlib_stream",), connection=True, severity=70,
                reasons=("outbound",))  # fmt: skip
    assert t.key(net) == (70, ("outbound",), ("10.0.0.5", "zlib_stream", "198.51.100.9"))
    assert t.key(replace(net, severity=85, reasons=("outbound", "encrypted"))) != t.key(net)
    # one severity, other reasons: encrypted (+15) against encoded and a hidden extension (+5 +10)
    enc = replace(net, severity=85, reasons=("outbound", "encrypted"))
    assert t.key(enc) != t.key(replace(enc, reasons=("outbound", "encoded", "extension_mismatch")))
    staged = Facts(host="ws-01", path="/tmp/a.gz", rules=("gzip_member",), severity=70, reasons=("staging_path",))
    assert t.key(staged) is None  # no destination: this threshold is not the staged file's
    host_event = Facts(src="10.0.0.5", host="ws-01", rules=("r",), severity=50)  # its own address, no connection
    assert Threshold("s", "r", 600.0, ("source",), Matcher(), "t:2").key(host_event) is None
    assert Threshold("d", "r", 600.0, ("host", "domain"), Matcher(), "t:3").key(net) is None  # no Host, SNI, rcpt


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("suppress:\n  - {name: a, reason: r, author: x}\n", ":2: an entry needs at least one match key"),
        ("suppress:\n  - {name: a, reason: r, author: x, sorce: 10.0.0.1}\n", ":2: unknown keys: sorce"),
        ("suppress:\n  - {name: a, author: x, source: 10.0.0.1}\n", ":2: `reason` is required"),
        ("suppress:\n\n  - {name: a, reason: r, author: x, source: 10.0.0.300}\n", ":3: not an address or CIDR"),
        ("suppress:\n  - {name: a, reason: r, author: x, sha256: abc}\n", ":2: sha256: expected 64 hex digits"),
        ("suppress:\n  - {name: a, reason: r, author: x, url: /x, expires: soon}\n", ":2: expires: 'soon'"),
        ("thresholds:\n  - {name: t, window: forever}\n", ":2: window: 'forever' is not a span like 30d"),
        ("thresholds:\n  - {name: t, window: 1m, track: [colour]}\n", ":2: track: colour"),
        ("suppress: [\n", ":2: invalid YAML"),
    ],
)
def test_a_bad_tuning_file_is_one_line_naming_file_and_line(tmp_path, capsys, text, message):
    tuning = tmp_path / "t.yaml"
    tuning.write_text(text)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli_main(["-q", "scan", str(empty), "--no-db", "--suppress", str(tuning)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"{tuning}{message}" in line


# -- content rules -------------------------------------------------------------------------------------------

SSN_RULE = """
rule ssn_like
{
    meta:
        description = "a US social security number pattern"
    strings:
        $ssn = /\\b[0-9]{3}-[0-9]{2}-[0-9]{4}\\b/
    condition:
        $ssn
}
"""


def test_a_user_content_rule_fires_on_the_plaintext_of_a_gzip_member(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "pii.yar").write_text(SSN_RULE)
    text = sample_text(20_000, 2)
    people = text[:9000] + b" employee 4471 ssn 078-05-1120 on file " + text[9000:]  # one SSN in 20 kB
    assert b"078-05-1120" not in text
    cap = tmp_path / "in"
    cap.mkdir()
    pkts = conv("10.0.0.5", 40001, "198.51.100.9", 9000, T, ("c2s", gzip_named(people, "hr.csv")))
    pkts += conv("10.0.0.6", 40002, "198.51.100.9", 9000, T + 1, ("c2s", gzip_named(text, "x")))
    write_pcap(cap / "c.pcap", pkts)
    out = tmp_path / "f.jsonl"
    args = ["-q", "scan", str(cap), "--no-db", "--jsonl", str(out), "--home-net", "10.0.0.0/8"]
    assert cli_main([*args, "--rules", str(rules)]) == 0
    by = {r["source"]["ip"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert by["10.0.0.5"]["stagewatch"]["inner"]["rules"] == ["ssn_like"]
    assert "content_rule" in by["10.0.0.5"]["stagewatch"]["reasons"]
    assert "rules" not in by["10.0.0.6"]["stagewatch"].get("inner", {})
    plain = tmp_path / "plain.jsonl"
    assert cli_main([*args[:-2], "--jsonl", str(plain)]) == 0
    before = {r["source"]["ip"]: r for r in map(json.loads, plain.read_text().splitlines())}
    assert by["10.0.0.5"]["event"]["severity"] > before["10.0.0.5"]["event"]["severity"]  # the rule raised it
    assert by["10.0.0.6"]["event"]["severity"] == before["10.0.0.6"]["event"]["severity"]


def test_the_shipped_dlp_examples_compile_and_find_a_private_key(tmp_path):
    shipped = Path(__file__).resolve().parents[1] / "signatures" / "dlp"
    key = b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA" + b"A" * 64 + b"\n-----END RSA PRIVATE KEY-----\n"
    cap = tmp_path / "in"
    cap.mkdir()
    write_pcap(cap / "c.pcap", conv("10.0.0.5", 40001, "198.51.100.9", 9000, T, ("c2s", gzip_named(key * 30, "k"))))
    out = tmp_path / "f.jsonl"
    args = ["-q", "scan", str(cap), "--no-db", "--jsonl", str(out), "--home-net", "10.0.0.0/8"]
    assert cli_main([*args, "--rules", str(shipped)]) == 0
    (r,) = map(json.loads, out.read_text().splitlines())
    assert "private_key_pem" in r["stagewatch"]["inner"]["rules"]


def test_user_detection_and_sigma_rules_run_beside_the_bundled_ones(case, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "veeam.yml").write_text(
        "title: Veeam agent loads zlib\nid: 5f0c3a2e-8d7b-4b8a-9f5e-2f6d1c0b9a11\nstatus: experimental\n"
        "logsource: {product: windows, category: image_load}\n"
        "detection:\n  sel:\n    Image|endswith: '\\Veeam.Endpoint.Service.exe'\n  condition: sel\nlevel: low\n"
    )
    out = tmp_path / "f.jsonl"
    args = ["-q", "scan", str(case / "in" / "logs"), "--no-db", "--jsonl", str(out), "--rules", str(rules)]
    assert cli_main(args) == 0
    titles = [r["rule"]["name"] for r in map(json.loads, out.read_text().splitlines())]
    assert "Veeam agent loads zlib" in titles and len(titles) > 1  # the bundled rule still runs


BROKEN_DETECTION = 'rule d {\n meta:\n  role = "candidate"\n  format = "gzip"\n strings:\n'
BROKEN_DETECTION += "  $a = { 1f 8b\n condition: $a }\n"
MIXED = 'rule d { meta: role = "hint" condition: true }\nrule c { condition: true }\n'
BROKEN_SIGMA = "title: x\nlogsource: {product: windows}\ndetection:\n  sel:\n    Image|nosuchmod: a\n  condition: sel\n"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.yar", "rule a {\n condition: nosuch\n}\n", "bad.yar:2:"),
        ("det.yar", BROKEN_DETECTION, "det.yar:7:"),
        ("mixed.yar", MIXED, "mixes detection"),
        ("bad.yml", BROKEN_SIGMA, "bad.yml:5: Sigma rule: Unknown modifier 'nosuchmod'"),
        ("yaml.yml", BROKEN_SIGMA.replace("Image|nosuchmod: a", "Image: [a"), "yaml.yml:6: Sigma rule: invalid YAML"),
    ],
)  # fmt: skip
def test_a_broken_user_rule_stops_the_scan_at_start_naming_file_and_line(tmp_path, capsys, name, text, message):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / name).write_text(text)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli_main(["-q", "scan", str(empty), "--no-db", "--rules", str(rules)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert message in line


def test_the_shipped_example_tuning_file_loads():
    from sensor.tuning.tuner import Tuner

    example = Path(__file__).resolve().parents[1] / "signatures" / "suppress.example.yaml"
    tuner = Tuner.load(example, clock=lambda: 1_790_000_000.0)  # 2026-09: before every expiry in the file
    assert [e.name for e in tuner.entries][:2] == ["veeam-backups-to-s3", "package-mirror-sync"]
    assert [f.t.name for f in tuner.folders] == ["repeated-uploads"] and tuner.folders[0].t.window == 600
