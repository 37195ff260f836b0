"""A start imports what its command needs, when it needs it: `scan --no-db` of one staged file loads no store,
no Sigma, no report, no Dask, no capture library and (with -q) no rich. Each command runs in a fresh
interpreter, whose sys.modules is then read; nothing here is timed (bench/bench_start.py times it).
Also: JSON lines written with orjson are the text json wrote, and json takes over without orjson.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sensor.cli import build_parser
from sensor.output.jsonl import dumps

# Runs the CLI in this interpreter, then writes {"code": exit status, "modules": sys.modules' names} to argv[1].
PROBE = """
import json, sys
from sensor.cli import main
try:
    code = main(sys.argv[2:])
except SystemExit as e:  # --version and usage errors exit from argparse
    code = e.code
with open(sys.argv[1], "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""

# Never for a scan of a staged file without the store: what --db, host events, a capture, `report`,
# `correlate`, --dask or live capture bring.
NOT_FOR_A_FILE_SCAN = (
    "sigma",
    "sensor.hostrules.sigma",
    "dask",
    "distributed",
    "psycopg",
    "sqlalchemy",
    "sensor.store",
    "sensor.output.report",
    "sensor.output.explain",
    "sensor.correlate",
    "scapy",
    "dpkt",
    "sensor.netscan",
    "sensor.capture.live",
    "watchdog",
    "rich",  # -q: no progress, no tables
)


def imported(tmp_path: Path, *args: str) -> tuple[object, set[str]]:
    out = tmp_path / "probe.json"
    subprocess.run([sys.executable, "-c", PROBE, str(out), *args], check=True, cwd=tmp_path)
    result = json.loads(out.read_text())
    return result["code"], set(result["modules"])


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The modules of `names` (packages with their submodules) that were imported."""
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.fixture
def config(tmp_path: Path, rule_cache: Path) -> Path:
    cfg = tmp_path / "stagewatch.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "test"\n')
    return cfg


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    folder = tmp_path / "Users" / "bob" / "AppData" / "Local" / "Temp"
    folder.mkdir(parents=True)
    path = folder / "export.csv.gz"
    rows = "".join(f"{i},user{i % 7}@corp.example,{i * 7919 % 100000}\n" for i in range(200))
    path.write_bytes(gzip.compress(rows.encode(), mtime=1_763_800_000))
    return path


def test_scan_no_db_of_a_staged_file_imports_nothing_heavy(tmp_path, config, staged) -> None:
    lines = tmp_path / "findings.jsonl"
    code, modules = imported(
        tmp_path, "-q", "scan", "--no-db", str(staged), "--config", str(config), "--jsonl", str(lines)
    )
    assert code == 0
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [(r["stagewatch"]["format"], r["file"]["path"]) for r in records] == [("gzip", str(staged))]
    assert loaded(modules, NOT_FOR_A_FILE_SCAN) == []
    assert "yara_x" in modules and "sensor.detect.detector" in modules  # the scan did run


def test_the_store_loads_with_the_store(tmp_path, config, staged) -> None:
    """Without --no-db the same scan writes the store: SQLAlchemy comes, and still nothing else heavy."""
    code, modules = imported(tmp_path, "-q", "scan", str(staged), "--config", str(config), "--db", "s.db")
    assert code == 0
    assert "sqlalchemy" in modules and "sensor.store.db" in modules
    assert loaded(modules, ("sigma", "dask", "distributed", "psycopg", "sensor.output.report", "scapy")) == []
    code, modules = imported(tmp_path, "findings", "--db", "s.db", "--jsonl", str(tmp_path / "out.jsonl"))
    assert code == 0
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 1
    # a query reads the store: no detector, no rule engine, no pipeline
    not_for_a_query = ("sensor.pipeline", "sensor.detect", "yara", "yara_x", "sigma", "dask", "scapy", "rich")
    assert loaded(modules, (*not_for_a_query, "sensor.output.report")) == []


def test_version_imports_no_command(tmp_path) -> None:
    code, modules = imported(tmp_path, "--version")
    assert code == 0
    heavy = ("sensor.pipeline", "sensor.detect", "yara", "yara_x", "sqlalchemy", "sigma", "rich", "importlib.metadata")
    assert loaded(modules, heavy) == []


def test_engine_choices_read_when_checked() -> None:
    """--engine's choices come from the engine registry as before, though the parser no longer imports it."""
    parser = build_parser()
    assert parser.parse_args(["scan", "--engine", "yara-python", "x"]).engine == "yara-python"
    with pytest.raises(SystemExit):
        parser.parse_args(["scan", "--engine", "nope", "x"])
    scan = next(a for a in parser._subparsers._group_actions[0].choices["scan"]._actions if a.dest == "engine")  # noqa: SLF001
    assert list(scan.choices) == ["yara-python", "yara-x"]


RECORDS = [
    {"file": {"name": "Отчёт_2025.csv.gz", "path": "C:\\Users\\bob\\données\\顧客.gz"}, "n": [1, 2.5, None, True]},
    {"url": {"original": '/a?q="x"&b=\\'}, "ctl": "\x00\x1f\x7f\u2028", "empty": {}, "list": []},
    {"big": 2**64 - 1, "neg": -(2**63), "float": 1385174713.603369},
]


@pytest.mark.parametrize("record", RECORDS)
def test_dumps_writes_what_json_wrote(record) -> None:
    assert dumps(record) == json.dumps(record, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize(
    "record",
    [{1: "int key"}, {"huge": 2**70}, {"path": "/tmp/\udcff.gz"}, {"nested": {2: [3]}}],
    ids=["int-key", "int-beyond-64-bits", "lone-surrogate", "nested-int-key"],
)
def test_what_orjson_refuses_json_writes(record) -> None:
    assert dumps(record) == json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def test_dumps_refuses_what_json_refuses() -> None:
    import datetime as dt

    with pytest.raises(TypeError):
        dumps({"t": dt.datetime(2026, 1, 1)})


def test_json_without_orjson(tmp_path) -> None:
    script = (
        "import sys, json; sys.modules['orjson'] = None\n"  # import orjson raises ImportError
        "from sensor.output import jsonl\n"
        "assert jsonl.orjson is None\n"
        f"r = {RECORDS[0]!r}\n"
        "assert jsonl.dumps(r) == json.dumps(r, separators=(',', ':'), ensure_ascii=False)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
