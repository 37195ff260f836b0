"""Overload and faults, made real (issue "Hostile input"): a scan SIGKILLed while it writes, a store on a full
file system, a tree of 100,000 files and 1,000 nested folders changing under the scan, a zip of 100,000
entries and a zip bomb whose entries overlap. Each ends with what an analyst needs: a store that opens, a
one-line error, the findings, the limit counted."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from sensor.store.db import FindingStore
from tests.conftest import need
from tests.zipquine import zip_quine

ROOT = Path(__file__).resolve().parents[1]
STAGED = "Users/bob/AppData/Local/Temp"


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sensor", *args], capture_output=True, text=True, timeout=timeout)


def _member(i: int) -> bytes:
    return gzip.compress(random.Random(i).randbytes(800) + b"account %d\n" % i * 200)


def test_a_scan_killed_while_writing_leaves_a_store_that_opens_and_a_rerun_completes_it(tmp_path):
    root = tmp_path / "tree" / STAGED
    root.mkdir(parents=True)
    # members between files dense with zlib-like headers, each a while to verify: the kill lands mid-scan
    dense = b"".join(b"\x78\x9c" + bytes([c | 1]) for c in random.Random(0).randbytes(30_000))
    for i in range(60):
        (root / f"m{i:03d}.gz").write_bytes(_member(i))
        (root / f"n{i:03d}.bin").write_bytes(dense)
    db, out = tmp_path / "s.db", tmp_path / "o.jsonl"
    cmd = [sys.executable, "-m", "sensor", "-q", "scan", str(tmp_path / "tree"), "--db", str(db), "--jsonl", str(out)]
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and len(out.read_bytes().splitlines()) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with FindingStore(str(db)) as store:  # SQLite's journal recovers whatever was half-written
        before = store.count()
    assert before < 60
    again = _cli("-q", "scan", str(tmp_path / "tree"), "--db", str(db), "--jsonl", str(tmp_path / "o2.jsonl"))
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("select event_id from findings")]
    assert len(ids) == len(set(ids)) == 60  # complete, each finding once (event.id is deterministic)


def test_a_store_on_a_full_file_system_is_a_one_line_error_and_the_json_lines_stay_whole(tmp_path):
    need(None if os.geteuid() == 0 else "mounting a small tmpfs needs root")
    full = tmp_path / "full"
    full.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(full)], capture_output=True)
    need(None if mounted.returncode == 0 else f"cannot mount tmpfs: {mounted.stderr.decode().strip()}")
    try:
        root = tmp_path / "tree" / STAGED
        root.mkdir(parents=True)
        for i in range(400):
            (root / f"m{i:03d}.gz").write_bytes(_member(i))
        (full / "ballast").write_bytes(b"\0" * (300 << 10))  # what else filled the disk
        out = tmp_path / "o.jsonl"
        done = _cli("-q", "scan", str(tmp_path / "tree"), "--db", str(full / "s.db"), "--jsonl", str(out))
        assert done.returncode == 1, done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        assert len(errors) == 1 and str(full / "s.db") in errors[0], done.stderr
        assert "Traceback" not in done.stderr
        lines = out.read_text().splitlines()
        assert lines and all(json.loads(line)["event"]["kind"] for line in lines)  # every line whole
    finally:
        subprocess.run(["umount", "-l", str(full)], check=False)


def test_a_hundred_thousand_files_and_a_thousand_nested_folders_changing_during_the_scan(tmp_path):
    root = tmp_path / "tree"
    for d in range(100):
        folder = root / f"d{d:02d}"
        folder.mkdir(parents=True)
        for i in range(1000):
            (folder / f"f{i:03d}.txt").write_bytes(b"line %d\n" % i)
    deep = str(root)
    for _ in range(1000):  # level by level: pathlib's and os.makedirs' recursion stops short of 1,000
        deep += "/a"
        os.mkdir(deep)
    with open(deep + "/stage.gz", "wb") as f:
        f.write(_member(1))
    staged = root / STAGED
    staged.mkdir(parents=True)
    (staged / "rows.gz").write_bytes(_member(2))
    growing = staged / "growing.log"
    growing.write_bytes(b"start\n")
    stop = threading.Event()

    def churn() -> None:  # an active host: files deleted and appended to while the walk goes on
        k = 0
        while not stop.is_set():
            victim = root / f"d{99 - k % 100:02d}" / f"f{k % 1000:03d}.txt"
            victim.unlink(missing_ok=True)
            with growing.open("ab") as f:
                f.write(b"more\n" * 100)
            k += 1
            time.sleep(0.001)

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        out = tmp_path / "o.jsonl"
        done = _cli("scan", str(root), "--no-db", "--jsonl", str(out), timeout=600)
    finally:
        stop.set()
        worker.join()
    assert done.returncode == 0, done.stderr[-2000:]  # files vanishing is the host's doing, not an input error
    names = sorted(json.loads(line)["file"]["name"] for line in out.read_text().splitlines())
    assert names == ["rows.gz", "stage.gz"]
    os.remove(deep + "/stage.gz")
    for _ in range(1000):  # and down again, before pytest's recursive clean-up meets it
        os.rmdir(deep)
        deep = deep.rsplit("/", 1)[0]


def _many_entries(n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i in range(n):
            z.writestr(f"{i:06d}", b"")
    return buf.getvalue()


def _overlapping_bomb(copies: int) -> bytes:
    """David Fifield's "better zip bomb" in its simplest form: one deflated kernel that every central-directory
    entry points at, so the listing is long and every entry inflates the same bytes again."""
    kernel = zlib.compress(b"\0" * (4 << 20), 9)[2:-4]
    crc = zlib.crc32(b"\0" * (4 << 20))
    name = b"k"
    local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(kernel), 4 << 20, 1, 0) + name + kernel
    central = b"".join(
        struct.pack("<4s6H3I5HII", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(kernel), 4 << 20, 1, 0, 0, 0, 0, 0, 0)
        + name
        for _ in range(copies)
    )
    eocd = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, copies, copies, len(central), len(local), 0)
    return local + central + eocd


@pytest.mark.parametrize("kind", ["100000 entries", "overlapping bomb"])
def test_hostile_zips_are_bounded_counted_and_found(tmp_path, kind):
    root = tmp_path / "tree" / STAGED
    root.mkdir(parents=True)
    data = _many_entries(100_000) if kind == "100000 entries" else _overlapping_bomb(5_000)
    (root / "x.zip").write_bytes(data)
    db, out = tmp_path / "s.db", tmp_path / "o.jsonl"
    started = time.monotonic()
    done = _cli("scan", str(tmp_path / "tree"), "--db", str(db), "--jsonl", str(out))
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 120  # bounded (a generous ceiling, not a benchmark)
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["stagewatch"]["format"] for r in recs] == ["zip"]
    if kind == "100000 entries":
        assert {h["limit"] for h in recs[0]["stagewatch"]["limits"]} == {"entries"}
        with sqlite3.connect(db) as conn:
            (stats,) = conn.execute("select stats from runs").fetchone()
        assert json.loads(stats)["limits"]["entries"] == 1
        assert "entries" in done.stderr


def _nested_zips(depth: int, method: int) -> bytes:
    data, name = b"account,amount\n" * 400, "rows.csv"
    for level in range(depth):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", method) as z:
            z.writestr(name, data)
        data, name = buf.getvalue(), f"level{level}.zip"
    return data


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_zips_inside_zips_are_listed_to_the_depth_cap_and_counted_beyond_it(tmp_path, method):
    """Six deep: every level's entries are listed as outer!inner names on the one finding. Twelve deep: the
    listing stops at [limits] max_depth (8) and the depth limit is on the finding and in the run record."""
    root = tmp_path / "tree" / STAGED
    root.mkdir(parents=True)
    (root / "six.zip").write_bytes(_nested_zips(6, method))
    (root / "twelve.zip").write_bytes(_nested_zips(12, method))
    db, out = tmp_path / "s.db", tmp_path / "o.jsonl"
    done = _cli("scan", str(tmp_path / "tree"), "--db", str(db), "--jsonl", str(out))
    assert done.returncode == 0, done.stderr
    recs = {json.loads(line)["file"]["name"]: json.loads(line) for line in out.read_text().splitlines()}
    assert sorted(recs) == ["six.zip", "twelve.zip"]  # one finding each: the inner archives are listed, not re-found
    six = recs["six.zip"]["stagewatch"]
    assert six["inner"]["names"][-1] == "level4.zip!level3.zip!level2.zip!level1.zip!level0.zip!rows.csv"
    assert len(six["inner"]["names"]) == 6 and not six.get("limits")
    twelve = recs["twelve.zip"]["stagewatch"]
    assert len(twelve["inner"]["names"]) == 8
    assert [h["limit"] for h in twelve["limits"]] == ["depth"]
    with sqlite3.connect(db) as conn:
        (stats,) = conn.execute("select stats from runs").fetchone()
    assert json.loads(stats)["limits"] == {"depth": 1}


def test_a_zip_quine_is_verified_once_and_named_for_what_it_is(tmp_path):
    """Russ Cox's r.zip (tests/zipquine.py): a zip whose entry is the zip itself. Alone it is one finding whose
    entry is named as the archive itself, not listed again; inside another zip it is listed once beneath it."""
    quine = zip_quine()
    assert zipfile.ZipFile(io.BytesIO(quine)).read("r.zip") == quine  # what makes it a quine, checked by zipfile
    root = tmp_path / "tree" / STAGED
    root.mkdir(parents=True)
    (root / "r.zip").write_bytes(quine)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("inside/r.zip", quine)
    (root / "outer.zip").write_bytes(buf.getvalue())
    out = tmp_path / "o.jsonl"
    done = _cli("scan", str(tmp_path / "tree"), "--no-db", "--jsonl", str(out))
    assert done.returncode == 0, done.stderr
    recs = {json.loads(line)["file"]["name"]: json.loads(line)["stagewatch"] for line in out.read_text().splitlines()}
    assert sorted(recs) == ["outer.zip", "r.zip"]
    assert recs["r.zip"]["checksum"] == "ok" and recs["r.zip"]["inner"]["names"] == ["r.zip"]
    assert "r.zip is this zip itself (a zip quine)" in recs["r.zip"]["detail"]
    assert recs["outer.zip"]["inner"]["names"] == ["inside/r.zip", "inside/r.zip!r.zip"]
    assert not recs["r.zip"].get("limits") and not recs["outer.zip"].get("limits")
