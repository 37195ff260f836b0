"""Floods of connections that never close: connections/s and peak RSS of `stagewatch scan`, against tcpflow.

    python bench/bench_flood.py DATA_DIR [--quick] [--runs 3] [--flows N]

Writes DATA_DIR/flood-<N>.pcap when missing: N connections (300,000; 30,000 with --quick), each a SYN
and one 200-byte segment from a client in 10.0.0.0/8 to one server outside, never closed, as a port
scan or a busy NAT gateway looks; every 10,000th connection instead uploads a 20 KB gzip member in
one go and goes quiet (planted: each must be found, as an alert, although its flow is evicted long
before the capture ends). Frames are written with struct, not scapy: 600,000 frames in a few seconds.

Times whole processes (wall, and peak RSS from wait4), medians of --runs after a warm-up:
`tcpflow -r FILE -o DIR` (tmpfs) and `stagewatch scan FILE --no-db --jsonl OUT --home-net 10.0.0.0/8`
with the default limits (max_flows 50,000; memcap 256 MiB with 2 KiB per open flow). Goals from the
issue: >= 50,000 connections/s, peak RSS <= 512 MiB, every planted member found.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchkit import goal, print_table, stagewatch_cmd, warm  # noqa: E402

T0 = 1_764_000_000.0
SERVER = bytes([198, 51, 100, 80])
EVERY = 10_000


def _frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int, flags: int, payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 0x50, flags, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp + payload


def write_flood(path: Path, flows: int) -> list[str]:
    """The flood capture; returns the planted members' sha256."""
    rnd = random.Random(1)
    planted = []
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for n in range(flows):
            src = bytes([10, (n >> 16) & 255, (n >> 8) & 255, n & 255 or 1])
            sport = 1024 + n % 60_000
            isn = rnd.getrandbits(32)
            if n % EVERY == EVERY // 2:
                payload = gzip.compress(rnd.randbytes(4_000) + b"customer,card\n" * 1_200, mtime=0)
                planted.append(hashlib.sha256(payload).hexdigest())
            else:
                payload = rnd.randbytes(200)
            ts = T0 + n * 20e-6
            for i, frame in enumerate(
                (
                    _frame(src, SERVER, sport, 9000, isn, 0x02, b""),
                    _frame(src, SERVER, sport, 9000, (isn + 1) & 0xFFFFFFFF, 0x18, payload),
                )
            ):
                t = ts + i * 1e-6
                f.write(struct.pack("<IIII", int(t), int(t % 1 * 1e6), len(frame), len(frame)))
                f.write(frame)
    return planted


def timed(cmd: list[str], before=None) -> tuple[float, int]:  # noqa: ANN001
    """Wall seconds and peak RSS (KiB) of one whole process."""
    if before:
        before()
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return wall, usage.ru_maxrss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--quick", action="store_true", help="30,000 connections instead of 300,000")
    ap.add_argument("--flows", type=int, help="connections in the capture")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    flows = a.flows or (30_000 if a.quick else 300_000)
    a.data.mkdir(parents=True, exist_ok=True)
    pcap = a.data / f"flood-{flows}.pcap"
    truth = pcap.with_suffix(".truth.json")
    if not pcap.exists() or not truth.exists():
        truth.write_text(json.dumps(write_flood(pcap, flows)))
    planted = set(json.loads(truth.read_text()))
    warm([pcap])
    tmp = Path(tempfile.mkdtemp(prefix="swflood.", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))

    def fresh() -> None:
        shutil.rmtree(tmp / "tf", ignore_errors=True)
        (tmp / "tf").mkdir()

    cases: dict[str, list[tuple[float, int]]] = {}
    out = tmp / "f.jsonl"
    sw = [*stagewatch_cmd(), "-q", "scan", str(pcap), "--no-db", "--jsonl", str(out), "--truncate"]
    commands = {"stagewatch scan": [*sw, "--home-net", "10.0.0.0/8"]}
    if shutil.which("tcpflow"):
        commands = {"tcpflow -> tmpfs": ["tcpflow", "-r", str(pcap), "-o", str(tmp / "tf")], **commands}
    for label, cmd in commands.items():
        runs = [timed(cmd, fresh) for _ in range(a.runs + 1)][1:]
        cases[label] = runs
    found = {json.loads(line)["file"]["hash"]["sha256"]: json.loads(line)["event"]["kind"] for line in out.open()}
    shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for label, runs in cases.items():
        wall = statistics.median(w for w, _ in runs)
        rss = max(r for _, r in runs) / 1024
        rows.append([label, f"{wall:.2f}", f"{flows / wall:,.0f}", f"{rss:,.0f}"])
    print(f"{pcap}: {pcap.stat().st_size:,} B, {flows:,} connections never closed, {len(planted)} planted members")
    print_table(["case", "wall s", "connections/s", "peak RSS MiB"], rows, "lrrr")
    sw_wall = statistics.median(w for w, _ in cases["stagewatch scan"])
    sw_rss = max(r for _, r in cases["stagewatch scan"]) / 1024
    goal(flows / sw_wall >= 50_000, f"stagewatch >= 50,000 connections/s: {flows / sw_wall:,.0f}")
    goal(sw_rss <= 512, f"peak RSS <= 512 MiB: {sw_rss:,.0f} MiB")
    hits = sum(1 for h in planted if found.get(h) == "alert")
    found_all = goal(hits == len(planted), f"planted members found as alerts: {hits}/{len(planted)}")
    return 0 if found_all else 1  # a speed or memory goal missed is reported; a member missed is a failure


if __name__ == "__main__":
    raise SystemExit(main())
