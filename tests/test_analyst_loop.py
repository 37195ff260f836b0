"""The analyst's loop (issue 14): no output lost, honest defaults, and from a table row to the next command.

Every test runs the real command line (sensor.cli.main, or `python -m sensor` where a process must restart)
on captures crafted with scapy and staged files on disk, against a real SQLite store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sensor.cli import build_parser, main
from sensor.store.db import FindingStore
from sensor.store.query import Query
from tests import appbuild as ab
from tests.builders import gzip_named, sample_text
from tests.netbuild import segments, write_pcap
from tests.test_live import HOME_NET, Sensor, netns, replay  # noqa: F401  (netns is a fixture)

ROOT = Path(__file__).resolve().parents[1]


def _config(tmp: Path, cache: Path) -> Path:
    cfg = tmp / "sw.toml"
    cfg.write_text(f'cache_dir = "{cache}"\nobserver = "test"\n')
    return cfg


def _upload(tmp: Path, name: str, client: str = "10.1.2.3", server: str = "203.0.113.9", n: int = 1) -> Path:
    """A capture of an HTTP POST of a gzip member from `client` to `server`."""
    member = gzip_named(sample_text(20_000, n), f"part{n}.csv")
    req = ab.http_request("POST", f"/u/{n}", "drop.example", member)
    conv = ab.http_conversation([[("c2s", req)]], client=client, server=server)
    return write_pcap(tmp / name, segments(conv))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _scan(tmp: Path, cache: Path, *args: str, quiet: bool = True) -> int:
    return main([*(["-q"] if quiet else []), "scan", *args, "--config", str(_config(tmp, cache))])


# -- output is never lost -----------------------------------------------------------------------------


def test_scan_appends_its_json_lines_and_truncate_empties_them(tmp_path, rule_cache):
    pcap = _upload(tmp_path, "up.pcap")
    out, flows, objects = tmp_path / "f.jsonl", tmp_path / "flows.jsonl", tmp_path / "obj.jsonl"
    args = [str(pcap), "--no-db", "--jsonl", str(out), "--flows", str(flows), "--objects", str(objects)]
    assert _scan(tmp_path, rule_cache, *args) == 0
    first = (len(_lines(out)), len(_lines(flows)), len(_lines(objects)))
    assert first[0] >= 1 and first[1] == 1 and first[2] >= 1
    assert _scan(tmp_path, rule_cache, *args) == 0
    assert (len(_lines(out)), len(_lines(flows)), len(_lines(objects))) == tuple(2 * n for n in first)
    assert _scan(tmp_path, rule_cache, *args, "--truncate") == 0
    assert (len(_lines(out)), len(_lines(flows)), len(_lines(objects))) == first


def test_query_commands_append_too(tmp_path, rule_cache):
    db = tmp_path / "s.db"
    assert _scan(tmp_path, rule_cache, str(_upload(tmp_path, "up.pcap")), "--db", str(db)) == 0
    out = tmp_path / "q.jsonl"
    for _ in range(2):
        assert main(["-q", "findings", "--db", str(db), "--jsonl", str(out)]) == 0
        assert main(["-q", "incidents", "--db", str(db), "--jsonl", str(out)]) == 0
    n = len(_lines(out))
    assert n >= 2 and n % 2 == 0
    assert main(["-q", "findings", "--db", str(db), "--jsonl", str(out), "--truncate"]) == 0
    assert len(_lines(out)) == n // 2


def test_live_restarted_twice_keeps_every_line(netns, tmp_path, rule_cache):  # noqa: F811
    from tests.test_live import rewritten

    pcap = rewritten(tmp_path, [_upload(tmp_path, "up.pcap", client="10.1.2.3", server="203.0.113.9")])
    flows = tmp_path / "live-flows.jsonl"
    counts = []
    for _ in range(3):  # start, restart, restart: as systemd's Restart=on-failure or `systemctl restart` does
        sensor = Sensor(netns, tmp_path, rule_cache, extra=("--flows", str(flows)))
        replay(netns, pcap)
        time.sleep(1.5)
        sensor.stop()
        counts.append((len(_lines(sensor.jsonl)), len(_lines(flows))))
    per_run = counts[0]
    assert per_run[0] >= 1 and per_run[1] >= 1
    assert counts == [(per_run[0] * k, per_run[1] * k) for k in (1, 2, 3)]


@pytest.mark.parametrize(
    "command",
    [
        ["findings"],
        ["host-findings"],
        ["flows"],
        ["objects"],
        ["incidents"],
        ["correlate"],
        ["report", "--output", "REPORT"],
        ["prune", "--older-than", "30d"],
        ["explain", "0123456789abcdef"],
    ],
)
def test_query_commands_refuse_a_store_that_does_not_exist(tmp_path, capfd, command):
    missing = tmp_path / "typo.db"
    argv = [a.replace("REPORT", str(tmp_path / "r.html")) for a in command]
    assert main([*argv, "--db", str(missing)]) == 1
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and str(missing.name) in err[0] and "no such store" in err[0]
    assert not missing.exists() and not (tmp_path / "r.html").exists()


def test_host_from_path_that_misses_is_a_warning_and_never_this_machine(tmp_path, rule_cache, capfd):
    tree = tmp_path / "evidence" / "ws-07" / "Users" / "bob" / "AppData" / "Local" / "Temp"
    tree.mkdir(parents=True)
    (tree / "a.gz").write_bytes(gzip_named(sample_text(5000, 1), "a.csv"))
    (tree / "b.gz").write_bytes(gzip_named(sample_text(5000, 2), "b.csv"))
    out = tmp_path / "f.jsonl"
    # a pattern anchored at a relative path, given an absolute one: it matches nothing
    args = [str(tmp_path / "evidence"), "--no-db", "--jsonl", str(out), "--host-from-path", "^evidence/([^/]+)/"]
    assert _scan(tmp_path, rule_cache, *args, quiet=False) == 0
    err = capfd.readouterr().err
    warnings = [line for line in err.splitlines() if "does not match" in line]
    assert len(warnings) == 1 and "^evidence/([^/]+)/" in warnings[0] and str(tree) in warnings[0]
    hosts = {r["host"]["name"] for r in _lines(out)}
    assert hosts == {"unknown"}
    # the pattern the help text shows matches absolute and relative paths alike
    out.unlink()
    pattern = "(?:^|/)evidence/([^/]+)/"
    assert _scan(tmp_path, rule_cache, str(tmp_path / "evidence"), "--no-db", "--jsonl", str(out),
                 "--host-from-path", pattern) == 0  # fmt: skip
    assert {r["host"]["name"] for r in _lines(out)} == {"ws-07"}
    assert pattern in build_parser().format_help() or pattern.replace("evidence", "cases") in _help("scan")


def _help(command: str) -> str:
    p = build_parser()
    sub = next(a for a in p._subparsers._group_actions)  # noqa: SLF001
    return sub.choices[command].format_help()


# -- re-scans correct the store -------------------------------------------------------------------------


def test_a_rescan_with_a_corrected_home_net_replaces_the_stored_judgement(tmp_path, rule_cache, capfd):
    pcap = _upload(tmp_path, "up.pcap", client="172.31.5.5", server="198.51.100.7")
    db = tmp_path / "s.db"
    # first with a home_net that misses the client: the upload is external, an event
    assert _scan(tmp_path, rule_cache, str(pcap), "--db", str(db), "--home-net", "10.0.0.0/8") == 0
    with FindingStore(str(db)) as store:
        before = list(store.findings())
        first_run = store.runs()[-1]["id"]
    assert before and {r["event"]["kind"] for r in before} == {"event"}
    capfd.readouterr()
    assert main(["scan", str(pcap), "--db", str(db), "--home-net", "172.16.0.0/12",
                 "--config", str(_config(tmp_path, rule_cache))]) == 0  # fmt: skip
    summary = capfd.readouterr().err
    assert "judged anew" in summary
    with FindingStore(str(db)) as store:
        after = list(store.findings())
        runs = store.runs()
    assert [r["event"]["id"] for r in after] == [r["event"]["id"] for r in before]  # replaced, not doubled
    assert {r["event"]["kind"] for r in after} == {"alert"}
    assert {r["network"]["direction"] for r in after} == {"outbound"}
    assert runs[-1]["id"] != first_run
    # the run that last judged it is recorded
    from sqlalchemy import create_engine, text

    with create_engine(f"sqlite:///{db}").connect() as conn:
        assert {r[0] for r in conn.execute(text("select run_id from findings"))} == {runs[-1]["id"]}


def test_correlate_with_another_window_replaces_its_incidents(tmp_path, rule_cache):
    db = _demo_store(tmp_path, rule_cache)
    hostmap = tmp_path / "telemetry" / "host-map.csv"
    for n, window in enumerate(("10s", "15m", "2h", "1m", "15m")):  # each joins other evidence on the demo
        out = tmp_path / f"incidents-{n}.jsonl"
        argv = ["-q", "correlate", "--db", str(db), "--window", window, "--host-map", str(hostmap), "--jsonl", str(out)]
        assert main(argv) == 0
        with FindingStore(str(db)) as store:
            incidents = store.incident_records()
        # the store holds what this correlation derives: nothing left over from another window
        assert sorted(r["event"]["id"] for r in incidents) == sorted(r["event"]["id"] for r in _lines(out))
        ids = [r["event"]["id"] for r in incidents]
        evidence = [e["id"] for r in incidents for e in r["stagewatch"]["incident"]["evidence"]]
        assert len(ids) == len(set(ids)) >= 2
        anchors = [e for e in evidence if e]
        # no two stored incidents over the same evidence
        assert len(anchors) == len(set(anchors)), window


def _demo_store(tmp: Path, cache: Path) -> Path:
    """The demo's data scanned into a store, as `make demo` does."""
    py = sys.executable
    subprocess.run([py, str(ROOT / "samples" / "make_staged.py"), str(tmp / "staged")], check=True, capture_output=True)
    subprocess.run([py, str(ROOT / "pcaps" / "make_samples.py"), str(tmp / "pcaps")], check=True, capture_output=True)
    subprocess.run([py, str(ROOT / "samples" / "make_hostevents.py"), str(tmp / "telemetry"), str(tmp / "staged")],
                   check=True, capture_output=True)  # fmt: skip
    db = tmp / "demo.db"
    args = [str(tmp / "staged"), str(tmp / "pcaps"), str(tmp / "telemetry"), "--db", str(db)]
    args += ["--host-from-path", "/staged/([^/]+)/", "--home-net", "10.0.0.0/8,2001:db8::/48"]
    assert _scan(tmp, cache, *args) == 0
    return db


# -- from a row to an answer ----------------------------------------------------------------------------


def test_findings_filters_and_limits(tmp_path, rule_cache, capsys):
    db = _demo_store(tmp_path, rule_cache)

    def q(*args: str) -> list[dict]:
        capsys.readouterr()
        assert main(["-q", "findings", "--db", str(db), "--jsonl", "-", *args]) == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    everything = q()
    assert len(everything) >= 10
    times = [r["@timestamp"] for r in everything]
    assert times == sorted(times)
    newest = q("--limit", "3")
    assert [r["event"]["id"] for r in newest] == [r["event"]["id"] for r in everything[-3:]]
    top = q("--limit", "2", "--sort", "severity")
    assert [r["event"]["severity"] for r in top] == sorted((r["event"]["severity"] for r in everything), reverse=True)[
        :2
    ]
    assert {r["stagewatch"]["format"] for r in q("--format", "bzip2")} == {"bzip2"}
    assert all(r["host"]["name"].lower() == "ws-01" for r in q("--host", "WS-01.corp.example"))
    assert q("--host", "ws-01")
    assert all(r["event"]["severity"] >= 70 for r in q("--min-severity", "70"))
    assert {r["event"]["kind"] for r in q("--kind", "alert")} == {"alert"}
    some = next(r for r in everything if r.get("source"))
    ip = some["source"]["ip"]
    by_ip = q("--ip", ip)
    assert by_ip and all(ip in (r.get("source", {}).get("ip"), r.get("destination", {}).get("ip")) for r in by_ip)
    near = ip[:-1]  # 10.1.2.44 -> 10.1.2.4: a text match alone would take the longer address
    assert all(near in (r.get("source", {}).get("ip"), r.get("destination", {}).get("ip")) for r in q("--ip", near))
    cid = some["network"]["community_id"]
    assert {r["network"]["community_id"] for r in q("--community-id", cid)} == {cid}
    sha = some["file"]["hash"]["sha256"]
    assert {r["file"]["hash"]["sha256"] for r in q("--sha256", sha.upper())} == {sha}
    assert {r["network"]["protocol"] for r in q("--protocol", "smtp")} == {"smtp"}
    assert all(r["@timestamp"] >= "2025-11-22T08:26:41" for r in q("--since", "2025-11-22T08:26:41"))
    assert all(r["@timestamp"] <= "2025-11-22T08:26:41" for r in q("--until", "2025-11-22T08:26:41"))


def test_host_findings_flows_and_objects_are_queryable(tmp_path, rule_cache, capsys):
    pcap = _upload(tmp_path, "up.pcap")
    db = tmp_path / "s.db"
    assert _scan(tmp_path, rule_cache, str(pcap), "--db", str(db), "--objects", str(tmp_path / "o.jsonl")) == 0
    capsys.readouterr()
    assert main(["-q", "flows", "--db", str(db), "--jsonl", "-"]) == 0
    flows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(flows) == 1
    flow_id = flows[0]["event"]["id"]
    assert main(["-q", "objects", "--db", str(db), "--flow", flow_id[:8], "--jsonl", "-"]) == 0
    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert objects and {o["stagewatch"]["flow"]["id"] for o in objects} == {flow_id}
    assert {o["event"]["id"] for o in objects} == {o["event"]["id"] for o in _lines(tmp_path / "o.jsonl")}
    # the table shows the ids the next command takes
    assert main(["flows", "--db", str(db)]) == 0
    assert flow_id[:8] in capsys.readouterr().out
    # objects age out with prune like the rest
    assert main(["-q", "prune", "--db", str(db), "--older-than", "1d", "--no-vacuum"]) == 0
    assert main(["-q", "objects", "--db", str(db), "--jsonl", "-"]) == 0
    assert capsys.readouterr().out == ""


def test_table_rows_carry_the_short_id_time_host_and_ipv6_endpoints(tmp_path, rule_cache, capsys):
    db = _demo_store(tmp_path, rule_cache)
    capsys.readouterr()
    assert main(["findings", "--db", str(db)]) == 0
    table = capsys.readouterr().out
    with FindingStore(str(db)) as store:
        records = list(store.findings())
    for r in records[:5]:
        assert r["event"]["id"][:8] in table
    assert "[2001:db8::10]:" in table  # IPv6 endpoints as [addr]:port
    assert "WS-01" in table and "2025-11-22 08:26" in table
    # every id a table shows is one explain accepts
    assert main(["-q", "explain", records[0]["event"]["id"][:8], "--db", str(db), "--jsonl", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == records[0]["event"]["id"]


def test_every_finding_carries_event_dataset(tmp_path, rule_cache):
    db = _demo_store(tmp_path, rule_cache)
    with FindingStore(str(db)) as store:
        assert {r["event"].get("dataset") for r in store.findings()} == {"stagewatch.finding"}


# -- consistency ------------------------------------------------------------------------------------------


def test_quiet_and_debug_are_accepted_after_the_subcommand(tmp_path, rule_cache, capfd):
    db = _demo_store(tmp_path, rule_cache)
    capfd.readouterr()
    assert main(["findings", "--db", str(db), "-q"]) == 0
    assert capfd.readouterr().out == ""
    assert main(["incidents", "--debug", "--db", str(db)]) == 0
    a = build_parser().parse_args(["rules", "export", "--target", "splunk", "-q"])
    assert a.quiet is True


def test_every_flag_has_help_text():
    missing = []
    p = build_parser()

    def walk(parser, path):
        for action in parser._actions:  # noqa: SLF001
            if action.help is None:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
            if action.choices and isinstance(action.choices, dict):
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}")

    walk(p, "stagewatch")
    assert missing == []


def test_one_flag_name_per_meaning():
    assert "--output" in _help("report") and "--html" not in _help("report")
    assert "--host-name" in _help("scan") and "--host " not in _help("scan").replace("--host-", "")
    assert "--host NAME" in _help("incidents") and "--host NAME" in _help("findings")


@pytest.mark.parametrize("flags", [["--home-net", "10.0.0/33"], ["--observer-ip", "not-an-ip"]])
def test_bad_flag_values_are_usage_errors(tmp_path, flags):
    f = tmp_path / "x.bin"
    f.write_bytes(b"x" * 100)
    assert main(["scan", str(f), "--no-db", *flags]) == 2


def test_a_skipped_symlink_has_its_line(tmp_path, rule_cache, capfd):
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "real.txt").write_text("hello")
    os.symlink("/etc/passwd", tree / "link")
    assert _scan(tmp_path, rule_cache, str(tree), "--no-db", quiet=False) == 0
    err = capfd.readouterr().err
    assert any("link" in line and "symlink" in line and "/etc/passwd" in line for line in err.splitlines())


def test_live_takes_what_scan_takes():
    lv = _help("live")
    for flag in ("--syslog", "--syslog-format", "--syslog-ca", "--objects", "--extract", "--raw-only", "--truncate"):
        assert flag in lv, flag


def test_live_writes_objects_and_extracts(netns, tmp_path, rule_cache):  # noqa: F811
    from tests.test_live import rewritten

    pcap = rewritten(tmp_path, [_upload(tmp_path, "up.pcap")])
    objects, carved = tmp_path / "live-objects.jsonl", tmp_path / "carved"
    sensor = Sensor(netns, tmp_path, rule_cache, extra=("--objects", str(objects), "--extract", str(carved)))
    replay(netns, pcap)
    time.sleep(1.5)
    sensor.stop()
    found = _lines(sensor.jsonl)
    assert found and _lines(objects)
    for r in found:
        sha = r["file"]["hash"]["sha256"]
        assert (carved / sha[:2] / sha).is_file()


# -- honest messages ----------------------------------------------------------------------------------------


def test_a_scan_where_no_flow_touches_home_net_says_so_once(tmp_path, rule_cache, capfd):
    pcap = _upload(tmp_path, "up.pcap", client="172.31.5.5", server="198.51.100.7")
    assert _scan(tmp_path, rule_cache, str(pcap), "--no-db", "--home-net", "10.0.0.0/8", quiet=False) == 0
    lines = [line for line in capfd.readouterr().err.splitlines() if "home_net" in line]
    assert len(lines) == 1 and "10.0.0.0/8" in lines[0]
    assert _scan(tmp_path, rule_cache, str(pcap), "--no-db", "--home-net", "172.16.0.0/12", quiet=False) == 0
    assert "home_net" not in capfd.readouterr().err


def test_live_honours_objects_and_extract_dir_in_the_config(netns, tmp_path, rule_cache):  # noqa: F811
    from tests.test_live import rewritten

    pcap = rewritten(tmp_path, [_upload(tmp_path, "up.pcap")])
    carved = tmp_path / "carved-cfg"
    cfg = tmp_path / "objects.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "test"\nobjects = true\nextract_dir = "{carved}"\n')
    sensor = Sensor(netns, tmp_path, rule_cache, config=cfg)
    replay(netns, pcap)
    time.sleep(1.5)
    sensor.stop()
    with FindingStore(str(sensor.db), create=False) as store:
        objects = store.query("objects", Query())
        found = list(store.findings())
    assert objects and found
    assert all((carved / r["file"]["hash"]["sha256"][:2] / r["file"]["hash"]["sha256"]).is_file() for r in found)


def test_dash_reads_standard_input_for_scan_and_the_host_map(tmp_path, rule_cache):
    pcap = _upload(tmp_path, "up.pcap")
    cfg = _config(tmp_path, rule_cache)
    base = [sys.executable, "-m", "sensor", "-q", "scan", "--no-db", "--config", str(cfg), "--home-net", "10.0.0.0/8"]
    piped = subprocess.run([*base, "-", "--jsonl", "-"], input=pcap.read_bytes(), capture_output=True, cwd=ROOT)
    named = subprocess.run([*base, str(pcap), "--jsonl", "-"], capture_output=True, cwd=ROOT)
    assert piped.returncode == 0 and named.returncode == 0, piped.stderr
    got = [json.loads(line) for line in piped.stdout.decode().splitlines()]
    want = [json.loads(line) for line in named.stdout.decode().splitlines()]
    assert got and [r["file"]["hash"]["sha256"] for r in got] == [r["file"]["hash"]["sha256"] for r in want]
    assert {r["event"]["kind"] for r in got} == {"alert"}
    assert not list((rule_cache / "stdin").iterdir())  # the spooled copy is removed after the scan
    empty = subprocess.run([*base, "-"], input=b"", capture_output=True, cwd=ROOT)
    assert empty.returncode == 1 and b"standard input is empty" in empty.stderr
    db = _demo_store(tmp_path, rule_cache)
    hostmap = (tmp_path / "telemetry" / "host-map.csv").read_bytes()
    done = subprocess.run([sys.executable, "-m", "sensor", "-q", "correlate", "--db", str(db), "--host-map", "-",
                           "--jsonl", "-"], input=hostmap, capture_output=True, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert any(json.loads(line)["host"]["name"] == "lnx-12" for line in done.stdout.decode().splitlines())


def test_a_rescan_with_new_tuning_replaces_stored_findings_and_host_findings(tmp_path, rule_cache):
    db = _demo_store(tmp_path, rule_cache)
    with FindingStore(str(db)) as store:
        hits = store.host_finding_records()
        alerts = [r for r in store.findings() if r["event"]["kind"] == "alert" and r.get("host")]
    assert hits and alerts
    tuning = tmp_path / "suppress.yaml"
    tuning.write_text(
        "suppress:\n"
        "  - {name: lab-hosts, reason: the lab's own test hosts, author: soc, host: ['lnx-12', 'WS-*']}\n"
        "  - {name: lab-python, reason: the lab's python, author: soc, process: '*python*'}\n"
    )
    args = [str(tmp_path / "staged"), str(tmp_path / "telemetry"), "--db", str(db), "--suppress", str(tuning)]
    args += ["--host-from-path", "/staged/([^/]+)/"]
    assert _scan(tmp_path, rule_cache, *args) == 0
    with FindingStore(str(db)) as store:
        after_hits = {r["event"]["id"]: r for r in store.host_finding_records()}
        after = {r["event"]["id"]: r for r in store.findings()}
    assert set(after_hits) == {r["event"]["id"] for r in hits}  # replaced, not doubled
    names = {r["stagewatch"].get("suppressed", {}).get("name") for r in after_hits.values()}
    assert names <= {"lab-hosts", "lab-python"} and None not in names
    suppressed = [after[r["event"]["id"]] for r in alerts if r["host"]["name"].lower().startswith(("lnx-12", "ws-"))]
    assert suppressed and all(r["stagewatch"]["suppressed"]["name"] == "lab-hosts" for r in suppressed)
    assert all(r["event"]["kind"] == "event" for r in suppressed)
