"""Floods: more open flows than [limits] max_flows (a scan, or a busy NAT gateway: connections that never
close). The least recently active flows are closed, scanned first and counted; the table never holds
more than the cap; a member in an evicted flow is still found. Peak RSS and connections/s are measured
in bench/bench_flood.py, not here.
"""

from __future__ import annotations

import json
from pathlib import Path

from sensor.cli import main
from tests.builders import gzip_named, sample_text
from tests.netbuild import BASE_TIME, Conv, interleave, segments, write_pcap

CAP = 40


def _flood(tmp: Path, flows: int) -> tuple[Path, bytes]:
    """`flows` connections that never close, each one 200-byte request; the third one uploads a gzip member
    and then goes quiet for ever, so it is among the least recently active when the cap is reached."""
    member = gzip_named(sample_text(30_000, 3), "evicted.csv")
    convs = []
    for n in range(flows):
        data = member if n == 2 else bytes([65 + n % 26]) * 200
        convs.append(
            segments(
                Conv(f"10.7.{n // 250}.{n % 250 + 1}", 20_000 + n % 40_000, "198.51.100.80", 9000,
                     sends=[("c2s", data)], close=None, start=BASE_TIME + n * 0.01)
            )
        )  # fmt: skip
    return write_pcap(tmp / "flood.pcap", interleave(*convs)), member


def test_a_flood_past_the_flow_cap_evicts_the_oldest_scans_them_and_counts(tmp_path, rule_cache):
    import hashlib

    pcap, member = _flood(tmp_path, 400)
    cfg = tmp_path / "cap.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "test"\n[limits]\nmax_flows = {CAP}\n')
    findings, flows, db = tmp_path / "f.jsonl", tmp_path / "flows.jsonl", tmp_path / "s.db"
    argv = ["-q", "scan", str(pcap), "--config", str(cfg), "--db", str(db), "--jsonl", str(findings)]
    assert main([*argv, "--flows", str(flows), "--home-net", "10.0.0.0/8"]) == 0
    found = [json.loads(line) for line in findings.read_text().splitlines()]
    assert [r["file"]["hash"]["sha256"] for r in found] == [hashlib.sha256(member).hexdigest()]
    assert found[0]["event"]["kind"] == "alert"
    records = [json.loads(line) for line in flows.read_text().splitlines()]
    assert len(records) == 400
    reasons = [r["stagewatch"]["flow"]["end_reason"] for r in records]
    evicted = reasons.count("flow_cap")
    assert evicted >= 400 - CAP and reasons.count("eof") == 400 - evicted
    from sensor.store.db import FindingStore

    with FindingStore(str(db)) as store:
        net = store.runs()[-1]["stats"]["net"]
    assert net["flow_cap_evictions"] == evicted
    assert net["open_flows_peak"] == CAP  # never more open than the cap
    # the member's flow was closed by the cap, not at the end of the capture
    carried = [r for r in records if r["source"]["ip"] == "10.7.0.3"]
    assert [r["stagewatch"]["flow"]["end_reason"] for r in carried] == ["flow_cap"]


def test_each_open_flow_counts_against_the_memcap(tmp_path, rule_cache):
    from sensor.config import FLOW_COST

    pcap, _ = _flood(tmp_path, 120)
    cfg = tmp_path / "memcap.toml"
    # room for about 30 flows' fixed cost and their few bytes: the memcap, not the flow cap, closes the rest
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "test"\n[limits]\nmemcap = {30 * FLOW_COST}\n')
    flows = tmp_path / "flows.jsonl"
    argv = ["-q", "scan", str(pcap), "--config", str(cfg), "--no-db", "--flows", str(flows)]
    assert main([*argv, "--home-net", "10.0.0.0/8"]) == 0
    reasons = [json.loads(line)["stagewatch"]["flow"]["end_reason"] for line in flows.read_text().splitlines()]
    assert reasons.count("memcap") >= 80
