"""A sink's flush is one transaction: findings, flows, objects, host events and host findings of a flush (and
the planned segment it completes) are stored together or not at all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import event

from sensor.config import Settings
from sensor.errors import StoreError
from sensor.model import Finding, FlowRecord, HostEvent, HostFinding, ObjectRecord
from sensor.output.store_sink import StoreSink
from sensor.pipeline import Job, scan_inputs
from sensor.stats import RunStats
from sensor.store.db import FindingStore, FlowRow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory, rule_cache) -> list:
    """Every kind of row: the demo's captures (findings, flows, objects) and host telemetry (events, findings)."""
    tmp = tmp_path_factory.mktemp("batch")
    py = sys.executable
    subprocess.run([py, str(ROOT / "samples" / "make_staged.py"), str(tmp / "staged")], check=True, capture_output=True)
    subprocess.run([py, str(ROOT / "pcaps" / "make_samples.py"), str(tmp / "pcaps")], check=True, capture_output=True)
    subprocess.run([py, str(ROOT / "samples" / "make_hostevents.py"), str(tmp / "telemetry"), str(tmp / "staged")],
                   check=True, capture_output=True)  # fmt: skip
    settings = Settings(home_net=("10.0.0.0/8",), observer="test", cache_dir=rule_cache, objects=True)
    job = Job((str(tmp / "pcaps"), str(tmp / "telemetry")), settings)
    return list(scan_inputs(job, RunStats()))


def _commits(store: FindingStore) -> list[int]:
    count = [0]
    event.listen(store._engine, "commit", lambda conn: count.__setitem__(0, count[0] + 1))  # noqa: SLF001
    return count


def test_one_flush_is_one_transaction(results, tmp_path):
    kinds = {type(r) for r in results}
    assert {Finding, FlowRecord, ObjectRecord, HostEvent, HostFinding} <= kinds
    with FindingStore(str(tmp_path / "s.db")) as store:
        run = store.begin_run("test", [])
        sink = StoreSink(store, run, "test")
        commits = _commits(store)
        for r in results:
            sink.write(r, {"event": {}} if not isinstance(r, Finding) else _record(r))
        sink.close()
        assert commits[0] == 1
        assert store.count() == sum(1 for r in results if isinstance(r, Finding))
        assert store.flow_count() == sum(1 for r in results if isinstance(r, FlowRecord))


def test_a_failing_flush_stores_none_of_its_rows(results, tmp_path):
    with FindingStore(str(tmp_path / "s.db")) as store:
        run = store.begin_run("test", [])
        sink = StoreSink(store, run, "test")
        for r in results:
            if isinstance(r, Finding):
                sink.write(r, _record(r))
        bad = FlowRow("f" * 36, "1:x", 0.0, 0.0, "10.0.0.1", "10.0.0.2", 0, 0, None)  # type: ignore[arg-type]
        sink._flows.append(bad)  # noqa: SLF001  (a row the database refuses: record is NOT NULL)
        with pytest.raises(StoreError):
            sink.flush()
        assert store.count() == 0  # the findings written before the bad flow row were rolled back with it


def _record(f: Finding) -> dict:
    from sensor.output.ecs import finding_record

    return finding_record(f)
