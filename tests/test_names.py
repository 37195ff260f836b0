"""Names as bytes (sensor/names.py): a file name, an archive entry or a wire name chosen by the attacker is
kept exactly and never hides what was found. Text fields hold valid UTF-8 (U+FFFD where bytes do not decode,
and for NUL); `<field>_bytes` holds the exact bytes in hex whenever they differ. Checked through the real
CLI into JSON lines, the SQLite store (and PostgreSQL, which refuses NUL in text), syslog (LEEF and JSON over a
real UDP socket), the report and `explain`."""

from __future__ import annotations

import gzip
import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from sensor import names
from tests import appbuild as ab
from tests.netbuild import segments, write_pcap

STAGED = "Users/bob/AppData/Local/Temp"
ALL_DISK = bytes(b for b in range(1, 256) if b != 0x2F)  # every byte a Linux file name may hold, but '/'


def _member() -> bytes:
    return gzip.compress(os.urandom(3000) + b"quarterly numbers " * 400)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sensor", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_text_and_exact_bytes_round_trip():
    for raw in (b"plain.gz", "r\u00e9sum\u00e9.gz".encode(), b"r\xe9sum\xff.gz", ALL_DISK, bytes(range(256))):
        name = names.from_bytes(raw)
        assert names.to_bytes(name) == raw
        shown = names.text(name)
        shown.encode("utf-8")  # valid text, always
        assert "\x00" not in shown
        assert (names.exact_hex(name) is None) == (shown.encode("utf-8") == raw)
        if names.exact_hex(name) is not None:
            assert bytes.fromhex(names.exact_hex(name)) == raw
    assert names.text(names.from_bytes(b"a\xffb")) == "a\ufffdb"
    assert names.text("lone \ud800 surrogate") == "lone \ufffd\ufffd\ufffd surrogate"  # unpaired UTF-16, from a log


def test_stable_ids_do_not_change_for_text_and_differ_for_bytes():
    ns = uuid.UUID("6f2b1d0e-8c1a-5e4b-9a77-3c5d2f1e0b42")
    assert names.stable_id(ns, "a|b\x00c") == str(uuid.uuid5(ns, "a|b\x00c"))
    ids = {names.stable_id(ns, names.from_bytes(raw)) for raw in (b"r\xe9", b"r\xc3\xa9", b"r\xff", b"r?")}
    assert len(ids) == 4


def test_clean_record_adds_bytes_beside_what_was_not_text():
    rec = {
        "file": {"name": names.from_bytes(b"x\xff"), "size": 3},
        "inner": {"names": ["ok", names.from_bytes(b"\x00")]},
    }
    names.clean_record(rec)
    assert rec == {
        "file": {"name": "x\ufffd", "size": 3, "name_bytes": "78ff"},
        "inner": {"names": ["ok", "\ufffd"], "names_bytes": [None, "00"]},
    }


def _udp_listener() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    return sock, sock.getsockname()[1]


@pytest.mark.parametrize("raw", [b"r\xe9sum\xff.gz", ALL_DISK[:200] + b".gz", ALL_DISK[200:] + b".gz"])
def test_a_staged_file_whose_name_is_not_text_is_found_and_kept_exactly(tmp_path, raw):
    """The bug this fixes: the finding was made, then lost with UnicodeEncodeError (in neither JSON lines nor
    the store)."""
    folder = tmp_path / "tree" / STAGED
    folder.mkdir(parents=True)
    path = os.fsencode(folder) + b"/" + raw
    with open(path, "wb") as f:
        f.write(_member())
    db, out = tmp_path / "s.db", tmp_path / "o.jsonl"
    sock, port = _udp_listener()
    with sock:
        done = _cli(
            "scan", "--db", str(db), "--jsonl", str(out), "--syslog", f"udp://127.0.0.1:{port}",
            "--syslog-format", "leef", str(tmp_path / "tree"), cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "internal error" not in done.stderr
        leef = sock.recv(65536)
    (rec,) = _lines(out)
    assert rec["event"]["kind"] == "alert"
    assert bytes.fromhex(rec["file"]["name_bytes"]) == raw
    assert bytes.fromhex(rec["file"]["path_bytes"]) == path
    assert rec["file"]["name"] == raw.decode("utf-8", "replace").replace("\x00", "\ufffd")
    leef.decode("utf-8")  # a SIEM gets valid UTF-8
    with sqlite3.connect(db) as conn:
        (stored, record) = conn.execute("select path, record from findings").fetchone()
    assert stored == names.text(os.fsdecode(path))
    assert json.loads(record) == rec
    shown = _cli("explain", "--db", str(db), rec["event"]["id"][:12], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "\ufffd" in shown.stdout
    report = _cli("report", "--db", str(db), "--output", str(tmp_path / "r.html"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    (tmp_path / "r.html").read_text("utf-8")


def _zip_named(entry: bytes, data: bytes) -> bytes:
    """A zip whose one entry's name is `entry` exactly (zipfile would re-encode a str name)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("PLACEHOLDER", data)
    out = buf.getvalue()
    return out.replace(b"PLACEHOLDER", entry[:11].ljust(11, b"_")) if len(entry) <= 11 else _long_name(out, entry)


def _long_name(out: bytes, entry: bytes) -> bytes:
    """Rewrite the one entry's name in both headers (local and central), fixing lengths and offsets."""
    lh = out.index(b"PK\x03\x04")
    cd = out.index(b"PK\x01\x02")
    eocd = out.index(b"PK\x05\x06")
    old = len(b"PLACEHOLDER")
    local = out[lh:cd]
    local = local[:26] + len(entry).to_bytes(2, "little") + local[28:30] + entry + local[30 + old :]
    central = out[cd:eocd]
    central = central[:28] + len(entry).to_bytes(2, "little") + central[30:46] + entry + central[46 + old :]
    end = out[eocd:]
    end = end[:12] + len(central).to_bytes(4, "little") + len(local).to_bytes(4, "little") + end[20:]
    return local + central + end


WIRE_NAME = bytes(b for b in range(256) if b not in b'\r\n"%/\\;')  # what a quoted header parameter can carry


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_wire_and_archive_names_of_every_byte_reach_every_output(tmp_path, store, request):
    """A multipart upload whose file name holds bytes 0x00-0xff (but the few that end a quoted parameter),
    carrying a zip whose entry name holds all 256 byte values: both names exact in JSON lines and the store."""
    entry = bytes(range(256))
    archive = _zip_named(entry, b"numbers " * 2000)
    ctype, body = ab.multipart([ab.Part("file", archive, filename="PLACEHOLDER")])
    body = body.replace(b'filename="PLACEHOLDER"', b'filename="' + WIRE_NAME + b'"')
    request_bytes = ab.http_request("POST", "/upload", "files.example.net", body, headers=[("Content-Type", ctype)])
    conv = ab.http_conversation([(request_bytes, ab.http_response(200, b"ok"))], server="203.0.113.80")
    pcap = write_pcap(tmp_path / "up.pcap", segments(conv))
    out = tmp_path / "o.jsonl"
    if store == "postgresql":
        url = request.getfixturevalue("pg_url")
        db = [url]
    else:
        db = [str(tmp_path / "s.db")]
    done = _cli("scan", "--db", *db, "--jsonl", str(out), "--home-net", "10.0.0.0/8", str(pcap), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    recs = [r for r in _lines(out) if r["stagewatch"].get("format") == "zip"]
    assert recs, done.stderr
    rec = recs[0]
    assert bytes.fromhex(rec["file"]["name_bytes"]) == WIRE_NAME
    inner = rec["stagewatch"]["inner"]
    assert [bytes.fromhex(h) for h in inner["names_bytes"]] == [entry]
    assert inner["names"] == [names.text(names.from_bytes(entry))]
    found = _cli("findings", "--db", *db, "--jsonl", "-", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert any(json.loads(line)["event"]["id"] == rec["event"]["id"] for line in found.stdout.splitlines())


def test_names_in_a_host_log_are_kept_exactly(tmp_path):
    """auditd prints a name holding a byte outside printable ASCII in hex; that name reaches the host finding
    as text with U+FFFD and `_bytes` with the exact bytes, like a name read from disk (not as `\\xe9` text that
    matches no file)."""
    raw = b"/tmp/r\xe9sum\xff.gz"
    argv = [b"python3", b"-c", b"import gzip; open('" + raw + b"','wb').write(gzip.compress(b'x'))"]

    def head(kind: str, serial: int) -> str:
        return f"type={kind} msg=audit(1700000000.{serial:03d}:{serial}): "

    syscall = 'arch=c000003e success=yes ppid=1 pid=100 uid=0 comm="python3" exe="/usr/bin/python3.11"'
    log = tmp_path / "audit.log"
    log.write_text(
        "\n".join(
            [
                head("SYSCALL", 1) + "syscall=59 exit=0 " + syscall,
                head("EXECVE", 1) + "argc=3 " + " ".join(f"a{i}={a.hex().upper()}" for i, a in enumerate(argv)),
                head("SYSCALL", 2) + "syscall=257 exit=3 " + syscall,
                head("PATH", 2) + f"item=0 name={raw.hex().upper()} nametype=CREATE",
            ]
        )
        + "\n"
    )
    db, out = tmp_path / "s.db", tmp_path / "o.jsonl"
    done = _cli("scan", str(log), "--db", str(db), "--jsonl", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    recs = _lines(out)
    (made,) = [r for r in recs if "file" in r]
    assert bytes.fromhex(made["file"]["path_bytes"]) == raw
    assert made["file"]["path"] == raw.decode("utf-8", "replace")
    (started,) = [r for r in recs if "command_line" in r["process"]]
    assert bytes.fromhex(started["process"]["command_line_bytes"]) == b" ".join(argv[:2]) + b' "' + argv[2] + b'"'
    with sqlite3.connect(db) as conn:
        paths = {p for (p,) in conn.execute("select target_file from host_events") if p}
    assert paths == {raw.decode("utf-8", "replace")}
