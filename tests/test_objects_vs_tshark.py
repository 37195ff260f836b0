"""--objects against the reference peer: every HTTP object `tshark --export-objects http` writes for the real
captures of ../shared/pcaps/real is among stagewatch's objects, with the same size and sha256.

tshark exports bodies de-chunked and content-decoded (tests/tshark_ref.py lists its rules); stagewatch
records each layer as its own object (the body as sent, then decoded), so the comparison is one of
membership: tshark's set must be inside ours.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sensor.config import Settings
from sensor.model import ObjectRecord
from sensor.pipeline import Job, scan_inputs
from sensor.stats import RunStats
from tests.tshark_ref import export_objects, tshark_available

REAL = Path(__file__).resolve().parents[2] / "shared" / "pcaps" / "real"
pytestmark = [
    pytest.mark.skipif(not REAL.is_dir(), reason=f"{REAL} is absent (it lives beside the repo in CI)"),
    pytest.mark.skipif(not tshark_available(), reason="tshark is not installed (make test installs it)"),
]
CAPTURES = sorted(p.name for p in REAL.glob("*.pcap*")) if REAL.is_dir() else []


def objects(path: Path, cache: Path) -> list[ObjectRecord]:
    job = Job((str(path),), Settings(observer="test", cache_dir=cache, objects=True))
    return [r for r in scan_inputs(job, RunStats()) if isinstance(r, ObjectRecord)]


@pytest.mark.parametrize("name", CAPTURES)
def test_every_http_object_tshark_exports_is_in_objects(name, rule_cache, tmp_path):
    ref = export_objects(REAL / name, "http", tmp_path)
    if not ref:
        pytest.skip(f"tshark exports no HTTP object from {name}")
    mine = objects(REAL / name, rule_cache)
    have = {(o.size, o.sha256) for o in mine}
    missing = [(r.filename, r.size) for r in ref if (r.size, r.sha256) not in have]
    assert missing == []
    assert all(o.origin.protocol == "http" for o in mine)
