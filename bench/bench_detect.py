"""Detector throughput and recall against the `yara` CLI, on random+magics and on a mixed corpus.

    python bench/bench_detect.py DATA_DIR [--size-mb 256] [--engines yara-x,yara-python] [--quick]

Generates the corpora into DATA_DIR with gencorpus.py when missing (DATA_DIR/random-<N>m-s<seed>/ and
DATA_DIR/mixed-<N>m-s<seed>/, each holding files/ and truth.json), then for each case:

- `yara -w -r -p 1 NS:signatures/X.yar ... CASE/files`: whole-process wall time, 1 warm-up then the
  median of --runs timed runs; the CLI does match only, no verification. Its raw matches are counted
  from the timed run's output (rule x file lines) and from one extra untimed `-s` run (string hits);
- stagewatch's Detector in this process, per engine: reading each file (from the page cache) and
  scanning it, 1 warm-up then the median of --runs. Detector construction is timed apart (cold: rule
  compile into an empty cache under DATA_DIR; warm: cached load) and not included.

Recall counts truth members found at the right offset with the right sha256 and format (base64 runs:
found under a base64 layer with the member's sha256); false positives are verified findings that
match no truth entry. For the random file every verified finding is a false positive.
MB = 10^6 bytes. Details go to DATA_DIR/report-<case>.json.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]

import gencorpus  # noqa: E402
from loguru import logger  # noqa: E402

from sensor.config import Settings  # noqa: E402
from sensor.content import decoders  # noqa: E402
from sensor.detect.detector import Detector  # noqa: E402
from sensor.detect.verifiers import Context  # noqa: E402
from sensor.model import Candidate, ContentObject, FileOrigin  # noqa: E402
from sensor.stats import RunStats  # noqa: E402

MB = 1e6
YARA = "/usr/bin/yara"


# -- corpora ---------------------------------------------------------------------------------------
def ensure_corpus(data_dir: Path, mode: str, size_mb: float, seed: int) -> tuple[Path, dict]:
    d = data_dir / f"{mode}-{size_mb:g}m-s{seed}"
    if (d / "truth.json").is_file():
        return d, json.loads((d / "truth.json").read_text())
    if d.exists():
        shutil.rmtree(d)  # an interrupted generation (truth.json is written last)
    t0 = time.monotonic()
    if mode == "random":
        truth = gencorpus.gen_random(d, size_mb, seed, quiet=True)
    else:
        truth = gencorpus.gen_mixed(d, size_mb, seed, quiet=True)
    print(f"  generated {d} ({truth['summary']['bytes']:,} B) in {time.monotonic() - t0:.1f} s", flush=True)
    return d, truth


# -- yara CLI --------------------------------------------------------------------------------------
def yara_cmd(files_dir: Path, extra: tuple[str, ...] = ()) -> list[str]:
    rules = [f"{p.stem}:{p}" for p in sorted((REPO / "signatures").glob("*.yar"))]
    return [YARA, "-w", "-r", "-p", "1", *extra, *rules, str(files_dir)]


def time_cli(files_dir: Path, runs: int) -> tuple[list[float], int, int]:
    """Wall times of the timed runs, rule x file matches, string hits (one extra -s run)."""
    walls: list[float] = []
    out = b""
    for i in range(runs + 1):
        t0 = time.perf_counter()
        p = subprocess.run(yara_cmd(files_dir), capture_output=True, check=False)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"yara CLI failed ({p.returncode}): {p.stderr.decode(errors='replace')[:500]}")
        if i:
            walls.append(wall)
        out = p.stdout
    rule_matches = sum(1 for line in out.splitlines() if line.strip())
    p = subprocess.run(yara_cmd(files_dir, ("-s",)), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    string_hits = sum(1 for line in p.stdout.splitlines() if line.startswith(b"0x"))
    return walls, rule_matches, string_hits


# -- stagewatch ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hit:
    file: str
    format: str
    offset: int
    length: int
    sha256: str
    encoding: tuple[str, ...]
    encoding_offset: int | None
    proof: str
    checksum: str
    truncated: bool
    rule: str

    def brief(self) -> str:
        enc = f" in {'/'.join(self.encoding)} run at {self.encoding_offset}" if self.encoding else ""
        return (
            f"{self.file} @{self.offset}{enc}: {self.format} len {self.length}, proof {self.proof}, "
            f"checksum {self.checksum}{', truncated' if self.truncated else ''}, rule {self.rule}"
        )


def corpus_files(case_dir: Path) -> list[Path]:
    return sorted(p for p in (case_dir / "files").iterdir() if p.is_file())


def scan_corpus(det: Detector, files: list[Path], root: Path) -> list[Hit]:
    hits: list[Hit] = []
    for p in files:
        st = os.stat(p)
        with open(p, "rb") as f:
            data = f.read()
        origin = FileOrigin(str(p), st.st_size, st.st_mtime, owner=None, host="bench", root=str(root))
        for fd in det.scan(ContentObject(origin, data, name=p.name)):
            m = fd.member
            hits.append(
                Hit(
                    p.name,
                    str(m.format),
                    m.offset,
                    m.length,
                    m.sha256,
                    fd.encoding,
                    fd.encoding_offset,
                    str(m.proof),
                    str(m.checksum),
                    m.truncated,
                    fd.rule,
                )
            )
    return hits


@dataclass
class EngineRun:
    engine: str
    construct_cold: float
    construct_warm: float
    walls: list[float] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    stats: RunStats | None = None
    counts: list[int] = field(default_factory=list)


def time_detector(engine: str, case_dir: Path, data_dir: Path, runs: int) -> tuple[EngineRun, Detector]:
    cache = data_dir / "rule-cache" / engine
    shutil.rmtree(cache, ignore_errors=True)
    settings = Settings(engine=engine, cache_dir=cache, observer="bench")
    t0 = time.perf_counter()
    Detector(settings)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    det = Detector(settings)
    warm = time.perf_counter() - t0
    er = EngineRun(engine, cold, warm)
    files = corpus_files(case_dir)
    for i in range(runs + 1):
        det.stats = RunStats()
        t0 = time.perf_counter()
        hits = scan_corpus(det, files, case_dir / "files")
        wall = time.perf_counter() - t0
        er.counts.append(len(hits))
        if i == 0:
            er.hits, er.stats = hits, det.stats
        else:
            er.walls.append(wall)
    return er, det


# -- evaluation ------------------------------------------------------------------------------------
@dataclass
class Evaluation:
    found: list[dict] = field(default_factory=list)
    missed: list[dict] = field(default_factory=list)
    wrong: list[tuple[Hit, dict]] = field(default_factory=list)  # right place, wrong length/format
    fps: list[Hit] = field(default_factory=list)
    duplicates: list[Hit] = field(default_factory=list)
    b64_offset_delta: Counter[int] = field(default_factory=Counter)


def evaluate(truth: dict, hits: list[Hit]) -> Evaluation:
    ev = Evaluation()
    raw: dict[tuple[str, int], list[int]] = defaultdict(list)
    b64: dict[tuple[str, str], list[int]] = defaultdict(list)
    members = truth["members"]
    for i, m in enumerate(members):
        if m.get("encoding") == "base64":
            b64[(m["file"], m["sha256"])].append(i)
        else:
            raw[(m["file"], m["offset"])].append(i)
    got: set[int] = set()
    for h in hits:
        if not h.encoding:
            idx = raw.get((h.file, h.offset), [])
            ok = [i for i in idx if members[i]["sha256"] == h.sha256 and members[i]["format"] == h.format]
            if ok:
                (ev.duplicates.append(h) if ok[0] in got else got.add(ok[0]))
            elif idx:
                ev.wrong.append((h, members[idx[0]]))
            else:
                ev.fps.append(h)
        elif h.encoding == ("base64",):
            idx = [i for i in b64.get((h.file, h.sha256), []) if members[i]["format"] == h.format]
            free = [i for i in idx if i not in got]
            if free:
                i = min(free, key=lambda i: abs(members[i]["offset"] - (h.encoding_offset or 0)))
                got.add(i)
                ev.b64_offset_delta[(h.encoding_offset or 0) - members[i]["offset"]] += 1
            elif idx:
                ev.duplicates.append(h)
            else:
                near = [
                    m
                    for m in members
                    if m["file"] == h.file
                    and m.get("encoding") == "base64"
                    and m["offset"] - 16 <= (h.encoding_offset or -1) < m["offset"] + m["run_length"]
                ]
                (ev.wrong.append((h, near[0])) if near else ev.fps.append(h))
        else:
            ev.fps.append(h)
    for i, m in enumerate(members):
        (ev.found if i in got else ev.missed).append(m)
    return ev


def member_of_run(data: bytes, m: dict) -> bytes:
    run = data[m["offset"] : m["offset"] + m["run_length"]]
    return base64.b64decode(run.replace(b"\n", b""))


def verdict(det: Detector, data: bytes, off: int, fmt: str, length: int, where: str) -> str:
    """How the detector's own stages treat the member at `off` when asked directly."""
    cands, _ = det.candidates(data, where)
    at = [c for c in cands if c.offset == off]
    if not at:
        near = sorted({c.format.value for c in cands if abs(c.offset - off) <= 16})
        return "no YARA candidate at the offset" + (f" (nearby: {near})" if near else "")
    c = next((c for c in at if c.format.value == fmt), at[0])
    v = det.verifiers[c.format].verify(data, Candidate(c.rule, c.format, off), Context(det.limits, where, True))
    if v is None:
        return f"candidate {c.rule} rejected by the {c.format} verifier"
    if v.length != length:
        return f"{c.format} verifier gives length {v.length} (truth {length}), proof {v.proof}"
    return f"verifies alone ({v.proof}, checksum {v.checksum})"


def diagnose(det: Detector, case_dir: Path, ev: Evaluation, hits: list[Hit]) -> list[str]:
    """What happened to each missed member: no candidate, rejected, wrong length or shadowed."""
    lines = []
    by_file: dict[str, list[dict]] = defaultdict(list)
    for m in ev.missed:
        by_file[m["file"]].append(m)
    wrong = {(w[1]["file"], w[1]["offset"]): w[0] for w in ev.wrong}
    for name, ms in sorted(by_file.items()):
        data = (case_dir / "files" / name).read_bytes()
        where = str(case_dir / "files" / name)
        _, hints = det.candidates(data, where)
        file_hits = [h for h in hits if h.file == name and not h.encoding]
        for m in sorted(ms, key=lambda m: m["offset"]):
            head = (
                f"{name} @{m['offset']} {m['format']} ({m['writer']}, "
                f"{m['plain']} {m['plain_length']} B -> {m['length']} B)"
            )
            w = wrong.get((name, m["offset"]))
            if m.get("encoding") == "base64":
                end = m["offset"] + m["run_length"]
                before = data[max(0, m["offset"] - 24) : m["offset"]]
                hs = [h for h in hints if m["offset"] - 4 <= h.offset < end]
                what = f"base64 run [{m['offset']},{end}) context {m['context']!r} preceded by {before!r}: "
                if not hs:
                    lines.append(head + ": " + what + "no base64 hint inside the run")
                    continue
                member = member_of_run(data, m)
                parts = []
                for p in decoders.get("base64")().peel(data, hs[0].offset, det.limits.max_encoded):
                    at = p.data.find(member)
                    if at < 0:
                        parts.append(f"[{p.start},{p.end}) lacks the member")
                    else:
                        v = verdict(det, p.data, at, m["format"], m["length"], f"{where} [base64@{p.start}]")
                        parts.append(f"[{p.start},{p.end}) holds it at {at}: {v}")
                desc = "; ".join(parts) or "nothing"
                if w is not None:
                    desc += f"; reported instead: {w.brief()}"
                lines.append(head + ": " + what + f"hint at {hs[0].offset}; peeled {desc}")
                continue
            off = m["offset"]
            if w is not None:
                lines.append(head + f": reported with other bounds: {w.brief()}")
                continue
            cover = [h for h in file_hits if h.offset < off < h.offset + max(h.length, 1)]
            v = verdict(det, data, off, m["format"], m["length"], where)
            if cover:
                v += f"; the offset lies inside the span of {cover[0].brief()}"
            lines.append(head + ": " + v)
    return lines


def plant_table(plants: list[dict], hits: list[Hit]) -> dict[str, list[int]]:
    """Per planted variant: [planted, verified at the plant, lying inside an earlier finding's span]."""
    spans = sorted((h.offset, h.offset + h.length) for h in hits if not h.encoding)
    starts = [a for a, _ in spans]
    at = {h.offset for h in hits if not h.encoding}
    table: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for p in plants:
        row = table[p["variant"]]
        row[0] += 1
        if p["offset"] in at:
            row[1] += 1
            continue
        i = bisect.bisect_right(starts, p["offset"]) - 1
        if i >= 0 and spans[i][0] < p["offset"] < spans[i][1]:
            row[2] += 1
    return dict(sorted(table.items()))


def describe_fp(h: Hit, truth: dict, plants: list[dict], plant_offsets: list[int]) -> str:
    if plants:
        i = bisect.bisect_right(plant_offsets, h.offset) - 1
        if i >= 0 and plants[i]["offset"] == h.offset:
            return f"planted {plants[i]['variant']}"
        dist = min(abs(h.offset - p) for p in plant_offsets[max(0, i - 1) : i + 2])
        return f"not at a plant (nearest plant {dist} B away)"
    inside = [
        m
        for m in truth["members"]
        if m["file"] == h.file
        and m["offset"]
        <= (h.encoding_offset if h.encoding else h.offset)
        < m["offset"] + m.get("run_length", m["length"])
    ]
    if inside:
        m = inside[0]
        return f"inside planted {m['format']} ({m['writer']}) at {m['offset']}"
    return "in filler"


# -- report ----------------------------------------------------------------------------------------
def ratios(total: list[dict], found: list[dict], key: object) -> str:
    """'k found/total' per key, e.g. per format."""
    t = Counter(map(key, total))  # type: ignore[arg-type]
    f = Counter(map(key, found))  # type: ignore[arg-type]
    return ", ".join(f"{k} {f[k]}/{n}" for k, n in sorted(t.items()))


def code_digest() -> str:
    """sha256 over sensor/**/*.py and signatures/*.yar: which product tree was measured."""
    h = hashlib.sha256()
    for p in sorted([*(REPO / "sensor").rglob("*.py"), *(REPO / "signatures").glob("*.yar")]):
        h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", type=Path, help="scratch folder for corpora, rule cache and reports")
    ap.add_argument("--size-mb", type=float, default=256, help="size of both corpora in MiB (default 256)")
    ap.add_argument("--engines", default="yara-x,yara-python")
    ap.add_argument("--quick", action="store_true", help="32 MiB corpora (smoke run)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up (median reported)")
    ap.add_argument("--cases", default="random,mixed")
    a = ap.parse_args(argv)
    size = 32 if a.quick else a.size_mb
    engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    a.data_dir.mkdir(parents=True, exist_ok=True)
    logger.remove()
    log_counts: Counter[str] = Counter()

    def sink(msg: object) -> None:
        rec = msg.record  # type: ignore[attr-defined]
        log_counts[rec["level"].name] += 1
        if log_counts[rec["level"].name] <= 3:
            print(f"  [log {rec['level'].name}] {rec['message'][:200]}", file=sys.stderr)

    logger.add(sink, level="WARNING")
    t_start = time.monotonic()
    ver = subprocess.run([YARA, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"bench_detect: size {size:g} MiB, seed {a.seed}, engines {engines}, {a.runs} timed runs after 1 warm-up")
    print(
        f"yara CLI {ver} ({YARA}), python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"sensor+signatures digest {code_digest()}"
    )
    rows = []
    details = []
    for case in [c.strip() for c in a.cases.split(",") if c.strip()]:
        case_dir, truth = ensure_corpus(a.data_dir, case, size, a.seed)
        files = corpus_files(case_dir)
        nbytes = sum(p.stat().st_size for p in files)
        for p in files:  # into the page cache
            with open(p, "rb") as f:
                while f.read(1 << 24):
                    pass
        if case == "random":
            label = f"random {size:g} MiB + {len(truth['plants'])} magics"
        else:
            s = truth["summary"]
            label = f"mixed {size:g} MiB, {s['files']} files, {s['members']} members"
        print(f"\n== {label}: {nbytes:,} B in {len(files)} file(s) ({case_dir})", flush=True)
        walls, rule_matches, string_hits = time_cli(case_dir / "files", a.runs)
        y_wall = median(walls)
        y_mbs = nbytes / MB / y_wall
        print(
            f"  yara CLI: median {y_wall:.3f} s ({', '.join(f'{w:.3f}' for w in walls)}); "
            f"{rule_matches} rule x file matches, {string_hits} string hits (unverified)",
            flush=True,
        )
        rows.append(
            [
                label,
                f"yara {ver} CLI -p 1",
                f"{nbytes / MB:.1f}",
                f"{y_wall:.3f}",
                f"{y_mbs:.0f}",
                "1.00",
                f"({rule_matches} rule matches, {string_hits:,} string hits; no verification)",
                "",
                "",
            ]
        )
        plants = truth.get("plants", [])
        plant_offsets = [p["offset"] for p in plants]
        report: dict = {
            "case": case,
            "label": label,
            "bytes": nbytes,
            "yara_cli": {"walls": walls, "rule_matches": rule_matches, "string_hits": string_hits},
            "engines": {},
        }
        for engine in engines:
            er, det = time_detector(engine, case_dir, a.data_dir, a.runs)
            wall = median(er.walls)
            mbs = nbytes / MB / wall
            ev = evaluate(truth, er.hits)
            st = er.stats
            assert st is not None
            n_members = len(truth["members"])
            recall = f"{len(ev.found)}/{n_members}" if n_members else "-"
            if n_members:
                nb = sum(1 for m in truth["members"] if m.get("encoding") == "base64")
                fb = sum(1 for m in ev.found if m.get("encoding") == "base64")
                pct = 100 * len(ev.found) / n_members
                recall += f" ({pct:.1f}%; raw {len(ev.found) - fb}/{n_members - nb}, b64 {fb}/{nb})"
            print(
                f"  stagewatch {engine}: construct cold {er.construct_cold * 1000:.0f} ms / warm "
                f"{er.construct_warm * 1000:.1f} ms; scan median {wall:.3f} s "
                f"({', '.join(f'{w:.3f}' for w in er.walls)}); findings per run {er.counts}",
                flush=True,
            )
            print(
                f"    candidates {sum(st.candidates.values()):,} {dict(st.candidates)}; rejected "
                f"{sum(st.rejected.values()):,}; verified {dict(st.verified)}; limits {dict(st.limits)}; "
                f"errors {dict(st.errors)}"
            )
            if n_members:
                print("    recall by format: " + ratios(truth["members"], ev.found, lambda m: m["format"]))
                print(
                    "    base64 by context: "
                    + ratios(
                        [m for m in truth["members"] if m.get("encoding")],
                        [m for m in ev.found if m.get("encoding")],
                        lambda m: m["context"],
                    )
                )
            if case == "random":
                print(f"    >>> VERIFIED FINDINGS ON THE RANDOM+MAGICS FILE: {len(er.hits)} (expected 0) <<<")
            rows.append(
                [
                    label,
                    f"stagewatch {engine}",
                    f"{nbytes / MB:.1f}",
                    f"{wall:.3f}",
                    f"{mbs:.0f}",
                    f"{mbs / y_mbs:.2f}",
                    str(len(er.hits)),
                    recall,
                    str(len(ev.fps)),
                ]
            )
            fp_desc = [(h, describe_fp(h, truth, plants, plant_offsets)) for h in ev.fps]
            miss_lines = diagnose(det, case_dir, ev, er.hits) if ev.missed else []
            table = plant_table(plants, er.hits) if plants else {}
            details.append((label, engine, ev, fp_desc, miss_lines, table))
            report["engines"][engine] = {
                "construct_cold_s": er.construct_cold,
                "construct_warm_s": er.construct_warm,
                "walls": er.walls,
                "findings": len(er.hits),
                "found": len(ev.found),
                "members": n_members,
                "stats": st.as_dict(),
                "false_positives": [{"finding": h.__dict__, "where": d} for h, d in fp_desc],
                "wrong_bounds": [{"finding": h.__dict__, "truth": m} for h, m in ev.wrong],
                "duplicates": [h.__dict__ for h in ev.duplicates],
                "missed": miss_lines,
                "base64_offset_delta": dict(ev.b64_offset_delta),
                "plants_planted_verified_shadowed": table,
            }
        (a.data_dir / f"report-{case}.json").write_text(json.dumps(report, indent=1, default=str) + "\n")

    head = ["case", "tool", "MB", "wall s", "MB/s", "x yara", "verified", "recall (offset+sha256)", "FP"]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    widths[6] = max(len(head[6]), *(len(r[6]) for r in rows if not r[6].startswith("(")))
    print("\n" + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        if r[6].startswith("("):  # the CLI's match note spans the last columns
            print(" | ".join(str(c).ljust(w) for c, w in zip(r[:6], widths[:6], strict=True)) + " | " + r[6])
        else:
            print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    print(
        "MB = 10^6 B. x yara = stagewatch MB/s / yara CLI MB/s in this run. yara CLI: whole process incl. "
        "rule compile; stagewatch: in-process read + scan + verify, construction excluded."
    )

    for label, engine, ev, fp_desc, miss_lines, table in details:
        if not (ev.fps or ev.missed or ev.wrong or ev.duplicates):
            continue
        print(
            f"\n-- {label} / {engine}: {len(ev.fps)} false positive(s), {len(ev.missed)} missed, "
            f"{len(ev.wrong)} wrong bounds, {len(ev.duplicates)} duplicate(s)"
        )
        if ev.fps:
            by = Counter(f"{h.format} {d.split(' (')[0]}" for h, d in fp_desc)
            print("  false positives by kind: " + ", ".join(f"{k}: {v}" for k, v in by.most_common()))
            if table:
                print("  planted headers by variant: verified/planted (+ inside an earlier finding's span):")
                cells = [f"{v} {r[1]}/{r[0]}" + (f" (+{r[2]})" if r[2] else "") for v, r in table.items()]
                for i in range(0, len(cells), 6):
                    print("    " + ", ".join(cells[i : i + 6]))
            for h, d in fp_desc[:12]:
                print(f"    FP {h.brief()} <- {d}")
            if len(fp_desc) > 12:
                print(f"    ... {len(fp_desc) - 12} more in report-*.json")
        for h in ev.duplicates[:5]:
            print(f"    DUPLICATE {h.brief()}")
        if miss_lines:
            by_fmt = Counter(
                f"{m['format']}/{m['writer']}" + ("/b64-" + m["context"] if m.get("encoding") else "")
                for m in ev.missed
            )
            print("  missed by writer: " + ", ".join(f"{k}: {v}" for k, v in by_fmt.most_common()))
            for line in miss_lines[:40]:
                print(f"    MISS {line}")
            if len(miss_lines) > 40:
                print(f"    ... {len(miss_lines) - 40} more in report-*.json")
        if ev.b64_offset_delta and any(k for k in ev.b64_offset_delta):
            print(f"  base64 runs found with the layer offset off the run start by: {dict(ev.b64_offset_delta)}")
    if log_counts:
        print(f"\nlog records from the detector: {dict(log_counts)}")
    print(f"\ntotal bench time {time.monotonic() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
