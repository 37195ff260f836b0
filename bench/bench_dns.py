"""DNS: 100,000 benign queries with random-looking labels, and tunnels (issue "More ways out").

    python bench/bench_dns.py DATA_DIR [--quick] [--queries N]

Writes DATA_DIR/dns-benign-<N>.pcap when missing (tests/dnsbuild.py `benign_frames`, seed 1): 300 clients
behind an internal resolver asking CDN hash names, telemetry UUIDs, base32 tokens, DKIM keys and ACME tokens
(TXT), names answered NXDOMAIN with NSEC3 hashes, and plain names; five clients ask thousands. Also
DATA_DIR/dns-tunnels.pcap: the same traffic with eight tunnels (hex, base32, base64; counters first, last or
none) mixed in. Scans each with the application layer (`--objects`) and with --raw-only (the peer: every
datagram scanned alone), and reports the DNS layer's cost as their ratio. Goals: on the benign capture no
alert and no DNS object over 16 KiB; on the tunnels capture every tunnel's member found with its sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchkit import goal, print_table, stagewatch_cmd, warm  # noqa: E402


def _tunnels() -> tuple[list[tuple[float, bytes]], dict[str, str]]:
    """Eight tunnels as raw frames, and each one's member sha256 by zone."""
    from tests import dnsbuild as db
    from tests.builders import gzip_named, sample_text, xz_member, zip_archive, zlib_member

    members = [
        gzip_named(sample_text(200_000, 1), "a.csv"),
        zlib_member(sample_text(150_000, 2)),
        zip_archive({"b.csv": sample_text(100_000, 3)}),
        xz_member(sample_text(120_000, 4)),
    ]
    frames: list[tuple[float, bytes]] = []
    shas: dict[str, str] = {}
    kinds = [("hex", "first"), ("base32", "last"), ("base64", "hexlast"), ("hex", None),
             ("base32", None), ("hex", "last"), ("base32", "first"), ("base64", None)]  # fmt: skip
    for i, (enc, seq) in enumerate(kinds):
        member = members[i % len(members)]
        zone = f"z{i}.tunnel{i}-example.com"
        shas[zone] = hashlib.sha256(member).hexdigest()
        tunnel = db.Tunnel(member, zone=zone, encoding=enc, sequence=seq,
                           client=f"10.20.0.{i + 1}")  # fmt: skip
        for p in db.packets(tunnel, start=1_764_200_000.0 + i * 3, gap=0.01, retries=0.02, seed=i):
            frames.append((float(p.time), bytes(p)))
    return frames, shas


def run(cmd: list[str]) -> tuple[float, list[dict], list[dict]]:
    """Wall seconds, the findings and the objects of one scan."""
    with tempfile.TemporaryDirectory() as tmp:
        out, objs = Path(tmp) / "o.jsonl", Path(tmp) / "objects.jsonl"
        extra = ["--objects", str(objs)] if "--raw-only" not in cmd else []
        t = time.perf_counter()
        store = ["--db", str(Path(tmp) / "s.db")]
        done = subprocess.run([*cmd, "--jsonl", str(out), *store, *extra], capture_output=True, text=True)
        wall = time.perf_counter() - t
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
        read = lambda p: [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []  # noqa: E731
        return wall, read(out), read(objs)


def main() -> int:
    from tests import dnsbuild as db

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--quick", action="store_true", help="20,000 queries instead of 100,000")
    ap.add_argument("--queries", type=int, default=100_000)
    a = ap.parse_args()
    n = 20_000 if a.quick else a.queries
    a.data.mkdir(parents=True, exist_ok=True)
    benign = a.data / f"dns-benign-{n}.pcap"
    mixed = a.data / f"dns-tunnels-{n}.pcap"
    frames = None
    if not benign.exists():
        frames = db.benign_frames(n, seed=1)
        db.write_frames(benign, frames)
    tunnel_frames, shas = _tunnels()
    if not mixed.exists():
        frames = frames or db.benign_frames(n, seed=1)
        db.write_frames(mixed, sorted(frames + tunnel_frames))
    warm([benign, mixed])
    ok = True
    rows = []
    for pcap in (benign, mixed):
        base = [*stagewatch_cmd(), "-q", "scan", str(pcap), "--home-net", "10.0.0.0/8"]
        raw_wall, raw_found, _ = run([*base, "--raw-only"])
        wall, found, objects = run(base)
        dns = [o for o in objects if o.get("network", {}).get("protocol") == "dns"]
        biggest = max((o["file"]["size"] for o in dns), default=0)
        alerts = [f for f in found if f["event"]["kind"] == "alert"]
        rows.append([pcap.name, f"{raw_wall:.1f}", f"{wall:.1f}", f"{wall / raw_wall:.2f}x", str(len(alerts)),
                     str(len(dns)), f"{biggest:,}"])  # fmt: skip
        if pcap == benign:
            ok &= goal(not alerts, f"no alert on {n:,} benign queries: {len(alerts)}")
            ok &= goal(biggest <= 16 * 1024, f"no DNS object over 16 KiB on benign queries: largest {biggest:,} B")
        else:
            got = {(f["stagewatch"]["dns"]["zone"], f["file"]["hash"]["sha256"]) for f in alerts if "dns" in f}
            want = set(shas.items())
            ok &= goal(want <= got, f"every tunnel's member found with its sha256: {len(want & got)} of {len(want)}")
            ok &= goal(got <= want, f"no other DNS alert: {len(got - want)}")
    print_table(
        ["capture", "raw-only s", "app layer s", "ratio", "alerts", "DNS objects", "largest B"], rows, "lrrrrrr"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
