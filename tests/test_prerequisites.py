"""`need` and `requires` (tests/conftest.py): a missing prerequisite skips a test here and fails it under CI=true.

Each case runs pytest in a subprocess on a small generated test file, with the shared corpus pointed at a
folder that does not exist (STAGEWATCH_TEST_SHARED), once with CI=true and once without.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASES = """
import pytest

from tests.conftest import SHARED, absent, need, requires


@requires(absent(SHARED / "pcaps" / "real"))
def test_marked():
    pass


def test_called():
    need(absent(SHARED / "pcaps" / "real"))


def test_nothing_missing():
    need(None)


@requires(None)
def test_marked_nothing_missing():
    pass
"""


def outcomes(tmp: Path, ci: bool) -> tuple[dict[str, str], str]:
    """Run CASES under pytest with ../shared moved away: each test's outcome (from the JUnit XML) and the output."""
    (tmp / "test_cases.py").write_text(CASES)
    (tmp / "pytest.ini").write_text("[pytest]\n")  # keeps the repository's addopts (its basetemp) out
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env |= {"STAGEWATCH_TEST_SHARED": str(tmp / "no-shared-here"), "PYTHONPATH": str(ROOT)}
    if ci:
        env["CI"] = "true"
    report = tmp / "report.xml"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.conftest", "-rA"]
    cmd += ["-c", str(tmp / "pytest.ini"), f"--basetemp={tmp / 'bt'}", f"--junitxml={report}", "test_cases.py"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, env=env, timeout=300, check=False)
    outcome = {"skipped": "skipped", "failure": "failed", "error": "error"}  # JUnit child -> pytest's word
    cases = ET.parse(report).iter("testcase")
    return {
        c.get("name", ""): next((outcome[e.tag] for e in c if e.tag in outcome), "passed") for c in cases
    }, done.stdout


@pytest.mark.parametrize("ci", [False, True], ids=["local", "CI=true"])
def test_a_missing_corpus_skips_here_and_fails_under_ci(tmp_path, ci):
    got, out = outcomes(tmp_path, ci)
    # under CI a mark fails in setup, before any fixture runs, so pytest counts it an error: a red run all the same
    missing = ("error", "failed") if ci else ("skipped", "skipped")
    assert got == {
        "test_marked": missing[0],
        "test_called": missing[1],
        "test_nothing_missing": "passed",
        "test_marked_nothing_missing": "passed",
    }, out
    assert out.count("no-shared-here/pcaps/real is absent") >= 2, out  # the reason, for each test
    assert ("CI=true: a missing prerequisite is a failure" in out) == ci, out
    assert "conftest.py" not in out, out  # a skip names the test's line, not the helper's
