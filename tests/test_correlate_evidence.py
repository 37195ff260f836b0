"""Correlation as evidence really arrives (issue "Correlation as evidence really arrives"): an audit log
without node names named on the command line, staged files collected long after (their times the
collection's), short host names meeting FQDNs. End to end through `scan` and `correlate` where the command line
is the point, typed inputs for the join's rules."""

from __future__ import annotations

import json

from sensor.cli import main as cli_main
from sensor.correlate.engine import Correlator
from sensor.correlate.hosts import HostMap
from sensor.correlate.inputs import RuleHit, Staged, Transfer
from tests import appbuild as ab
from tests import hostbuild as hb
from tests.builders import HOSTS, tar_archive
from tests.netbuild import BASE_TIME, write_pcap

T = BASE_TIME
TAR = tar_archive({"etc/hosts": HOSTS}, "bz2")
DAY = 86400.0


def _audit_log(node: str | None) -> str:
    """python3 -c "import tarfile... bz2" and the CREATE of /tmp/stage_df00.tar.bz2, as auditd writes them."""
    code = "import tarfile;t=tarfile.open('/tmp/stage_df00.tar.bz2','w:bz2');t.add('/etc/hosts');t.close()"
    proc = 'ppid=880 pid=4300 auid=1000 uid=1000 comm="python3" exe="/usr/bin/python3.11"'
    execve = [
        f'SYSCALL arch=c000003e syscall=59 success=yes exit=0 items=2 {proc} key="exec"',
        f'EXECVE argc=3 a0="python3" a1="-c" a2={hb.hex_arg(code)}',
        'CWD cwd="/home/bob"',
    ]
    create = [
        f'SYSCALL arch=c000003e syscall=257 success=yes exit=3 items=2 {proc} key="tmp"',
        'CWD cwd="/home/bob"',
        'PATH item=0 name="/tmp/" nametype=PARENT',
        'PATH item=1 name="/tmp/stage_df00.tar.bz2" nametype=CREATE',
    ]
    lines = hb.audit_event(301, T - 50, execve, node=node) + hb.audit_event(302, T - 49.8, create, node=node)
    return "\n".join(lines) + "\n"


def _upload(tmp_path):
    caps = tmp_path / "captures"
    caps.mkdir()
    req = ab.http_request("POST", "/up", "drop.example", TAR)
    conv = ab.http_conversation([(req, ab.http_response(200, b"ok"))], client="10.1.2.5", server="203.0.113.9", start=T)
    from tests.netbuild import segments

    write_pcap(caps / "day.pcap", segments(conv))
    return caps


def _scan_and_correlate(tmp_path, rule_cache, inputs, *scan_flags, hostmap: str = "name,ip\nsrv-17,10.1.2.5\n"):
    cfg = tmp_path / "sw.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "test"\n')
    store, out = tmp_path / "sw.db", tmp_path / "incidents.jsonl"
    hosts = tmp_path / "hosts.csv"
    hosts.write_text(hostmap)
    scan = ["-q", "scan", *map(str, inputs), "--db", str(store), "--config", str(cfg), "--home-net", "10.0.0.0/8"]
    assert cli_main([*scan, *scan_flags]) == 0
    assert cli_main(["-q", "correlate", "--db", str(store), "--host-map", str(hosts), "--jsonl", str(out)]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()], store


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
