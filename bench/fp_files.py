"""Real files through the detector, to count what the magic-less formats' rules and verifiers make of them.

    python bench/fp_files.py PATH... [--formats lznt1,xpress,xpress_huffman]

Scans PATHs as staged files (every file of a system's /usr/lib/python3, /usr/share/doc... is benign), and
prints the files and bytes read, the wall time, the candidates and verified members of the chosen formats and
the time their verifiers spent; each verified member of those formats is listed: on benign files each one is
a false positive. The rules are compiled into a cache under the system's temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sensor.config import Settings  # noqa: E402
from sensor.detect.verifiers import verifiers  # noqa: E402
from sensor.model import Finding, Format  # noqa: E402
from sensor.pipeline import Job, scan_inputs  # noqa: E402
from sensor.stats import RunStats  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--formats", default="lznt1,xpress,xpress_huffman")
    a = ap.parse_args()
    formats = a.formats.split(",")
    spent: Counter[str] = Counter()
    for name in formats:
        cls = verifiers.get(Format(name))
        verify = cls.verify

        def timed(self, data, cand, ctx, verify=verify, name=name):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return verify(self, data, cand, ctx)
            finally:
                spent[name] += time.perf_counter() - t

        cls.verify = timed  # type: ignore[method-assign]
    stats = RunStats()
    settings = Settings(cache_dir=Path(tempfile.gettempdir()) / "stagewatch-fp-files-cache")
    started = time.perf_counter()
    found = [r for r in scan_inputs(Job(tuple(a.paths), settings), stats) if isinstance(r, Finding)]
    wall = time.perf_counter() - started
    print(f"{stats.files:,} files, {stats.bytes / 1e6:,.0f} MB, {wall:.1f} s")
    for name in formats:
        print(f"  {name}: {stats.candidates[name]:,} candidates, {stats.verified[name]:,} verified, "
              f"verifier {spent[name]:.2f} s")  # fmt: skip
    for f in found:
        if f.member.format.value in formats:
            print(f"  VERIFIED {f.member.format.value} {getattr(f.origin, 'path', '?')} offset {f.member.offset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
