"""Staged trees through the real CLI: bad inputs, host names, the store, idempotent re-scans, exit codes."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sensor.cli import main
from tests import builders as b

TEXT = b.sample_text(40_000, seed=11)


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "case"
    temp = root / "WS-01" / "Users" / "bob" / "AppData" / "Local" / "Temp"
    put(temp / "report.dat", b.gzip_dotnet(TEXT))
    put(temp / "creds.zip", b.zip_archive({"passwd": b"root:x:0:0\n" * 40}))
    put(root / "srv" / "var" / "log" / "syslog.2.gz", b.gzip_plain(TEXT))
    put(root / "srv" / "home" / "u" / "notes.txt", TEXT)
    put(root / "srv" / "home" / "u" / "empty.txt", b"")
    os.mkfifo(root / "srv" / "home" / "u" / "pipe")
    os.symlink("/etc", root / "srv" / "home" / "u" / "etc-link")  # must not be followed out of the tree
    return root


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_scan_tree_findings_kinds_and_bad_inputs(tree, tmp_path, capsys):
    out = tmp_path / "f.jsonl"
    code, _, err = run_cli(
        ["scan", str(tree), str(tmp_path / "missing"), "--db", str(tmp_path / "s.db"), "--jsonl", str(out)], capsys
    )
    assert code == 1  # a missing input is an input error; everything else was scanned and written
    got = {Path(r["file"]["path"]).name: r for r in records(out)}
    assert set(got) == {"report.dat", "creds.zip", "syslog.2.gz"}
    assert got["report.dat"]["event"]["kind"] == "alert"
    assert got["report.dat"]["stagewatch"]["reasons"] == ["staging_path", "extension_mismatch"]
    assert got["report.dat"]["stagewatch"]["writer"] == ".NET Framework GZipStream"
    assert got["creds.zip"]["stagewatch"]["sensitive"] == ["passwd"]
    assert got["syslog.2.gz"]["event"]["kind"] == "event"
    assert got["syslog.2.gz"]["stagewatch"]["reasons"] == ["log_folder"]
    whole = (tree / "srv" / "var" / "log" / "syslog.2.gz").read_bytes()
    import hashlib

    assert got["syslog.2.gz"]["file"]["hash"]["sha256"] == hashlib.sha256(whole).hexdigest()
    # one line each for the bad inputs, and the scan went on
    lines = err.splitlines()
    assert any(line.endswith("empty.txt: empty file (0 bytes)") for line in lines)
    assert any(line.endswith("pipe: not a regular file (a fifo), skipped") for line in lines)
    assert any(line.endswith("missing: no such file or directory, skipped") for line in lines)
    assert not any("etc-link" in line and "passwd" in line for line in lines)
    # skipped by policy (an empty file, a fifo, a symlink), not an error: exit 0
    assert run_cli(["-q", "scan", str(tree), "--no-db", "--jsonl", str(tmp_path / "g.jsonl")], capsys)[0] == 0


def test_rescan_is_idempotent_and_findings_query(tree, tmp_path, capsys):
    db = tmp_path / "s.db"
    assert run_cli(["-q", "scan", str(tree), "--db", str(db)], capsys)[0] == 0
    assert run_cli(["-q", "scan", str(tree), "--db", str(db)], capsys)[0] == 0
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from findings").fetchone() == (3,)
    assert con.execute("select count(*) from runs").fetchone() == (2,)
    assert con.execute("pragma journal_mode").fetchone() == ("wal",)
    con.close()
    code, out, _ = run_cli(["findings", "--db", str(db), "--kind", "alert", "--jsonl", "-"], capsys)
    assert code == 0
    names = sorted(Path(json.loads(line)["file"]["path"]).name for line in out.splitlines())
    assert names == ["creds.zip", "report.dat"]
    # a file rewritten with new content is a new finding
    put(tree / "WS-01" / "Users" / "bob" / "AppData" / "Local" / "Temp" / "report.dat", b.gzip_dotnet(TEXT + b"x"))
    run_cli(["-q", "scan", str(tree), "--db", str(db)], capsys)
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from findings").fetchone() == (4,)
    con.close()


def test_host_from_path(tmp_path, capsys):
    root = tmp_path / "hosts"
    put(root / "WS-07" / "tmp" / "a.bin", b.bzip2_member(TEXT))
    put(root / "DB-02" / "var" / "tmp" / "b.bin", b.xz_member(TEXT))
    out = tmp_path / "f.jsonl"
    regex = r"/hosts/([^/]+)/"
    assert run_cli(["-q", "scan", str(root), "--no-db", "--host-from-path", regex, "--jsonl", str(out)], capsys)[0] == 0
    assert sorted(r["host"]["name"] for r in records(out)) == ["DB-02", "WS-07"]


def test_nothing_processed_exits_1_and_usage_exits_2(tmp_path, capsys):
    assert run_cli(["scan", str(tmp_path / "nope"), "--no-db"], capsys)[0] == 1
    with pytest.raises(SystemExit) as e:
        main(["scan"])
    assert e.value.code == 2
    code, _, err = run_cli(["findings", "--db", str(tmp_path / "x.db"), "--since", "yesterday"], capsys)
    assert code == 2 and "--since: cannot read 'yesterday'" in err


def test_device_file_is_skipped(tmp_path, capsys):
    code, _, err = run_cli(
        ["scan", "/dev/null", str(put(tmp_path / "tmp" / "a.gz", b.gzip_plain(TEXT))), "--no-db"], capsys
    )
    assert code == 0
    assert "/dev/null: not a regular file (a character device), skipped" in err


def test_store_that_is_not_a_database(tmp_path, capsys):
    bad = put(tmp_path / "junk.db", b"this is not sqlite" * 100)
    code, _, err = run_cli(["scan", str(tmp_path), "--db", str(bad)], capsys)
    assert code == 1 and "junk.db" in err and "not a database" in err


@pytest.mark.skipif(not shutil.which("setpriv"), reason="needs setpriv (util-linux) to drop privileges")
def test_unreadable_file_without_privileges(tmp_path):
    """The scan runs without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH, so mode 000 really is unreadable."""
    root = tmp_path / "perm"
    locked = put(root / "tmp" / "locked.gz", b.gzip_plain(TEXT))
    readable = put(root / "tmp" / "open.gz", b.gzip_plain(TEXT + b"!"))
    closed_dir = root / "tmp" / "closed"
    put(closed_dir / "x.gz", b.gzip_plain(TEXT))
    locked.chmod(0o000)
    closed_dir.chmod(0o000)
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    cmd = [*drop, sys.executable, "-m", "sensor", "scan", str(root), "--no-db", "--jsonl", "-"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[1], timeout=120)
    finally:
        closed_dir.chmod(0o755)
        locked.chmod(0o644)
    assert proc.returncode == 1, proc.stderr  # an input error: what could be read is written, the exit says so
    found = [json.loads(line)["file"]["path"] for line in proc.stdout.splitlines()]
    assert found == [str(readable)]
    assert f"{locked}: permission denied" in proc.stderr
    assert f"{closed_dir}: permission denied, skipped" in proc.stderr


@pytest.mark.parametrize(("sig", "status"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_an_interrupted_scan_keeps_what_was_found_and_says_so(tmp_path, sig, status):
    """A scan stopped by SIGTERM (or Ctrl-C) has written its findings, closed its run in the store as
    interrupted, and exits 143 (130): a script can tell it from a complete scan, which exits 0."""
    import signal
    import time

    root = tmp_path / "many"
    put(root / "tmp" / "0.gz", b.gzip_plain(TEXT))
    # files dense with zlib-like headers: each takes a while to verify, so the scan is still busy
    dense = b"".join(b"\x78\x9c" + bytes([c | 1]) for c in b.random_bytes(30_000, seed=1))
    for i in range(1, 300):
        put(root / "tmp" / f"{i:03d}.bin", dense)
    out, db = tmp_path / "f.jsonl", tmp_path / "s.db"
    cmd = [sys.executable, "-m", "sensor", "-q", "scan", str(root), "--db", str(db), "--jsonl", str(out)]
    proc = subprocess.Popen(cmd, cwd=Path(__file__).parents[1])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.exists() and out.read_text()):
        time.sleep(0.05)
    proc.send_signal(getattr(signal, sig))
    assert proc.wait(timeout=60) == status
    assert len(records(out)) == 1
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from findings").fetchone() == (1,)
    assert con.execute("select status from runs").fetchone() == ("interrupted",)
    con.close()


def test_workers_split_staged_files_and_find_the_same(tree, tmp_path, capsys):
    one, two = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    assert run_cli(["-q", "scan", str(tree), "--no-db", "--jsonl", str(one)], capsys)[0] == 0
    assert run_cli(["-q", "scan", str(tree), "--no-db", "--jsonl", str(two), "--workers", "2"], capsys)[0] == 0
    ids = [sorted(r["event"]["id"] for r in records(p)) for p in (one, two)]
    assert ids[0] == ids[1] and len(ids[0]) == 3


def test_a_capture_can_be_scanned_as_a_file(tmp_path, capsys):
    from tests.netbuild import Conv, segments, write_pcap

    member = b.gzip_plain(TEXT[:3000])  # small enough for one segment: the file has it in one piece
    assert len(member) < 1400
    pcap = write_pcap(tmp_path / "x.pcap", segments(Conv("10.0.0.1", 40000, "192.0.2.1", 80, [("c2s", member)])))
    out = tmp_path / "f.jsonl"
    assert run_cli(["-q", "scan", str(pcap), "--no-db", "--as", "file", "--jsonl", str(out)], capsys)[0] == 0
    (r,) = records(out)
    assert "network" not in r and r["file"]["path"] == str(pcap)
    assert r["stagewatch"]["format"] == "gzip" and r["file"]["size"] == len(member)


def test_observer_name_and_ip_on_every_record(tree, tmp_path, capsys):
    from sensor.config import local_addresses

    out, db = tmp_path / "f.jsonl", tmp_path / "s.db"
    args = ["-q", "scan", str(tree), "--db", str(db), "--jsonl", str(out), "--observer", "sensor-7"]
    assert run_cli([*args, "--observer-ip", "10.9.8.7, fd00::1"], capsys)[0] == 0
    got = records(out)
    assert got and all(r["observer"] == {"name": "sensor-7", "ip": ["10.9.8.7", "fd00::1"], "type": "sensor",
                                         "vendor": "stagewatch"} for r in got)  # fmt: skip
    with sqlite3.connect(db) as conn:
        stored = [json.loads(row[0]) for row in conn.execute("SELECT record FROM findings")]
    assert stored and all(r["observer"]["ip"] == ["10.9.8.7", "fd00::1"] for r in stored)
    code, _, err = run_cli([*args, "--observer-ip", "10.9.8.300"], capsys)
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.endswith(  # a bad flag value is a usage error
        "--observer-ip: observer_ip: '10.9.8.300' does not appear to be an IPv4 or IPv6 address"
    )
    cfg = tmp_path / "sw.toml"
    cfg.write_text('observer_ip = ["not-an-ip"]\n')
    code, _, err = run_cli([*args, "--config", str(cfg)], capsys)
    assert code == 1 and f"{cfg}: observer_ip:" in err
    cfg.write_text('observer_ip = ["192.0.2.10"]\n')
    assert run_cli([*args, "--config", str(cfg)], capsys)[0] == 0
    assert records(out)[-1]["observer"]["ip"] == ["192.0.2.10"]
    for ip in local_addresses():  # the default: this machine's source addresses, none in an isolated namespace
        ipaddress.ip_address(ip)


@pytest.mark.parametrize(
    "line,why",
    [
        ('chunk_size = "64k"', "chunk_size = '64k': must be a whole number, 0 or more"),
        ("max_flows = -5", "max_flows = -5: must be a whole number, 0 or more"),
        ("stream_depth = 1.5", "stream_depth = 1.5: must be a whole number, 0 or more"),
        ("chunk_delay = true", "chunk_delay = True: must be a number of seconds, 0 or more"),
    ],
)
def test_a_bad_limit_in_the_config_is_one_line_naming_file_key_and_value(tree, tmp_path, capsys, line, why):
    """The compiled core takes limits as C numbers: a wrong kind of value is refused before any input is read."""
    cfg = tmp_path / "sw.toml"
    cfg.write_text(f"[limits]\n{line}\n")
    code, _, err = run_cli(["-q", "scan", str(tree), "--no-db", "--config", str(cfg)], capsys)
    assert code == 1 and err.strip().splitlines()[-1].endswith(f"{cfg}: [limits] {why}"), err
    cfg.write_text("[limits]\nchunk_size = 4096\nchunk_delay = 0.5\n")
    assert run_cli(["-q", "scan", str(tree), "--no-db", "--config", str(cfg)], capsys)[0] == 0
