"""Helpers the bench scripts share: file hashing and warming, the report table, the stagewatch command."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sha256_file(p: Path) -> str:
    """sha256 of a file read in 16 MiB chunks."""
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def warm(paths: Iterable[Path]) -> None:
    """Read each file once so every timed run starts from the page cache."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


def where(path: str) -> str:
    """A profiler's file path shortened to repo-relative or package-relative."""
    if path.startswith(str(REPO) + "/"):
        return path[len(str(REPO)) + 1 :]
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    return Path(path).name if path.startswith("/") else path


def print_table(head: list[str], rows: list[list[str]], align: str) -> None:
    """`align` has one letter per column: l(eft) or r(ight)."""
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip())
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        cells = zip(r, widths, align, strict=True)
        print(" | ".join(str(c).rjust(w) if al == "r" else str(c).ljust(w) for c, w, al in cells).rstrip())


def goal(ok: bool, text: str) -> bool:
    """Print one goal line as PASS or FAIL and return whether it passed."""
    print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return ok


def stagewatch_cmd() -> list[str]:
    """The installed `stagewatch` beside this interpreter, else `python -m sensor`."""
    script = Path(sys.executable).parent / "stagewatch"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sensor"]
