"""`stagewatch watch`: real inotify on a temporary folder, files written slowly by a real writer, the real
detector and store. A half-written archive is scanned once, whole; a rewritten file's finding is replaced;
a new sub-folder is followed."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

from sensor.config import Settings
from sensor.model import Finding
from sensor.pipeline import watch_inputs
from sensor.staging.watch import Settler
from sensor.stats import RunStats
from tests.builders import bzip2_member, gzip_named, sample_text, xz_member


class Running:
    """watch_inputs in a thread, collecting (path, findings) as they come."""

    def __init__(self, folder: Path, cache: Path, settle: float = 0.6) -> None:
        self.stop = threading.Event()
        self.got: list[tuple[str, list[Finding]]] = []
        settings = Settings(observer="test", cache_dir=cache, host="ws-01")
        gen = watch_inputs([str(folder)], settings, RunStats(), self.stop, settle)

        def consume() -> None:
            self.got.extend(gen)
            gc.collect()  # yara-x objects must be freed on the thread that made them (this one)

        gc.collect()  # earlier tests' detectors (kept in reference cycles) are freed here, on their thread
        self.thread = threading.Thread(target=consume, daemon=True)
        self.thread.start()
        time.sleep(0.5)  # the observer is scheduled

    def wait_for(self, n: int, timeout: float = 15.0) -> None:
        end = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < end:
            time.sleep(0.05)

    def close(self) -> list[tuple[str, list[Finding]]]:
        self.stop.set()
        self.thread.join(timeout=15)
        return self.got


def test_a_file_written_slowly_is_scanned_once_after_its_last_byte(tmp_path, rule_cache):
    watched = tmp_path / "tmp"  # a staging folder by name
    watched.mkdir()
    member = gzip_named(sample_text(400_000, 5), "export.csv")
    run = Running(watched, rule_cache, settle=3.0)  # far longer than the writer's pauses
    target = watched / "upd_2231.tmp"
    with open(target, "wb") as f:  # kept open: no IN_CLOSE_WRITE until the end
        for i in range(0, len(member), len(member) // 6 + 1):
            f.write(member[i : i + len(member) // 6 + 1])
            f.flush()
            time.sleep(0.25)  # shorter than the settle time: still being written
    run.wait_for(1)
    time.sleep(1.0)  # nothing more may come
    got = run.close()
    assert [p for p, _ in got] == [str(target)]
    (f,) = got[0][1]
    assert f.member.length == len(member) and not f.member.truncated and f.kind.value == "alert"


def test_a_rewritten_file_is_scanned_again_and_a_new_folder_followed(tmp_path, rule_cache):
    watched = tmp_path / "tmp"
    watched.mkdir()
    run = Running(watched, rule_cache)
    first, second = bzip2_member(sample_text(50_000, 6)), xz_member(sample_text(50_000, 7))
    target = watched / "stage.bin"
    target.write_bytes(first)
    run.wait_for(1)
    target.write_bytes(second)
    run.wait_for(2)
    sub = watched / "new" / "deeper"
    sub.mkdir(parents=True)
    time.sleep(0.3)
    (sub / "x.bz2").write_bytes(first)
    run.wait_for(3)
    got = run.close()
    formats = [(Path(p).name, [str(f.member.format) for f in fs]) for p, fs in got]
    assert formats == [("stage.bin", ["bzip2"]), ("stage.bin", ["xz"]), ("x.bz2", ["bzip2"])]


def test_settler_waits_for_quiet_or_close():
    s = Settler(settle=2.0)
    s.changed("/a", 0.0)
    s.changed("/b", 0.0)
    s.closed("/c", 0.5)
    assert s.due(1.0) == ["/c"]  # closed: at once
    s.changed("/a", 1.5)  # still being written
    assert s.due(2.5) == ["/b"]
    assert s.due(3.6) == ["/a"]
    assert s.due(10.0) == []


def test_the_command_replaces_a_rewritten_files_finding_and_stops_on_sigterm(tmp_path, rule_cache):
    import os
    import signal
    import subprocess
    import sys

    from sensor.store.db import FindingStore

    watched, db = tmp_path / "Temp", tmp_path / "sw.db"
    watched.mkdir()
    cfg = tmp_path / "sw.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "test"\n')
    cmd = [sys.executable, "-m", "sensor", "-q", "watch", str(watched), "--db", str(db), "--settle", "1s"]
    proc = subprocess.Popen([*cmd, "--config", str(cfg), "--host", "ws-01"], env=dict(os.environ))
    try:
        time.sleep(2.0)  # rules compiled (cached), observer running
        target = watched / "report.dat"
        first, second = bzip2_member(sample_text(60_000, 8)), xz_member(sample_text(60_000, 9))
        target.write_bytes(first)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not db.exists() or FindingStore(str(db)).count() < 1):
            time.sleep(0.2)
        target.write_bytes(second)
        time.sleep(2.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    with FindingStore(str(db)) as store:
        records = list(store.findings())
        runs = store.runs()
    assert [r["stagewatch"]["format"] for r in records] == ["xz"]  # replaced, not duplicated
    assert records[0]["file"]["path"] == str(target)
    assert runs[-1]["status"] == "ok"
