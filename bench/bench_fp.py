"""How fast the detector gives up on hostile input: a bzip2 bomb, a rule past its timeout, a cut zip entry.

    python bench/bench_fp.py DATA_DIR [--quick] [--runs N] [--engines yara-x,yara-python]

The three timing checks that tests/test_false_positives.py used to assert, measured here instead.
Each case scans the same bytes as its test, through a Detector in this process (rules compiled
into a cache under DATA_DIR before timing), 1 warm-up then the median of --runs (1 with --quick),
per engine, beside a peer timed in the same run on the same bytes:

- bz2 bomb: 2 GiB of zeros in about 1.5 KB (generated once into DATA_DIR), default limits
  (max_ratio 1000); peer: the bz2 module decoding the same bytes to the same output size the
  detector reached before the ratio cap stopped it. Without --quick, the bz2 module decoding
  the whole bomb too, which is what the cap saves;
- a rule that loops past `yara_timeout = 1` (bundled rules + slow.yar) over 1,000 random bytes;
  no peer does this job, so the ratio is against the setting (1.00x: it gave up on time), and the
  same bytes under the bundled rules alone are timed beside it (the `limit` column);
- a zip cut at a third, whose entry's compressed size runs past the data; peer: the zlib module
  inflating the same entry bytes (raw deflate, to the end of the data).

Ratios are the detector's wall over the peer's (or the setting's); `output B` is what the peer
decoded (for the bomb, the same as the detector before its cap). The goals are the bounds the
tests asserted: a hang or a full inflate would miss them by minutes. Exit 1 when one is missed.
"""

from __future__ import annotations

import argparse
import bz2
import io
import random
import shutil
import statistics
import struct
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]

from benchkit import goal, print_table  # noqa: E402

from sensor.config import Limits, Settings  # noqa: E402
from sensor.detect.detector import Detector  # noqa: E402
from sensor.detect.engines import bundled_rules_dir  # noqa: E402
from sensor.model import ContentObject, FileOrigin, Finding, Limit  # noqa: E402

BOMB_GIB = 2
YARA_TIMEOUT = 1  # seconds, as in the test
SLOW_RULE = (
    'rule slow_loop { meta: role = "flag" condition: for any i in (0..2000000000) : ( uint8(i % 64) == 0x100 ) }\n'
)
GOALS = {"bomb": 30.0, "slow rule": 20.0, "cut zip": 5.0}  # seconds: the old test bounds


# -- inputs ----------------------------------------------------------------------------------------
def bomb(data_dir: Path) -> bytes:
    """2 GiB of zeros, bzip2 -9 (as the test builds it); about 13 s to make, so kept in DATA_DIR."""
    path = data_dir / f"fp-bomb-{BOMB_GIB}g.bz2"
    if path.is_file():
        return path.read_bytes()
    t0 = time.monotonic()
    c = bz2.BZ2Compressor(9)
    chunk = bytes(1 << 20)
    out = b"".join(c.compress(chunk) for _ in range(BOMB_GIB << 10)) + c.flush()
    path.write_bytes(out)
    print(f"  generated {path} ({len(out):,} B) in {time.monotonic() - t0:.1f} s", flush=True)
    return out


def sample_text(n: int, seed: int) -> bytes:
    """`n` bytes of compressible CSV-like lines."""
    r = random.Random(seed)
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
    out = bytearray()
    while len(out) < n:
        who = r.choice(names)
        out += f"{r.randrange(10**6)},{who},{who}@example.com,{r.randrange(100, 99999) / 100:.2f}\n".encode()
    return bytes(out[:n])


def cut_zip() -> tuple[bytes, int]:
    """A one-entry deflate zip cut at a third (the test's case), and where its entry data starts."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.txt", sample_text(50_000, 3))
    member = buf.getvalue()
    name_len, extra_len = struct.unpack("<HH", member[26:30])
    return member[: len(member) // 3], 30 + name_len + extra_len


def slow_rules(data_dir: Path) -> Path:
    rules = data_dir / "fp-rules"
    shutil.rmtree(rules, ignore_errors=True)
    shutil.copytree(bundled_rules_dir(), rules)
    (rules / "slow.yar").write_text(SLOW_RULE)
    return rules


# -- timing ----------------------------------------------------------------------------------------
def timed(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    """Median wall of `runs` calls after one warm-up, and the last call's result."""
    result = fn()
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), result


def scanner(det: Detector, data: bytes, name: str) -> Callable[[], list[Finding]]:
    origin = FileOrigin("/srv/bench/" + name, len(data), 1_700_000_000.0, "bench", "bench", "/srv")
    return lambda: list(det.scan(ContentObject(origin=origin, data=data, name=name)))


def one(findings: object) -> Finding:
    assert isinstance(findings, list) and len(findings) == 1, findings
    return findings[0]


def ms(s: float) -> str:
    return f"{s * 1000:.3f}"


# -- cases -----------------------------------------------------------------------------------------
def case_bomb(det: Detector, data: bytes, runs: int, full: bool) -> list[tuple[list[str], str, float]]:
    wall, found = timed(scanner(det, data, "bomb.bz2"), runs)
    f = one(found)
    out = f.member.inner.size
    limits = ",".join(h.limit.value for h in f.member.limits) or "-"
    peer, _ = timed(lambda: bz2.BZ2Decompressor().decompress(data, max_length=out), runs)
    rows = [([f"{len(data):,}", f"{out:,}", limits, ms(wall), "bz2 module, same output", ms(peer)], "bomb", wall)]
    rows[0][0].append(f"{wall / peer:.2f}x")
    if full:

        def whole() -> int:
            d, n = bz2.BZ2Decompressor(), 0
            n += len(d.decompress(data, max_length=64 << 20))
            while not d.eof:
                n += len(d.decompress(b"", max_length=64 << 20))
            return n

        t0 = time.perf_counter()
        total = whole()  # once: it is seconds long
        peer_all = time.perf_counter() - t0
        cells = [f"{len(data):,}", f"{total:,}", "-", ms(wall), "bz2 module, whole bomb", ms(peer_all)]
        rows.append(([*cells, f"{wall / peer_all:.3f}x"], "", 0.0))
    return rows


def case_slow_rule(
    engine: str, rules: Path, cache: Path, plain: Detector, runs: int
) -> list[tuple[list[str], str, float]]:
    limits = Limits(yara_timeout=YARA_TIMEOUT)
    det = Detector(Settings(engine=engine, observer="bench", rules_dir=rules, cache_dir=cache, limits=limits))
    data = random.Random(1).randbytes(1000)
    before = det.stats.limits[Limit.TIME]
    wall, found = timed(scanner(det, data, "blob.dat"), runs)
    assert found == [], found
    hits = det.stats.limits[Limit.TIME] - before
    assert hits == runs + 1, hits  # every run stopped at the timeout
    alone, _ = timed(scanner(plain, data, "blob.dat"), max(runs, 5))
    cells = [f"{len(data):,}", "-", f"time (rules alone {ms(alone)} ms)", ms(wall)]
    setting = YARA_TIMEOUT
    return [([*cells, f"yara_timeout = {setting} s", ms(setting), f"{wall / setting:.2f}x"], "slow rule", wall)]


def case_cut_zip(det: Detector, runs: int) -> list[tuple[list[str], str, float]]:
    cut, start = cut_zip()
    wall, found = timed(scanner(det, cut, "cut.zip"), max(runs, 5))
    f = one(found)
    assert f.member.truncated and f.member.offset == 0, f.member
    peer, inflated = timed(lambda: zlib.decompressobj(-15).decompress(cut[start:]), max(runs, 5))
    assert isinstance(inflated, bytes)
    cells = [f"{len(cut):,}", f"{len(inflated):,}", "- (truncated)", ms(wall), "zlib module, same entry bytes"]
    return [([*cells, ms(peer), f"{wall / peer:.0f}x"], "cut zip", wall)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", type=Path, help="scratch folder for the bomb, the rule copy and the rule cache")
    ap.add_argument("--quick", action="store_true", help="1 timed run, no whole-bomb peer")
    ap.add_argument("--runs", type=int, default=5, help="timed runs after one warm-up (median reported)")
    ap.add_argument("--engines", default="yara-x,yara-python")
    a = ap.parse_args(argv)
    runs = 1 if a.quick else a.runs
    engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    a.data_dir.mkdir(parents=True, exist_ok=True)
    cache = a.data_dir / "fp-cache"
    data = bomb(a.data_dir)
    rules = slow_rules(a.data_dir)
    print(f"bench_fp: engines {engines}, median of {runs} timed run(s) after 1 warm-up (small cases: at least 5)")
    rows: list[list[str]] = []
    ok = True
    for engine in engines:
        det = Detector(Settings(engine=engine, observer="bench", cache_dir=cache))
        results = [
            *case_bomb(det, data, runs, full=not a.quick and engine == engines[0]),
            *case_slow_rule(engine, rules, cache, det, runs),
            *case_cut_zip(det, runs),
        ]
        names = {"bomb": "bz2 bomb (2 GiB of zeros)", "slow rule": "rule past yara_timeout", "cut zip": "cut zip"}
        for cells, key, wall in results:
            rows.append([names.get(key, ""), engine, *cells])
            if key:
                ok &= goal(wall < GOALS[key], f"{engine}: {names[key]} in {wall:.3f} s < {GOALS[key]:g} s")
    print()
    print_table(
        ["case", "engine", "input B", "output B", "limit", "stagewatch ms", "peer", "peer ms", "ratio"],
        rows,
        "llrrlrlrr",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
