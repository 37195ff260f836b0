"""Run one fuzz target (fuzz/targets.py) under atheris, or replay inputs through it.

    python fuzz/run.py list
    python fuzz/run.py TARGET [CORPUS_DIR...] [-max_total_time=60 -timeout=1 -rss_limit_mb=2048 ...]
    python fuzz/run.py TARGET --replay FILE_OR_DIR...

Under atheris the sensor's Python is instrumented for coverage; the compiled core is instrumented by its
build (`make fuzz` builds it with clang `-fsanitize=address,undefined,fuzzer-no-link` and preloads atheris'
ASan runtime). libFuzzer's flags pass through. An exception the target does not allow, a mismatch between
the compiled core and its reference, a crash, a sanitizer report, a timeout or the RSS limit stops the run
with the input written as crash-*/timeout-*/oom-* (libFuzzer's artifacts); `--replay` runs each input once
without atheris (regression inputs in tests, and a crash found elsewhere) and exits 1 on the first failure.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _inputs(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        out += sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    return out


def replay(name: str, paths: list[str]) -> int:
    from fuzz.targets import TARGETS

    t = TARGETS[name]
    runs = 0
    for path in _inputs(paths):
        try:
            t.run(path.read_bytes())
        except t.allowed:
            pass
        except Exception as e:  # noqa: BLE001 - the point: anything else is a finding
            print(f"{name}: {path}: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        runs += 1
    print(f"{name}: {runs} inputs replayed, no failure", file=sys.stderr)
    return 0


def fuzz(name: str, argv: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["sensor", "fuzz"]):
        import importlib
        import pkgutil

        import sensor
        from fuzz.targets import TARGETS

        if name not in TARGETS:
            sys.exit(f"unknown target {name!r}; targets: {', '.join(sorted(TARGETS))}")
        t = TARGETS[name]
        # the target's modules now, under the instrumentation: targets import theirs lazily, after this block
        wanted = tuple(m if m == "sensor" else m + "." for m in t.modules)
        for mod in pkgutil.walk_packages(sensor.__path__, "sensor."):
            if mod.name.startswith(("sensor._", "sensor.cli")):
                continue
            if "sensor" in t.modules or mod.name.startswith(wanted) or mod.name in t.modules:
                importlib.import_module(mod.name)
        if name in ("http", "smtp", "ftp", "detect"):
            from fuzz.targets import detector

            detector()  # compile the rules before the clock starts

    allowed = t.allowed

    def one(data: bytes) -> None:
        with contextlib.suppress(allowed):
            t.run(data)

    atheris.Setup([sys.argv[0], *argv], one)
    atheris.Fuzz()


def main() -> int:
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 2
    name, rest = args[0], args[1:]
    if name != "list" and rest[:1] != ["--replay"]:
        fuzz(name, rest)  # first: the sensor's modules must be imported under atheris' instrumentation
        return 0
    from fuzz.targets import TARGETS

    if args[0] == "list":
        print("\n".join(sorted(TARGETS)))
        return 0
    if name not in TARGETS:
        print(f"unknown target {name!r}; targets: {', '.join(sorted(TARGETS))}", file=sys.stderr)
        return 2
    return replay(name, rest[1:])


if __name__ == "__main__":
    sys.exit(main())
