"""Shared fixtures: one real detector per engine (rules compiled once), and a scan helper."""

from __future__ import annotations

import pytest

from sensor.config import Settings
from sensor.detect.detector import Detector
from sensor.model import ContentObject, FileOrigin, Finding

STAGED = "/cases/WS-01/Users/bob/AppData/Local/Temp/"


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
    import os

    from tests import pgserver

    if os.environ.get("STAGEWATCH_TEST_PG_URL"):
        yield os.environ["STAGEWATCH_TEST_PG_URL"]
        return
    why = pgserver.missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL tests cannot run in CI: {why}")
        pytest.skip(why)
    with pgserver.server() as url:
        yield url
