"""Correlation as evidence really arrives (issue "Correlation as evidence really arrives"): an audit log
without node names named on the command line, staged files collected long after (their times the
collection's), short host names meeting FQDNs. End to end through `scan` and `correlate` where the command line
is the point, typed inputs for the join's rules."""

from __future__ import annotations

import hashlib
import os

from sensor.cli import main as cli_main
from sensor.correlate.engine import Correlator
from sensor.correlate.hosts import HostMap
from sensor.correlate.inputs import RuleHit, Staged, Transfer
from tests import appbuild as ab
from tests import hostbuild as hb
from tests.builders import HOSTS, tar_archive
from tests.incidents import scan_and_correlate
from tests.netbuild import BASE_TIME, write_pcap

T = BASE_TIME
TAR = tar_archive({"etc/hosts": HOSTS}, "bz2")
DAY = 86400.0


def _audit_log(node: str | None) -> str:
    return hb.python_tarfile_audit(T - 50, node=node)


def _upload(tmp_path):
    caps = tmp_path / "captures"
    caps.mkdir()
    req = ab.http_request("POST", "/up", "drop.example", TAR)
    conv = ab.http_conversation([(req, ab.http_response(200, b"ok"))], client="10.1.2.5", server="203.0.113.9", start=T)
    from tests.netbuild import segments

    write_pcap(caps / "day.pcap", segments(conv))
    return caps


def _scan_and_correlate(tmp_path, rule_cache, inputs, *scan_flags, hostmap: str = "name,ip\nsrv-17,10.1.2.5\n"):
    return scan_and_correlate(tmp_path, rule_cache, inputs, *scan_flags, hostmap=hostmap)


def test_an_audit_log_without_node_names_takes_the_host_given(tmp_path, rule_cache):
    logs = tmp_path / "telemetry"
    logs.mkdir()
    (logs / "audit.log").write_text(_audit_log(node=None))
    incidents, store = _scan_and_correlate(tmp_path, rule_cache, [_upload(tmp_path), logs], "--host-name", "srv-17")
    (inc,) = incidents
    assert inc["host"]["name"] == "srv-17"
    assert inc["process"]["executable"] == "/usr/bin/python3.11"
    assert {"network", "host_rule"} <= set(inc["stagewatch"]["incident"]["kinds"])
    from sensor.store.db import FindingStore

    with FindingStore(str(store)) as db:
        hosts = {r["host"]["name"] for r in db.host_finding_records()}
    assert hosts == {"srv-17"}


def test_an_audit_log_without_node_names_and_no_host_given_is_a_warning(tmp_path, rule_cache):
    from loguru import logger

    from sensor.config import Settings
    from sensor.model import HostEvent
    from sensor.pipeline import Job, scan_inputs
    from sensor.stats import RunStats

    log = tmp_path / "audit.log"
    log.write_text(_audit_log(node=None))
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(m.record["message"]), level="WARNING", format="{message}")
    stats = RunStats()
    try:
        events = [
            r for r in scan_inputs(Job((str(log),), Settings(cache_dir=rule_cache)), stats) if isinstance(r, HostEvent)
        ]
    finally:
        logger.remove(sink)
    assert events and all(e.host is None for e in events)
    assert stats.host["unnamed_events"] == len(events)
    (warning,) = [m for m in seen if "name no host" in m]
    assert warning.startswith(f"{log}: {len(events)} host events") and "--host-name" in warning


def test_a_node_name_in_the_log_wins_over_the_host_given(tmp_path, rule_cache):
    logs = tmp_path / "telemetry"
    logs.mkdir()
    (logs / "audit.log").write_text(_audit_log(node="srv-17"))
    incidents, _ = _scan_and_correlate(tmp_path, rule_cache, [_upload(tmp_path), logs], "--host-name", "other")
    assert [i["host"]["name"] for i in incidents] == ["srv-17"]


# -- the join's rules, typed -----------------------------------------------------------------------------------------


def _transfer(ref: str, sha: str, size: int, ts: float, direction: str = "outbound", src: str = "10.1.2.7") -> Transfer:
    kind = "alert" if direction == "outbound" else "event"
    return Transfer(ref, ts, sha, size, None, src, 50000, "203.0.113.9", 80, "http", direction, kind, "c.pcap")


def _staged(ref: str, sha: str, size: int, ts: float, host: str = "WS-07") -> Staged:
    return Staged(ref, ts, sha, size, host, rf"C:\Users\bob\AppData\Local\Temp\{ref}.zip", "alert")


def _hit(ref: str, host: str, ts: float) -> RuleHit:
    return RuleHit(
        ref, ts, host, (), "PythonLibraryCompression", "compress", "python.exe", "python -c", 7, "b", None, "x"
    )


def _hosts() -> HostMap:
    hosts = HostMap()
    hosts.add("WS-07", ["10.1.2.7"])
    return hosts


def test_a_staged_file_collected_days_later_joins_by_hash():
    sha = "b" * 64
    (inc,) = Correlator(_hosts()).run(
        [_transfer("t1", sha, 40_000, T)], [_staged("s1", sha, 40_000, T + 5 * DAY)], [], []
    )
    assert "same_sha256" in inc.reasons and {e.ref for e in inc.evidence} == {"t1", "s1"}
    (staged,) = [e for e in inc.evidence if e.ref == "s1"]
    assert staged.summary.endswith("5 d after the transfer")


def test_a_small_or_public_hash_keeps_the_window():
    small, public = "c" * 64, "d" * 64
    transfers = [_transfer("t1", small, 200, T), _transfer("t2", public, 90_000, T + 10)]
    transfers.append(_transfer("t3", public, 90_000, T - DAY, direction="inbound", src="198.51.100.7"))
    staged = [_staged("s1", small, 200, T + 2 * DAY), _staged("s2", public, 90_000, T + 2 * DAY)]
    assert Correlator(_hosts()).run(transfers, staged, [], []) == []
    near = [_staged("s3", small, 200, T - 60)]  # within the window, a small member's hash still joins
    (inc,) = Correlator(_hosts()).run(transfers[:1], near, [], [])
    assert "same_sha256" in inc.reasons


def test_the_minimum_size_is_a_setting(tmp_path):
    from sensor.config import load_settings

    cfg = tmp_path / "sw.toml"
    cfg.write_text("[correlate]\nhash_link_min_size = 100\n")
    size = load_settings(cfg).correlate.hash_link_min_size
    sha = "e" * 64
    (inc,) = Correlator(_hosts(), hash_link_min_size=size).run(
        [_transfer("t1", sha, 200, T)], [_staged("s1", sha, 200, T + DAY)], [], []
    )
    assert "same_sha256" in inc.reasons


def test_short_names_meet_fqdns_whatever_their_case():
    hosts = HostMap()
    hosts.add("WS-FIN-15.corp.example", ["10.1.2.15"])
    staged = [_staged("s1", "f" * 64, 1000, T, host="ws-fin-15")]
    hits = [_hit("h1", "WS-FIN-15.CORP.EXAMPLE", T - 30)]
    (inc,) = Correlator(hosts).run([], staged, hits, [])
    assert inc.kinds == ("host_rule", "staged_file")


# -- campaigns: incidents on several hosts sharing a member --------------------------------------------------------


def test_a_copy_sent_from_host_a_to_b_over_smb_then_out_from_b_links_two_incidents(tmp_path, rule_cache):
    from sensor.store.db import FindingStore
    from tests.builders import sample_text, zip_archive
    from tests.netbuild import Conv, segments
    from tests.test_smb import FID, _put, _session

    x = zip_archive({"finance/q3.csv": sample_text(50_000, 61)})
    caps, staged = tmp_path / "captures", tmp_path / "staged"
    caps.mkdir()
    a, b, out = "10.0.0.11", "10.0.0.20", "203.0.113.9"
    copy = Conv(a, 50001, b, 445, sends=[*_session(server=b), *_put(10, FID, "drop\\q3.zip", [(0, x)])], start=T)
    req = ab.http_request("POST", "/up", "drop.example", x)
    leave = ab.http_conversation([(req, ab.http_response(200, b"ok"))], client=b, server=out, start=T + 600)
    write_pcap(caps / "day.pcap", sorted(segments(copy) + segments(leave), key=lambda p: float(p.time)))
    for host, rel, t in (
        ("WS-A", "Users/bob/AppData/Local/Temp/q3.zip", T - 60),
        ("SRV-B", "share/drop/q3.zip", T + 1),
    ):
        f = staged / host / rel
        f.parent.mkdir(parents=True)
        f.write_bytes(x)
        os.utime(f, (t, t))
    incidents, store = _scan_and_correlate(
        tmp_path, rule_cache, [caps, staged], "--host-from-path", "/staged/([^/]+)/",
        hostmap=f"name,ip\nWS-A,{a}\nSRV-B,{b}\n",
    )  # fmt: skip
    by_host = {i["host"]["name"]: i for i in incidents}
    assert set(by_host) == {"WS-A", "SRV-B"}
    ia, ib = by_host["WS-A"], by_host["SRV-B"]
    assert "T1570" in ia["threat"]["technique"]["id"] and "T1567" in ib["threat"]["technique"]["id"]
    assert ia["stagewatch"]["incident"]["related"] == [ib["event"]["id"]]
    assert ib["stagewatch"]["incident"]["related"] == [ia["event"]["id"]]
    sha = hashlib.sha256(x).hexdigest()
    assert ia["stagewatch"]["incident"]["related_sha256"] == [sha]
    with FindingStore(str(store)) as db:  # `incidents` reads the link back
        assert {r["stagewatch"]["incident"]["related"][0] for r in db.incident_records()} == {
            ia["event"]["id"],
            ib["event"]["id"],
        }
    report = tmp_path / "r.html"
    assert cli_main(["-q", "report", "--db", str(store), "--output", str(report)]) == 0
    assert "Campaigns: incidents on several hosts sharing a member" in report.read_text()


def test_a_public_file_links_nothing():
    """A hash that came in from outside, or that many hosts hold, is a public download: no campaign."""
    downloaded, everywhere = "9" * 64, "7" * 64
    hosts = HostMap()
    for n in range(1, 8):
        hosts.add(f"WS-{n}", [f"10.1.2.{n}"])
    transfers = [_transfer("in", downloaded, 90_000, T - DAY, direction="inbound", src="198.51.100.7")]
    staged, hits = [], []
    for n in range(1, 8):
        host = f"WS-{n}"
        staged.append(_staged(f"e{n}", everywhere, 70_000, T + n, host=host))
        if n <= 2:
            staged.append(_staged(f"d{n}", downloaded, 90_000, T + n, host=host))
        hits.append(_hit(f"h{n}", host, T - 30))
    found = Correlator(hosts).run(transfers, staged, hits, [])
    assert len(found) == 7 and all(i.related == () for i in found)
