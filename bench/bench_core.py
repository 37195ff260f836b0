"""The compiled core against its Python reference, stage by stage, and end to end against tcpflow.

    python bench/bench_core.py DATA_DIR [--quick] [--runs 3]

Uses DATA_DIR/mixed-<N>m.pcap (bench_net.py generates it with genpcap.py, seed 1; this script does too when
it is missing): 1 GiB, or 100 MiB with --quick. Medians of --runs timed runs after a warm-up:

- pcap records: the whole capture in memory, its records cut into Packets by the compiled loop
  (`sensor._core.pcap_records`) and the reference (`sensor.capture.pcapfile.pcap_records`);
- decode: every record of the capture read into memory once (outside the timing), then each frame through
  the decoder's fast path, compiled (`sensor._core.decode_fast`) and reference
  (`sensor.flow.decode.decode_fast`), in this process; frames/s and the ratio;
- end to end: `stagewatch scan FILE --raw-only --no-db` and the same with the application layer, on the
  compiled core and with STAGEWATCH_NO_EXTENSIONS=1, whole processes, against `tcpflow -r FILE -o DIR`
  (tmpfs) in the same run ("x tcpflow" = tcpflow wall / case wall). Both cores must give the same number
  of findings.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchkit import REPO, goal, print_table, stagewatch_cmd, warm  # noqa: E402
from sensor import native as core  # noqa: E402
from sensor.capture.pcapfile import read_packets  # noqa: E402
from sensor.flow.decode import decode_fast as reference  # noqa: E402
from sensor.stats import RunStats  # noqa: E402


def capture(data: Path, size_mb: int) -> Path:
    pcap = data / f"mixed-{size_mb}m.pcap"
    if not pcap.exists():
        data.mkdir(parents=True, exist_ok=True)
        gen = [sys.executable, str(REPO / "bench" / "genpcap.py"), "--size-mb", str(size_mb), "--seed", "1"]
        subprocess.run([*gen, "--out", str(pcap)], check=True)
    return pcap


def median_wall(cmd: list[str], runs: int, env: dict[str, str] | None = None, before=None) -> tuple[float, str]:
    walls, out = [], ""
    for i in range(runs + 1):
        if before:
            before()
        t = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
        if i:
            walls.append(wall)
        out = done.stdout
    return statistics.median(walls), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--quick", action="store_true", help="100 MiB instead of 1 GiB")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if core.compiled is None:
        print(f"no compiled core to measure: {core.why_reference}")
        return 1
    pcap = capture(a.data, 100 if a.quick else 1024)
    warm([pcap])
    frames = [(p.ts, p.linktype, p.data, p.index) for p in read_packets(str(pcap), RunStats())]
    print(f"{pcap}: {pcap.stat().st_size:,} B, {len(frames):,} frames; {core.name()}")

    def decode_all(fn) -> float:  # noqa: ANN001
        t = time.perf_counter()
        for args in frames:
            fn(*args)
        return time.perf_counter() - t

    rows = []
    fast = core.compiled.decode_fast
    times = {}
    for label, fn in (("compiled", fast), ("reference", reference)):
        decode_all(fn)
        times[label] = statistics.median(decode_all(fn) for _ in range(a.runs))
        rows.append([f"decode fast path, {label}", f"{times[label]:.3f}", f"{len(frames) / times[label]:,.0f}", ""])
    rows[0][3] = f"{times['reference'] / times['compiled']:.2f}x the reference"

    from sensor.capture.pcapfile import pcap_records

    raw = pcap.read_bytes()
    big = raw[:1] == b"\xa1"

    def records_all(fn) -> float:  # noqa: ANN001
        out: list = []
        t = time.perf_counter()
        fn(raw, 24, big, 1e6, 1, 0, str(pcap), 64 << 20, out)
        return time.perf_counter() - t

    for label, fn in (("compiled", core.compiled.pcap_records), ("reference", pcap_records)):
        records_all(fn)
        times[f"records {label}"] = statistics.median(records_all(fn) for _ in range(a.runs))
    for label in ("compiled", "reference"):
        t = times[f"records {label}"]
        rows.append([f"pcap records, {label}", f"{t:.3f}", f"{len(frames) / t:,.0f}", ""])
    rows[-2][3] = f"{times['records reference'] / times['records compiled']:.2f}x the reference"

    tmp = Path(tempfile.mkdtemp(prefix="swcore.", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))

    def fresh() -> None:
        shutil.rmtree(tmp / "tf", ignore_errors=True)
        (tmp / "tf").mkdir()

    ends = {}
    if shutil.which("tcpflow"):
        ends["tcpflow"], _ = median_wall(["tcpflow", "-r", str(pcap), "-o", str(tmp / "tf")], a.runs, before=fresh)
    sw = stagewatch_cmd()
    counts = {}
    for mode, extra in (("--raw-only", ["--raw-only"]), ("app layer", [])):
        for label, env_core in (("compiled", None), ("reference", "1")):
            env = dict(os.environ)
            env.pop(core.ENV, None)
            if env_core:
                env[core.ENV] = env_core
            out = tmp / "f.jsonl"
            cmd = [*sw, "-q", "scan", str(pcap), "--no-db", "--jsonl", str(out), "--truncate", *extra]
            ends[f"{mode}, {label}"], _ = median_wall([*cmd, "--home-net", "10.0.0.0/8"], a.runs, env)
            counts[f"{mode}, {label}"] = sum(1 for _ in out.open())
    shutil.rmtree(tmp, ignore_errors=True)
    mb = pcap.stat().st_size / 1e6
    tf = ends.get("tcpflow")
    for label, wall in ends.items():
        ratio = f"{tf / wall:.2f}x tcpflow" if tf else ""
        rows.append([label, f"{wall:.2f}", f"{mb / wall:,.1f} MB/s", ratio])
    print_table(["case", "wall s", "rate", "ratio"], rows, "lrrl")
    ok = goal(counts["--raw-only, compiled"] == counts["--raw-only, reference"], f"same findings raw-only: {counts}")
    ok &= goal(counts["app layer, compiled"] == counts["app layer, reference"], "same findings with the app layer")
    goal(times["compiled"] < times["reference"], "the compiled fast path is faster than the reference")
    return 0 if ok else 1  # speed is reported; different findings on the two cores are a failure


if __name__ == "__main__":
    raise SystemExit(main())
