"""Noise: outbound traffic that compresses nothing, where every alert is a false one (issue "Hostile input").

    python bench/bench_noise.py DATA_DIR [--quick] [--gb 2]

Writes DATA_DIR/noise-<N>m.pcap when missing (deterministic, seed 1): outbound TCP connections from
10.0.0.0/8 to addresses outside it, each about 1 MiB in 1,448-byte segments, half of them TLS-like (a
ClientHello, then application-data records `17 03 03 len` of random bytes, as any HTTPS upload looks) and
half raw random bytes (an encrypted tunnel, an already-encrypted file). Random bytes hold every short magic
number by chance (a zlib header every 16 KiB, gzip's 3 bytes every 16 MiB): candidates galore, and each must
fail verification. Scans it with the application layer and --raw-only; reports alerts per GB (the goal is
0 over 2 GB), events, candidates and verification rejects, and seconds per GB.
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchkit import goal, print_table, stagewatch_cmd, warm  # noqa: E402

T0 = 1_764_100_000.0
MSS = 1448
FLOW = 1 << 20


def _frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp + payload


def _tls_stream(rnd: random.Random, size: int) -> bytes:
    hello = b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03" + rnd.randbytes(32) + b"\x00" + rnd.randbytes(160)
    out = bytearray(hello)
    while len(out) < size:
        n = rnd.randint(512, 16384)
        out += b"\x17\x03\x03" + n.to_bytes(2, "big") + rnd.randbytes(n)
    return bytes(out)


def write_noise(path: Path, total: int) -> int:
    """The noise capture; returns its number of connections."""
    rnd = random.Random(1)
    n = 0
    ts = T0
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

        def put(frame: bytes) -> None:
            nonlocal ts
            ts += 20e-6
            f.write(struct.pack("<IIII", int(ts), int(ts % 1 * 1e6), len(frame), len(frame)) + frame)

        written = 0
        while written < total:
            src = bytes([10, 1 + n % 200, (n >> 8) & 255, 1 + n % 250])
            dst = bytes([198, 51, 100 + n % 20, 1 + n % 250])
            sport, dport = 20_000 + n % 40_000, 443 if n % 2 == 0 else 8443 + n % 100
            data = _tls_stream(rnd, FLOW) if n % 2 == 0 else rnd.randbytes(FLOW)
            c, s = rnd.getrandbits(32), rnd.getrandbits(32)
            put(_frame(src, dst, sport, dport, c, 0, 0x02, b""))
            put(_frame(dst, src, dport, sport, s, c + 1, 0x12, b""))
            seq = c + 1
            for i in range(0, len(data), MSS):
                piece = data[i : i + MSS]
                put(_frame(src, dst, sport, dport, seq & 0xFFFFFFFF, (s + 1) & 0xFFFFFFFF, 0x18, piece))
                seq += len(piece)
            put(_frame(src, dst, sport, dport, seq & 0xFFFFFFFF, (s + 1) & 0xFFFFFFFF, 0x11, b""))
            put(_frame(dst, src, dport, sport, (s + 1) & 0xFFFFFFFF, (seq + 1) & 0xFFFFFFFF, 0x11, b""))
            written += len(data)
            n += 1
    return n


def run(cmd: list[str]) -> tuple[float, list[dict], dict]:
    """Wall seconds, the JSON lines and the run's stats (from a throwaway store) of one scan."""
    with tempfile.TemporaryDirectory() as tmp:
        out, db = Path(tmp) / "o.jsonl", Path(tmp) / "s.db"
        t = time.perf_counter()
        done = subprocess.run([*cmd, "--jsonl", str(out), "--db", str(db)], capture_output=True, text=True)
        wall = time.perf_counter() - t
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
        import sqlite3

        with sqlite3.connect(db) as conn:
            (stats,) = conn.execute("select stats from runs").fetchone()
        return wall, [json.loads(line) for line in out.read_text().splitlines()], json.loads(stats)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--quick", action="store_true", help="200 MB instead of 2 GB")
    ap.add_argument("--gb", type=float, default=2.0)
    a = ap.parse_args()
    total = int((0.2 if a.quick else a.gb) * 1e9)
    a.data.mkdir(parents=True, exist_ok=True)
    pcap = a.data / f"noise-{total // 1_000_000}m.pcap"
    if not pcap.exists():
        write_noise(pcap, total)
    warm([pcap])
    gb = total / 1e9
    base = [*stagewatch_cmd(), "-q", "scan", str(pcap), "--home-net", "10.0.0.0/8"]
    rows, alerts_all = [], 0
    for label, extra in (("application layer", []), ("--raw-only", ["--raw-only"])):
        wall, recs, stats = run([*base, *extra])
        alerts = sum(1 for r in recs if r["event"]["kind"] == "alert")
        alerts_all += alerts
        events = len(recs) - alerts
        cands, rejected = sum(stats["candidates"].values()), sum(stats["rejected"].values())
        rows.append([label, f"{gb:.2f}", str(alerts), f"{alerts / gb:.2f}", str(events), f"{cands:,}", f"{rejected:,}",
                     f"{wall:.1f}", f"{wall / gb:.1f}"])  # fmt: skip
        for r in recs:
            if r["event"]["kind"] == "alert":
                print(f"  false alert ({label}): {r['stagewatch']['format']} at {r['stagewatch'].get('offset')}, "
                      f"{r.get('source', {}).get('ip')} -> {r.get('destination', {}).get('ip')}")  # fmt: skip
    print(f"{pcap}: {pcap.stat().st_size:,} B of outbound TLS-like and random traffic")
    head = ["scan", "GB", "alerts", "alerts/GB", "events", "candidates", "rejected", "wall s", "s/GB"]
    print_table(head, rows, "lrrrrrrrr")
    return 0 if goal(alerts_all == 0, f"0 alerts over {gb:.1f} GB of noise: {alerts_all}") else 1


if __name__ == "__main__":
    raise SystemExit(main())
