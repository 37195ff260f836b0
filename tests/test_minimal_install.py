"""`pip install stagewatch` without extras, in a fresh virtualenv: the same findings as the full install, and
the fleet features that need an extra (--dask, PostgreSQL) fail with one line naming it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sensor.cli import main as cli_main
from tests.builders import gzip_named, sample_text, zlib_member
from tests.netbuild import BASE_TIME, Conv, interleave, segments, write_pcap

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv holding stagewatch and its required dependencies only."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT)],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        pytest.skip(f"pip could not install stagewatch from the package registry: {pip.stderr.strip()[-300:]}")
    return venv


def without_created(lines: str) -> list[dict]:
    out = []
    for line in lines.splitlines():
        r = json.loads(line)
        del r["event"]["created"]  # the wall-clock time the finding was made
        out.append(r)
    return sorted(out, key=lambda r: r["event"]["id"])


def test_no_extras_scans_the_same_and_names_missing_extras(bare, tmp_path, rule_cache):
    for module in ("distributed", "psycopg"):
        probe = subprocess.run([str(bare / "bin/python"), "-c", f"import {module}"], capture_output=True)
        assert probe.returncode != 0, f"{module} is installed without its extra"
    pcap = write_pcap(
        tmp_path / "up.pcap",
        interleave(
            segments(Conv("10.0.0.5", 40001, "198.51.100.9", 443, sends=[("c2s", zlib_member(sample_text(9000, 1)))])),
            segments(
                Conv("10.0.0.6", 40002, "198.51.100.9", 80, start=BASE_TIME + 1, sends=[
                    ("c2s", b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body := gzip_named(
                        sample_text(20000, 2), "db.sql"))),
                    ("c2s", body),
                    ("s2c", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
                ])
            ),
        ),
    )  # fmt: skip
    cfg = tmp_path / "sw.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "test"\nobserver_ip = ["10.0.0.2"]\n')
    args = ["-q", "scan", str(pcap), "--no-db", "--config", str(cfg), "--home-net", "10.0.0.0/8"]
    full = tmp_path / "full.jsonl"
    assert cli_main([*args, "--jsonl", str(full)]) == 0
    run = subprocess.run([str(bare / "bin/stagewatch"), *args, "--jsonl", "-"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    got, expected = without_created(run.stdout), without_created(full.read_text())
    assert len(expected) == 2 and got == expected
    dask = subprocess.run(
        [str(bare / "bin/stagewatch"), *args, "--segment-size", "1", "--dask", "tcp://127.0.0.1:1"],
        capture_output=True,
        text=True,
    )
    assert dask.returncode == 2 and "pip install 'stagewatch[dask]'" in dask.stderr.strip().splitlines()[-1]
    pg = subprocess.run(
        [str(bare / "bin/stagewatch"), "-q", "scan", str(pcap), "--db", "postgresql+psycopg://sw@127.0.0.1:1/sw"],
        capture_output=True,
        text=True,
    )
    assert pg.returncode == 1 and "pip install 'stagewatch[postgres]'" in pg.stderr.strip().splitlines()[-1]


def test_pip_install_builds_the_compiled_core_and_the_reference_stays_selectable(bare):
    version = subprocess.run([str(bare / "bin/stagewatch"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "compiled core (Cython)" in version.stdout, version.stdout + version.stderr
    env = {"STAGEWATCH_NO_EXTENSIONS": "1", "PATH": "/usr/bin:/bin"}
    ref = subprocess.run([str(bare / "bin/stagewatch"), "--version"], capture_output=True, text=True, env=env)
    assert "Python reference core (STAGEWATCH_NO_EXTENSIONS is set)" in ref.stdout
