"""The README's commands run as printed: every example line on the demo's data (built as `make demo` builds it),
and every flag a usage synopsis names exists on that command.

A line in a fenced block that starts with `stagewatch ` is a synopsis when it holds `[`, `|` or `...`
(placeholders: its flags are checked against the parser); otherwise it is an example and runs, from a
folder laid out like the checkout after `make demo`. `<id>` stands for an id the tables show: the test
takes the first stored incident's. `live` needs an interface: its only line is a synopsis.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sensor.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _command_lines() -> list[str]:
    lines, inside = [], False
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = not inside
            continue
        if inside and line.startswith("stagewatch "):
            lines.append(line.strip())
    return lines


def _is_synopsis(line: str) -> bool:
    return any(mark in line for mark in ("[", "|", "..."))


SYNOPSES = [line for line in _command_lines() if _is_synopsis(line)]
EXAMPLES = [line for line in _command_lines() if not _is_synopsis(line)]


def _subparsers() -> dict[str, object]:
    p = build_parser()
    action = next(iter(p._subparsers._group_actions))  # noqa: SLF001
    return dict(action.choices)


def test_the_readme_has_examples_and_synopses():
    assert len(EXAMPLES) >= 10 and len(SYNOPSES) >= 8


@pytest.mark.parametrize("line", SYNOPSES)
def test_every_flag_of_a_synopsis_exists(line):
    subs = _subparsers()
    named = [w for w in re.split(r"[\s|]+", line) if w in subs]
    assert named, f"no command named in: {line}"
    known: set[str] = set()
    for name in named:
        parser = subs[name]
        for action in parser._actions:  # noqa: SLF001
            known.update(action.option_strings)
            if isinstance(action.choices, dict):  # rules export
                for child in action.choices.values():
                    known.update(o for a in child._actions for o in a.option_strings)  # noqa: SLF001
    flags = set(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", line))
    assert flags <= known, f"{sorted(flags - known)} not accepted by {named}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory, rule_cache):
    """A folder laid out like the checkout after `make demo`."""
    home = tmp_path_factory.mktemp("readme")
    py = sys.executable
    run = lambda *a: subprocess.run([py, *a], check=True, capture_output=True)  # noqa: E731
    run(str(ROOT / "samples" / "make_staged.py"), str(home / "samples" / "staged"))
    run(str(ROOT / "pcaps" / "make_samples.py"), str(home / "pcaps" / "samples"))
    run(
        str(ROOT / "samples" / "make_hostevents.py"),
        str(home / "samples" / "telemetry"),
        str(home / "samples" / "staged"),
    )
    (home / "signatures").symlink_to(ROOT / "signatures")
    cfg = home / "sw.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "demo"\n')
    old = Path.cwd()
    os.chdir(home)
    try:
        # the Makefile's demo commands
        assert main(["-q", "scan", "samples/staged", "pcaps/samples", "samples/telemetry", "--db", "samples/demo.db",
                     "--objects", "samples/demo-objects.jsonl", "--host-from-path", "/staged/([^/]+)/",
                     "--home-net", "10.0.0.0/8,2001:db8::/48", "--config", str(cfg)]) == 0  # fmt: skip
        assert main(["-q", "correlate", "--db", "samples/demo.db", "--host-map", "samples/telemetry/host-map.csv"]) == 0
        yield home, cfg
    finally:
        os.chdir(old)


@pytest.mark.parametrize("line", EXAMPLES)
def test_every_example_runs_as_printed(demo, line, capsys):
    home, cfg = demo
    argv = shlex.split(line)[1:]
    if "<id>" in argv:
        from sensor.store.db import FindingStore

        with FindingStore(str(home / "samples" / "demo.db")) as store:
            argv[argv.index("<id>")] = store.incident_records()[0]["event"]["id"][:8]
    if argv[0] == "scan":
        argv += ["--config", str(cfg)]  # the test's rule cache and observer; the README's flags as they are
    assert main(argv) == 0, line
    out = capsys.readouterr().out
    if argv[0] in ("findings", "host-findings", "flows", "objects", "incidents"):
        assert out.strip() and "pass these filters" not in out, f"{line}: nothing shown on the demo's data"


def test_make_demo_installs_the_runtime_and_not_the_test_extras():
    dry = subprocess.run(["make", "-n", "-B", "demo"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "pip install -q -e ." in dry and "[test]" not in dry
    tests = subprocess.run(["make", "-n", "-B", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "pip install -q -e '.[test]'" in tests


def test_the_docs_point_at_what_the_repository_has():
    for doc in (README, ROOT / "pcaps" / "README.md"):
        assert "DESIGN.md" not in doc.read_text(encoding="utf-8"), doc
    deploy = README.read_text(encoding="utf-8").split("## Live sensor and deployment")[1].split("\n## ")[0]
    assert "pip install ." in " ".join(deploy.split())
    assert "make demo" not in deploy
    if (ROOT / ".git").exists():
        ignored = subprocess.run(["git", "ls-files", "-ci", "--exclude-standard"], cwd=ROOT, capture_output=True,
                                 text=True, check=True).stdout  # fmt: skip
        assert ignored == "", f".gitignore lists tracked files: {ignored}"
