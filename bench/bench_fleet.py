"""A multi-file capture archive, planned: scaling from 1 to 2 workers, and what read-ahead costs.

    python bench/bench_fleet.py DATA_DIR [--quick]

The 1 GiB genpcap capture (bench_net's, generated when missing; 4 GiB without --quick: four seeds)
is rotated into files of --file-mb (tcpdump -C, as a sensor rotates), and `stagewatch scan` runs over
the folder: as one chain in one process (the reference), planned into segments of one file with
--read-ahead 1 on 1 and on 2 workers, and with --read-ahead 0 (the cost of following flows across
file edges). Whole-process walls, medians of --runs. It prints the per-core rate and the sizing rule
cores ~ bytes / (hours x per-core rate).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchkit import stagewatch_cmd

REPO = Path(__file__).resolve().parents[1]
MB = 1e6


def archive(data: Path, quick: bool, file_mb: int) -> Path:
    seeds = [1] if quick else [1, 2, 3, 4]
    folder = data / f"archive-{len(seeds)}g-{file_mb}m"
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        src = data / f"mixed-1024m{'' if seed == 1 else f'-s{seed}'}.pcap"
        if not src.is_file():
            gen = [sys.executable, str(REPO / "bench" / "genpcap.py"), "--out", str(src), "--size-mb", "1024"]
            subprocess.run([*gen, "--seed", str(seed), "--quiet"], check=True)
        sensor = folder / f"sensor{seed}"
        sensor.mkdir()
        # as root tcpdump drops to its own user before writing: -Z keeps the writer who owns the folder
        user = ["-Z", "root"] if os.geteuid() == 0 else []
        cmd = ["tcpdump", *user, "-r", str(src), "-w", str(sensor / "cap"), "-C", str(file_mb)]
        subprocess.run(cmd, check=True, capture_output=True)
    return folder


def timed(args: list[str], runs: int) -> tuple[float, int]:
    walls, count = [], 0
    for i in range(runs + 1):
        out = Path("/tmp") / f"fleet-{time.monotonic_ns()}.jsonl"
        t0 = time.perf_counter()
        subprocess.run([*stagewatch_cmd(), "-q", "scan", *args, "--no-db", "--jsonl", str(out)], check=True, cwd=REPO)
        wall = time.perf_counter() - t0
        count = len(out.read_text().splitlines())
        out.unlink()
        if i:
            walls.append(wall)
    return statistics.median(walls), count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--quick", action="store_true", help="1 GiB archive instead of 4 GiB")
    ap.add_argument("--file-mb", type=int, default=256, help="rotation size of the archive's files (MB)")
    ap.add_argument("--runs", type=int, default=1, help="timed runs after a warm-up (median)")
    a = ap.parse_args(argv)
    if shutil.which("tcpdump") is None:
        print("bench_fleet: SKIPPED, tcpdump is not installed (it rotates the archive)")
        return 0
    folder = archive(a.data_dir, a.quick, a.file_mb)
    files = sorted(p for p in folder.rglob("cap*") if p.is_file())
    nbytes = sum(p.stat().st_size for p in files)
    print(f"bench_fleet: {folder}: {len(files)} files, {nbytes / MB:,.0f} MB, {len({p.parent for p in files})} sensors")
    home = ["--home-net", "10.0.0.0/8"]
    cases = {
        "one chain, 1 process": [str(folder), *home],
        "segments, read-ahead 1, 1 worker": [str(folder), *home, "--segment-size", "1", "--read-ahead", "1"],
        "segments, read-ahead 1, 2 workers": [
            str(folder),
            *home,
            "--segment-size",
            "1",
            "--read-ahead",
            "1",
            "--workers",
            "2",
        ],  # fmt: skip
        "segments, read-ahead 0, 2 workers": [
            str(folder),
            *home,
            "--segment-size",
            "1",
            "--read-ahead",
            "0",
            "--workers",
            "2",
        ],  # fmt: skip
    }
    results = {}
    for name, args in cases.items():
        wall, count = timed(args, a.runs)
        results[name] = {"wall": wall, "findings": count, "mb_s": nbytes / MB / wall}
        print(f"  {name}: {wall:.1f} s, {nbytes / MB / wall:.1f} MB/s, {count} findings", flush=True)
    one = results["segments, read-ahead 1, 1 worker"]
    two = results["segments, read-ahead 1, 2 workers"]
    no_ra = results["segments, read-ahead 0, 2 workers"]
    scaling = one["wall"] / two["wall"]
    cost = two["wall"] / no_ra["wall"] - 1
    lost = two["findings"] - no_ra["findings"]
    rate = one["mb_s"]
    print(f"\nscaling 1 -> 2 workers: {scaling:.2f}x; read-ahead costs {cost:+.0%} wall and keeps {lost} findings")
    print(f"per-core rate {rate:.0f} MB/s = {rate * 3600 / 1000:.0f} GB per core-hour")
    print(
        f"sizing: cores ~ bytes / (hours x {rate:.0f} MB/s); e.g. 10 TB in 8 h -> {10e12 / (8 * 3600 * rate * MB):.0f}"
    )
    report = {"files": len(files), "bytes": nbytes, "results": results, "scaling": scaling, "read_ahead_cost": cost}
    (a.data_dir / f"report-fleet{'-quick' if a.quick else ''}.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
