"""The fuzz targets (fuzz/targets.py) in `make test`: each replays its seeds (fuzz/seeds.py) and its checked-in
regression inputs (fuzz/corpus/<target>/, every input a fuzzer once failed on), then fuzzes for 2 s under
atheris. `make fuzz FUZZ_SECONDS=600` is the long run, with the compiled core built for coverage and ASan."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fuzz.targets import TARGETS  # noqa: E402

SECONDS = 2


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fuzz-seeds")
    subprocess.run([sys.executable, str(ROOT / "fuzz" / "seeds.py"), str(out)], check=True, timeout=300)
    return out


def _dirs(seeds: Path, name: str) -> list[str]:
    regressions = ROOT / "fuzz" / "corpus" / name
    return [str(p) for p in (seeds / name, regressions) if p.is_dir()]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_seed_and_regression_input_passes(seeds, name):
    """Each input once, without atheris: the regression inputs must keep passing whatever the fuzzer does."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "run.py"), name, "--replay", *_dirs(seeds, name)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "no failure" in done.stderr


def _fuzz(seeds: Path, name: str, work: Path) -> subprocess.CompletedProcess:
    corpus = work / "corpus"
    corpus.mkdir(parents=True)
    cmd = [
        sys.executable, str(ROOT / "fuzz" / "run.py"), name, str(corpus), *_dirs(seeds, name),
        f"-max_total_time={SECONDS}", "-timeout=1", "-rss_limit_mb=2048", f"-artifact_prefix={work}/",
        "-print_final_stats=1",
    ]  # fmt: skip
    env = {**os.environ, "STAGEWATCH_FUZZ_SCRATCH": str(work)}
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired as e:  # one stuck target fails its own test, not the others'
        return subprocess.CompletedProcess(cmd, 1, "", f"{name}: no end after {e.timeout} s")


@pytest.fixture(scope="module")
def fuzzed(
    seeds: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """Every target's short run, as many at once as there are cores: each spends most of its 7 s instrumenting
    the sensor's modules on one core, and the test suite itself uses one (the smoke runs were half of make test)."""
    pytest.importorskip("atheris", reason="atheris (the test extra) runs the fuzz targets")
    root = tmp_path_factory.mktemp("fuzz-runs")
    names = sorted(TARGETS)
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        runs = pool.map(lambda n: _fuzz(seeds, n, root / n), names)
        return {n: (root / n, done) for n, done in zip(names, runs, strict=True)}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_two_seconds_of_fuzzing_find_nothing(fuzzed, name):
    """libFuzzer through atheris from the seeds; a crash, a mismatch between the cores, an exception the target
    does not allow, a 1 s input or 2 GiB of RSS fails, and the input is left in the run's folder."""
    work, done = fuzzed[name]
    tail = "\n".join(done.stderr.splitlines()[-25:])
    assert done.returncode == 0, f"{work}: {tail}"
    runs = [line for line in done.stderr.splitlines() if line.startswith("stat::number_of_executed_units")]
    assert runs and int(runs[0].split(":")[-1]) > 0, tail
