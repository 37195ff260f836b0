"""Shared fixtures: one real detector per engine (rules compiled once), a scan helper, and `need`/`requires`,
the one place that decides whether a missing prerequisite skips a test (here) or fails it (CI=true)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from loguru import logger

from sensor.config import Settings
from sensor.detect.detector import Detector
from sensor.model import ContentObject, FileOrigin, Finding

STAGED = "/cases/WS-01/Users/bob/AppData/Local/Temp/"
# the corpus beside the repository (../shared: pcaps/real, hostevents/real, seeds); STAGEWATCH_TEST_SHARED moves it
SHARED = Path(os.environ.get("STAGEWATCH_TEST_SHARED") or Path(__file__).resolve().parents[2] / "shared")


@pytest.fixture
def warnings():
    """Warning messages logged by sensor (the library keeps loguru disabled until a CLI enables it)."""
    seen: list[str] = []
    logger.enable("sensor")
    sink = logger.add(lambda m: seen.append(m.record["message"]), level="WARNING", format="{message}")
    yield seen
    logger.remove(sink)
    logger.disable("sensor")


def need(why: str | None) -> None:
    """Go on when `why` is None; else a prerequisite is missing and `why` says which: the test is skipped, or
    failed under CI=true, where everything is installed and a skip would hide a test that never ran."""
    __tracebackhide__ = True  # the skip is reported at the caller's line
    if why is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (CI=true: a missing prerequisite is a failure)", pytrace=False)
    pytest.skip(why)


def requires(why: str | None) -> pytest.MarkDecorator:
    """`need(why)` as a mark for a test, a class or a module (`pytestmark`), applied before any fixture runs.

    Outside CI it is a plain skipif, so -rs lists each test's own line; under CI=true, pytest_runtest_setup
    below calls need(), and pytest reports the failure as an error in setup.
    """
    if why is not None and os.environ.get("CI") == "true":
        return pytest.mark.prerequisite(why)
    return pytest.mark.skipif(why is not None, reason=why or "")


def absent(*paths: Path) -> str | None:
    """Why the shared corpus cannot be read (the first of `paths` that does not exist), or None."""
    for path in paths:
        if not path.exists():
            return f"{path} is absent (the shared corpus lives beside the repo in CI; STAGEWATCH_TEST_SHARED moves it)"
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "prerequisite(why): need(why) before the test; see tests/conftest.py")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("prerequisite"):
        need(*mark.args)


@pytest.fixture(scope="session")
def rule_cache(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("rule-cache")


@pytest.fixture(scope="session", params=["yara-x", "yara-python"])
def detector(request: pytest.FixtureRequest, rule_cache) -> Detector:
    """Both engines run every detector test: the rules must behave the same under each."""
    return Detector(Settings(engine=request.param, observer="test", cache_dir=rule_cache))


@pytest.fixture(scope="session")
def default_detector(rule_cache) -> Detector:
    return Detector(Settings(observer="test", cache_dir=rule_cache))


def scan(det: Detector, data: bytes, name: str = "blob.dat", folder: str = STAGED) -> list[Finding]:
    """Run the detector over bytes as if they were a file at folder/name."""
    origin = FileOrigin(folder + name, len(data), 1_700_000_000.0, "bob", "WS-01", "/cases")
    return list(det.scan(ContentObject(origin=origin, data=data, name=name)))


@pytest.fixture(scope="session")
def pg_url():
    """A real PostgreSQL database for the session (tests/pgserver.py); STAGEWATCH_TEST_PG_URL names another one."""
    from tests import pgserver

    if os.environ.get("STAGEWATCH_TEST_PG_URL"):
        yield os.environ["STAGEWATCH_TEST_PG_URL"]
        return
    why = pgserver.missing()
    need(why and f"PostgreSQL tests cannot run: {why}")
    with pgserver.server() as url:
        yield url
