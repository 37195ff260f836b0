"""The shipped example tuning (signatures/suppress.example.yaml) against the demo (`make demo`): it keeps every
alert the plain scan makes, above all the staged archives that hold sensitive names (the tar.gz with id_rsa).

The demo is scanned as the Makefile does (host.name from each host's folder) and as one machine's staging
folders are (every staged file on one host), where one host has many staged alerts of one rule."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from sensor.config import Settings
from sensor.detect.severity import BASE_COMPRESSED
from sensor.model import FileOrigin, Finding, HostFinding, Kind
from sensor.pipeline import Job, scan_inputs
from sensor.stats import RunStats
from sensor.tuning.tuner import Tuner

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "signatures" / "suppress.example.yaml"
HOME = ("10.0.0.0/8", "2001:db8::/48")  # as the Makefile scans the demo
NOW = 1_790_000_000.0  # 2026-09: before every expiry in the example file
SENSITIVE = BASE_COMPRESSED + 20 + 20  # a compressed member in a staging folder holding a sensitive name
# Alerts the example file may turn into events, by file name or flow, with why; the demo has none to justify:
# its entries name hosts, networks and hashes the demo does not use, and no host sends one kind of member
# at one severity to one place twice within 10 minutes.
JUSTIFIED: dict[str, str] = {}


def script(relative: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's inputs as `make demo` writes them: staged tree, sample captures, host telemetry."""
    root = tmp_path_factory.mktemp("demo")
    assert script("samples/make_staged.py").main(str(root / "staged")) == 0
    assert script("pcaps/make_samples.py").main(["make_samples.py", str(root / "samples")]) == 0
    make_hostevents = script("samples/make_hostevents.py")
    assert make_hostevents.main(["make_hostevents.py", str(root / "telemetry"), str(root / "staged")]) == 0
    return root


def label(item: Finding | HostFinding) -> str:
    if isinstance(item, HostFinding):
        return f"host:{item.event.host}:{item.rule}"
    o = item.origin
    where = o.path.split("/staged/", 1)[1] if isinstance(o, FileOrigin) else f"{o.src}->{o.dst}"
    return f"{where}:{item.rule}:{item.member.offset}"


@pytest.mark.parametrize("hosts", [{"host_from_path": "/staged/([^/]+)/"}, {"host": "demo-box"}],
                         ids=["host-per-folder", "one-host"])  # fmt: skip
def test_the_example_tuning_keeps_every_alert_of_the_demo(demo, rule_cache, hosts):
    settings = Settings(home_net=HOME, observer="test", cache_dir=rule_cache, **hosts)
    job = Job(tuple(str(demo / d) for d in ("staged", "samples", "telemetry")), settings)
    plain = [r for r in scan_inputs(job, RunStats()) if isinstance(r, Finding | HostFinding)]
    stats = RunStats()
    tuner = Tuner.load(EXAMPLE, clock=lambda: NOW)
    tuned = [tuner.apply(r, stats) for r in plain]

    alerts = [r for r in plain if isinstance(r, Finding) and r.kind is Kind.ALERT]
    staged = [r for r in alerts if isinstance(r.origin, FileOrigin)]
    keys = next(r for r in staged if r.origin.path.endswith("/srv-db/tmp/.cache-3f2a"))
    assert keys.severity == 100 and "root/.ssh/id_rsa" in keys.sensitive  # the demo still plants it
    assert len(staged) >= 10 and len(alerts) > len(staged)  # and many staged and network alerts beside it

    demoted = {}
    for before, after in zip(plain, tuned, strict=True):
        if isinstance(before, HostFinding):
            assert isinstance(after, HostFinding) and after.finding_id == before.finding_id
            if after.tuned is not None:
                demoted[label(before)] = f"{after.tuned.how}:{after.tuned.entry}"
            continue
        assert isinstance(after, Finding) and after.event_id == before.event_id  # nothing dropped or reordered
        if before.kind is Kind.ALERT and after.kind is not Kind.ALERT:
            sensitive = before.severity >= SENSITIVE or bool(before.sensitive)
            assert not (isinstance(before.origin, FileOrigin) and sensitive), f"{label(before)}: {after.tuned}"
            demoted[label(before)] = f"{after.tuned.how}:{after.tuned.entry}" if after.tuned else "?"
    assert demoted == JUSTIFIED
