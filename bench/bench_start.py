"""What a `stagewatch` start costs, as whole processes, beside the interpreter's own start; and JSON lines.

    python bench/bench_start.py DATA_DIR [--quick] [--runs N] [--captures DIR]

Start-up: each command below runs as a process, wall clock, median of --runs (default 5) after one warm-up
round that also fills the compiled-rule cache (~/.cache/stagewatch); the cases run interleaved, so load on
the machine falls on all of them alike. The peers `python -c pass` (the interpreter's start) and
`python -c "import yara_x"` run in the same rounds. Goal: `stagewatch -q scan --no-db FILE` of one small
staged gzip file in at most 0.25 s. Every process gets PYTHONPYCACHEPREFIX=DATA_DIR/pycache and no
PYTHONDONTWRITEBYTECODE: the bytecode is cached as in an installed package, whatever the caller's
environment says, and nothing is written into the tree. To see where a start goes:
`python -X importtime -m sensor -q scan --no-db FILE 2> imports.txt`, sorted by the cumulative column.

JSON lines: the findings, flows and objects of a scan of the demo's staged tree and captures (written by
samples/make_staged.py and pcaps/make_samples.py), files with non-ASCII names and --captures DIR (e.g.
real captures) are repeated up to 10,000 records (2,000 with --quick) and written with the stdlib's
json.dumps and with orjson, as sensor/output/jsonl.py writes them; the two texts must be equal.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchkit import REPO, goal, print_table, stagewatch_cmd

GOAL_S = 0.25
SCAN_CASE = "stagewatch -q scan --no-db FILE"


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, user+sys CPU) of one process; its output is thrown away, a failure stops the bench."""
    cpu0, t0 = child_cpu(), time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, child_cpu() - cpu0


def staged_gzip(folder: Path, name: str, seed: int, lines: int = 60) -> Path:
    """A small gzip file of CSV-like text, as a script would stage it."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{seed}-{i},user{i % 7}@corp.example,{(i * 7919 + seed) % 100000}\n" for i in range(lines))
    path = folder / name
    path.write_bytes(gzip.compress(rows.encode(), mtime=1_763_800_000))
    return path


def bench_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(data / "pycache")
    return env


def start_cases(data: Path, env: dict[str, str]) -> dict[str, list[str]]:
    sw = stagewatch_cmd()
    start = data / "start"
    one = staged_gzip(start / "one", "export_0001.csv.gz", 1)
    store = data / "start-small.db"
    if not store.exists():  # a few findings: what `findings` reads and prints as a table
        few = [staged_gzip(start / "few", f"export_{i:04d}.csv.gz", i) for i in range(2, 8)]
        subprocess.run([*sw, "-q", "scan", *map(str, few), "--db", str(store)], env=env, check=True)
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import yara_x"': [sys.executable, "-c", "import yara_x"],
        "stagewatch --version": [*sw, "--version"],
        SCAN_CASE: [*sw, "-q", "scan", "--no-db", str(one)],
        "stagewatch findings --db STORE": [*sw, "findings", "--db", str(store)],
    }


def bench_start(data: Path, runs: int) -> bool:
    env = bench_env(data)
    cases = start_cases(data, env)
    print(f"bench_start: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, medians of {runs} runs", flush=True)
    for cmd in cases.values():  # warm-up: bytecode, page cache, compiled-rule cache
        timed(cmd, env)
    walls: dict[str, list[float]] = {name: [] for name in cases}
    cpus: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, cmd in cases.items():
            wall, cpu = timed(cmd, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
    base = statistics.median(walls["python -c pass"])
    rows = [
        [
            name,
            f"{statistics.median(walls[name]):.3f}",
            f"{min(walls[name]):.3f}",
            f"{statistics.median(cpus[name]):.3f}",
            f"{statistics.median(walls[name]) - base:+.3f}",
        ]
        for name in cases
    ]
    print_table(["command", "wall s (median)", "min", "CPU s", "over python -c pass"], rows, "lrrrr")
    scan = statistics.median(walls[SCAN_CASE])
    return goal(scan <= GOAL_S, f"{SCAN_CASE}: {scan:.3f} s (goal <= {GOAL_S} s)")


def records_for_jsonl(data: Path, captures: Path | None, env: dict[str, str]) -> list[dict]:
    """The ECS records of a scan of the demo's staged tree and captures (made once), plus --captures."""
    corpus = data / "jsonl-corpus"
    if not (corpus / "staged").is_dir():
        subprocess.run([sys.executable, str(REPO / "samples/make_staged.py"), str(corpus / "staged")], check=True,
                       env=env, stdout=subprocess.DEVNULL)  # fmt: skip
        subprocess.run([sys.executable, str(REPO / "pcaps/make_samples.py"), str(corpus / "pcaps")], check=True,
                       env=env, stdout=subprocess.DEVNULL)  # fmt: skip
        for i, name in enumerate(("Отчёт_2025.csv.gz", "données clients.csv.gz", "顧客リスト.csv.gz")):
            staged_gzip(corpus / "utf8", name, 100 + i)
    out = {kind: data / f"jsonl-{kind}.jsonl" for kind in ("findings", "flows", "objects")}
    paths = [corpus / "staged", corpus / "pcaps", corpus / "utf8", *([captures] if captures else [])]
    cmd = [*stagewatch_cmd(), "-q", "scan", *map(str, paths), "--no-db", "--truncate", "--home-net", "10.0.0.0/8"]
    cmd += ["--jsonl", str(out["findings"]), "--flows", str(out["flows"]), "--objects", str(out["objects"])]
    subprocess.run(cmd, env=env, check=True)
    records = [json.loads(line) for p in out.values() for line in p.read_text(encoding="utf-8").splitlines()]
    counts = ", ".join(f"{len(p.read_text(encoding='utf-8').splitlines())} {kind}" for kind, p in out.items())
    print(f"records: {counts}", flush=True)
    return records


def median_of(runs: int, write: object, records: list[dict]) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for r in records:
            write(r)  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_jsonl(data: Path, captures: Path | None, n: int, runs: int) -> bool:
    """True unless sensor's dumps and json.dumps write different text for some record."""
    try:
        import orjson
    except ImportError:
        print("jsonl: orjson is not installed; sensor/output/jsonl.py writes with json")
        return True
    sys.path.insert(0, str(REPO))
    from sensor.output import jsonl

    seed = records_for_jsonl(data, captures, bench_env(data))
    records = list(itertools.islice(itertools.cycle(seed), n))

    def stdlib(r: dict) -> str:
        return json.dumps(r, separators=(",", ":"), ensure_ascii=False)

    def with_orjson(r: dict) -> str:
        return orjson.dumps(r).decode()

    size = sum(len(stdlib(r).encode()) for r in records)
    walls = {"json.dumps": median_of(runs, stdlib, records), "orjson.dumps": median_of(runs, with_orjson, records)}
    walls["sensor.output.jsonl.dumps"] = median_of(runs, jsonl.dumps, records)
    rows = [[k, f"{v * 1e3:.1f}", f"{v / n * 1e6:.2f}", f"{walls['json.dumps'] / v:.1f}x"] for k, v in walls.items()]
    print(f"jsonl: {n:,} records ({len(seed)} distinct, {size / 1e6:.1f} MB of lines), medians of {runs}")
    print_table(["dumps", "ms", "us/record", "vs json"], rows, "lrrr")
    same = sum(stdlib(r) == jsonl.dumps(r) for r in seed)
    faster = walls["json.dumps"] / walls["sensor.output.jsonl.dumps"]
    goal(faster > 1, f"jsonl: sensor's dumps {faster:.1f}x json.dumps")
    return goal(same == len(seed), f"jsonl: sensor's dumps writes json's text for {same} of {len(seed)} records")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--quick", action="store_true", help="2,000 JSON records instead of 10,000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--captures", type=Path, help="more captures whose records join the JSON lines sample")
    a = ap.parse_args()
    a.data.mkdir(parents=True, exist_ok=True)
    bench_start(a.data, a.runs)  # a time over the goal is reported, not an error: machines differ
    same = bench_jsonl(a.data, a.captures, 2_000 if a.quick else 10_000, a.runs)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
