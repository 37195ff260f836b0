"""The demo's sample captures (pcaps/make_samples.py): every member the script says it planted is found,
carved to the same sha256, with the kind its note gives (alert or event)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from sensor.config import Settings
from sensor.model import Finding
from sensor.pipeline import Job, scan_inputs
from sensor.stats import RunStats

SCRIPT = Path(__file__).resolve().parents[1] / "pcaps" / "make_samples.py"
HOME = ("10.0.0.0/8", "2001:db8::/48")  # as pcaps/README.md says to scan them


def test_every_planted_member_is_found_with_its_kind(tmp_path, rule_cache):
    spec = importlib.util.spec_from_file_location("make_samples", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    members = []
    for build in (mod.exfil_http_post, mod.c2_custom_port, mod.dns_and_tls, mod.ipv6_bzip2, mod.mail_and_ftp):
        members += build(tmp_path)
    job = Job((str(tmp_path),), Settings(home_net=HOME, observer="test", cache_dir=rule_cache))
    stats = RunStats()
    findings = [r for r in scan_inputs(job, stats) if isinstance(r, Finding)]
    by_sha = {f.member.sha256: f for f in findings}
    for m in members:
        f = by_sha.get(hashlib.sha256(m.data).hexdigest())
        assert f is not None, f"{m.capture}: {m.fmt} at {m.offset} not found"
        assert f.kind.value == ("event" if "event" in m.note else "alert"), m
    assert len(findings) == len(members) and not stats.errors
