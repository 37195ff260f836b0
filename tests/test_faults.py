"""Faults in a fleet run, made real: a Dask worker SIGKILLed while it runs a segment (and another after it
computed one but before the scheduler heard), and the driver SIGKILLed between segments. Nothing found is
lost or written twice, and a re-run after the driver's death skips the segments already done."""

from __future__ import annotations

import gc
import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

from scapy.all import IP, UDP, Ether, raw

from sensor.cli import main as cli_main
from sensor.store.db import FindingStore
from tests.conftest import need
from tests.test_plan import rotated

ROOT = Path(__file__).resolve().parents[1]


def filler(path: Path, n: int, start: float) -> Path:
    """A pcap of n small UDP datagrams: seconds of per-packet work with nothing to find."""
    frame = raw(Ether() / IP(src="10.0.0.9", dst="198.51.100.53") / UDP(sport=5353, dport=53) / (b"q" * 60))
    rec = struct.Struct("<IIII")
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(n):
            t = start + i * 1e-5
            f.write(rec.pack(int(t), int(t % 1 * 1e6), len(frame), len(frame)) + frame)
    return path


def config(tmp: Path, cache: Path) -> Path:
    cfg = tmp / "sw.toml"
    cfg.write_text(f'cache_dir = "{cache}"\nobserver = "test"\n')
    return cfg


def scan_args(tmp: Path, cfg: Path, *extra: str) -> list[str]:
    return ["-q", "scan", str(tmp / "rot"), "--config", str(cfg), "--home-net", "10.0.0.0/8", *extra]


def test_killed_dask_workers_lose_and_duplicate_nothing(tmp_path, rule_cache):
    try:
        import distributed
    except ImportError:
        need("the dask extra is not installed (pip install 'stagewatch[dask]')")
    from tests.daskfaults import KillWorker

    rotated(tmp_path / "rot")
    cfg = config(tmp_path, rule_cache)
    alone = tmp_path / "alone.jsonl"
    assert cli_main([*scan_args(tmp_path, cfg, "--no-db", "--jsonl", str(alone))]) == 0
    expected = sorted(json.loads(line)["event"]["id"] for line in alone.read_text().splitlines())
    gc.collect()  # yara-x scanners are freed here, not on the Dask client's event-loop thread
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            client.register_plugin(KillWorker(tmp_path / "killed-at-start", "start"), name="kill-start")
            client.register_plugin(KillWorker(tmp_path / "killed-at-end", "end"), name="kill-end")
        out, db = tmp_path / "dask.jsonl", tmp_path / "dask.db"
        args = scan_args(tmp_path, cfg, "--segment-size", "1", "--dask", cluster.scheduler_address)
        assert cli_main([*args, "--db", str(db), "--jsonl", str(out)]) == 0
        gc.collect()
    assert (tmp_path / "killed-at-start").exists() and (tmp_path / "killed-at-end").exists()  # both faults fired
    got = sorted(json.loads(line)["event"]["id"] for line in out.read_text().splitlines())
    assert got == expected  # the same findings, none twice, though two segments ran twice
    with FindingStore(str(db)) as store:
        assert sorted(r["event"]["id"] for r in store.findings()) == expected
        assert len(store.done_segments()) == 2
        assert store.runs()[-1]["stats"]["errors"].get("segment", 0) == 0


def test_a_killed_driver_resumes_where_it_stopped(tmp_path, rule_cache):
    a, b = rotated(tmp_path / "rot")
    filler(tmp_path / "rot" / "cap-0003.pcap", 60_000, start=1_800_000_000.0)  # the last segment: seconds long
    cfg = config(tmp_path, rule_cache)
    whole = tmp_path / "whole.db"
    assert cli_main([*scan_args(tmp_path, cfg, "--segment-size", "1", "--db", str(whole))]) == 0
    with FindingStore(str(whole)) as store:
        expected = sorted(r["event"]["id"] for r in store.findings())
    db = tmp_path / "sw.db"
    args = [sys.executable, "-m", "sensor", *scan_args(tmp_path, cfg, "--segment-size", "1", "--db", str(db))]
    log = tmp_path / "driver.log"
    with log.open("wb") as err:
        driver = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    done: list = []
    deadline = time.monotonic() + 120
    while driver.poll() is None and time.monotonic() < deadline:
        try:
            with sqlite3.connect(db, timeout=5) as conn:
                done = conn.execute("SELECT segment_key FROM segments").fetchall()
        except sqlite3.Error:
            done = []  # the schema is not there yet
        if done:
            os.kill(driver.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    assert driver.wait(timeout=30) == -signal.SIGKILL, log.read_text()
    with FindingStore(str(db)) as store:
        assert store.runs()[-1]["status"] == "running"  # killed: no end was written
        finished = len(store.done_segments())
    assert 1 <= finished < 3
    assert cli_main([*scan_args(tmp_path, cfg, "--segment-size", "1", "--db", str(db))]) == 0
    with FindingStore(str(db)) as store:
        stats = store.runs()[-1]["stats"]
        assert sorted(r["event"]["id"] for r in store.findings()) == expected  # nothing lost, nothing twice
        assert len(store.done_segments()) == 3
    assert stats["net"]["segments_skipped"] == finished
