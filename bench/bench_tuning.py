"""What the analyst's levers cost: suppression + thresholds, and content rules, against a plain scan.

    python bench/bench_tuning.py DATA_DIR [--quick] [--runs N]

On bench_net's genpcap capture (1 GiB; 100 MiB with --quick; generated when missing), four runs of
`stagewatch scan FILE --no-db --jsonl OUT --home-net 10.0.0.0/8`, interleaved, medians of --runs:
plain; with a tuning file of 300 suppression entries (CIDRs, domain and URL globs, hashes: what a SOC
accumulates; the last one matches every zip member) and a 10-minute threshold; with the shipped DLP content
rules (`--rules signatures/dlp`: every verified member's first MiB decompressed is scanned); with both.
Prints each wall as a ratio to the plain scan, and checks the same event.id set comes out of every run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path

from bench_net import HOME_NET, QUICK_MB, ensure_pcap
from benchkit import print_table, stagewatch_cmd

REPO = Path(__file__).resolve().parents[1]


def tuning_file(path: Path) -> Path:
    """300 entries that miss the corpus (as most of a real list misses a given day) and one that matches."""
    rnd = random.Random(7)
    lines = ["suppress:"]
    for i in range(100):
        lines.append(f"  - {{name: net-{i}, reason: r, author: a, destination: 198.18.{i}.0/24}}")
    for i in range(100):
        lines.append(f'  - {{name: dom-{i}, reason: r, author: a, domain: "*.vendor{i}.example"}}')
    for i in range(50):
        lines.append(f'  - {{name: url-{i}, reason: r, author: a, url: "/api/v{i}/upload*"}}')
    for i in range(49):
        lines.append(f"  - {{name: sha-{i}, reason: r, author: a, sha256: {rnd.getrandbits(256):064x}}}")
    lines.append("  - {name: zip-ok, reason: r, author: a, format: zip}")
    lines += ["thresholds:", "  - {name: repeats, window: 10m}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def run(pcap: Path, out: Path, extra: list[str]) -> tuple[float, list[dict]]:
    cmd = [*stagewatch_cmd(), "-q", "scan", str(pcap), "--no-db", "--jsonl", str(out), "--home-net", HOME_NET]
    t0 = time.perf_counter()
    subprocess.run([*cmd, *extra], check=True)
    wall = time.perf_counter() - t0
    return wall, [json.loads(line) for line in out.read_text().splitlines()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    a.data.mkdir(parents=True, exist_ok=True)
    pcap, _ = ensure_pcap(a.data, QUICK_MB if a.quick else 1024)
    tuning = tuning_file(a.data / "bench-tuning.yaml")
    dlp = REPO / "signatures" / "dlp"
    cases = {
        "plain": [],
        "suppress 300 + threshold": ["--suppress", str(tuning)],
        "content rules (signatures/dlp)": ["--rules", str(dlp)],
        "both": ["--suppress", str(tuning), "--rules", str(dlp)],
    }
    size = pcap.stat().st_size
    print(f"bench_tuning: {pcap} ({size / 1e6:.0f} MB), {os.cpu_count()} CPUs, medians of {a.runs}", flush=True)
    walls: dict[str, list[float]] = {k: [] for k in cases}
    records: dict[str, list[dict]] = {}
    run(pcap, a.data / "tuning-warm.jsonl", [])  # page cache and compiled-rule cache
    for _ in range(a.runs):
        for name, extra in cases.items():
            wall, recs = run(pcap, a.data / f"tuning-{len(walls[name])}.jsonl", extra)
            walls[name].append(wall)
            records[name] = recs
    base = statistics.median(walls["plain"])
    ids = {r["event"]["id"] for r in records["plain"]}
    rows = []
    for name in cases:
        recs = records[name]
        w = statistics.median(walls[name])
        tuned = Counter(
            "suppressed" if "suppressed" in r["stagewatch"] else "folded" if "first" in r["stagewatch"].get(
                "threshold", {}) else "" for r in recs)  # fmt: skip
        inner = sum(1 for r in recs if r["stagewatch"].get("inner", {}).get("rules"))
        same = "yes" if {r["event"]["id"] for r in recs} == ids else "NO"
        alerts = sum(1 for r in recs if r["event"]["kind"] == "alert")
        rows.append([name, f"{w:.2f}", f"{w / base:.2f}x", f"{size / 1e6 / w:.1f}", str(len(recs)), str(alerts),
                     str(tuned["suppressed"]), str(tuned["folded"]), str(inner), same])  # fmt: skip
    print_table(
        ["run", "wall s", "vs plain", "MB/s", "findings", "alerts", "suppressed", "folded", "content hits", "same ids"],
        rows,
        "lrrrrrrrrl",
    )
    return 0 if all(r[-1] == "yes" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
