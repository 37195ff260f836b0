"""The planner and planned segments: rotated captures of one sensor cut into segments that share no flow.
A member whose TCP stream is split across two rotated files is found exactly once with --read-ahead 1 (as
a single process finds it), missed with --group-by file; the event.id set is the same for one process,
planned segments, and planned segments on 2 workers."""

from __future__ import annotations

import gc
import hashlib
import json
from pathlib import Path

from sensor.capture.plan import parse_size, plan
from sensor.cli import main as cli_main
from tests.builders import gzip_named, random_bytes, sample_text, zlib_member
from tests.conftest import need
from tests.netbuild import BASE_TIME, Conv, segments, write_pcap

SPLIT = gzip_named(sample_text(300_000, 1) + random_bytes(100_000, 2), "split.csv")
EARLY, LATE = zlib_member(sample_text(40_000, 3)), zlib_member(sample_text(40_000, 4))


def rotated(folder: Path) -> tuple[Path, Path]:
    """Two rotated files of one sensor: the split upload crosses from the first into the second."""
    folder.mkdir()
    split = segments(Conv("10.0.0.5", 40001, "198.51.100.9", 9000, sends=[("c2s", b"HDR1" + SPLIT)], start=BASE_TIME))
    early = segments(Conv("10.0.0.6", 40002, "198.51.100.9", 9001, sends=[("c2s", EARLY)], start=BASE_TIME + 0.01))
    late = segments(Conv("10.0.0.7", 40003, "198.51.100.9", 9002, sends=[("c2s", LATE)], start=BASE_TIME + 5))
    half = len(split) // 2
    first = sorted(split[:half] + early, key=lambda p: float(p.time))
    second = sorted(split[half:] + late, key=lambda p: float(p.time))
    assert float(first[-1].time) < float(second[0].time)
    return write_pcap(folder / "cap-0001.pcap", first), write_pcap(folder / "cap-0002.pcap", second)


def run(tmp: Path, cache: Path, name: str, *extra: str) -> list[dict]:
    cfg = tmp / "sw.toml"
    cfg.write_text(f'cache_dir = "{cache}"\nobserver = "test"\n')
    out = tmp / f"{name}.jsonl"
    args = ["-q", "scan", str(tmp / "rot"), "--no-db", "--jsonl", str(out), "--config", str(cfg)]
    assert cli_main([*args, "--home-net", "10.0.0.0/8", *extra]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_plan_chains_and_segments(tmp_path):
    a, b = rotated(tmp_path / "rot")
    (one,) = plan([str(tmp_path)], "dir", parse_size("2G"), 1)
    assert one.files == (str(a), str(b)) and one.read_back == () and one.read_ahead == ()
    s0, s1 = plan([str(tmp_path)], "dir", 1, 1)
    assert (s0.files, s0.read_back, s0.read_ahead) == ((str(a),), (), (str(b),))
    assert (s1.files, s1.read_back, s1.read_ahead) == ((str(b),), (str(a),), ())
    f0, f1 = plan([str(tmp_path)], "file", 1, 1)
    assert f0.read_ahead == f1.read_back == ()
    assert [s.chain for s in plan([str(tmp_path)], "sensor:(rot)", 1, 1)] == ["rot", "rot"]


def test_a_member_across_rotated_files_is_found_once_and_ids_match(tmp_path, rule_cache):
    rotated(tmp_path / "rot")
    sha = hashlib.sha256(SPLIT).hexdigest()
    single = run(tmp_path, rule_cache, "single")
    planned = run(tmp_path, rule_cache, "planned", "--segment-size", "1", "--read-ahead", "1")
    two = run(tmp_path, rule_cache, "two", "--segment-size", "1", "--read-ahead", "1", "--workers", "2")
    ids = {r["event"]["id"] for r in single}
    assert [r["file"]["hash"]["sha256"] for r in planned].count(sha) == 1
    assert {r["event"]["id"] for r in planned} == ids == {r["event"]["id"] for r in two}
    assert len(ids) == 3  # the split member, and one upload inside each file
    per_file = run(tmp_path, rule_cache, "per-file", "--group-by", "file")
    assert sha not in {r["file"]["hash"]["sha256"] for r in per_file}  # lost at the file edge, as documented
    assert {hashlib.sha256(m).hexdigest() for m in (EARLY, LATE)} <= {r["file"]["hash"]["sha256"] for r in per_file}


def test_plan_command(tmp_path, capsys):
    rotated(tmp_path / "rot")
    out = tmp_path / "plan.jsonl"
    assert cli_main(["-q", "plan", str(tmp_path), "--segment-size", "1", "--jsonl", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(r["read_ahead"]) for r in rows] == [1, 0] and [len(r["read_back"]) for r in rows] == [0, 1]
    assert cli_main(["-q", "plan", str(tmp_path / "nothing-here")]) == 1


def test_dask_local_cluster_gives_the_same_event_ids(tmp_path, rule_cache):
    try:
        import distributed
    except ImportError:
        need("the dask extra is not installed (pip install 'stagewatch[dask]')")
    rotated(tmp_path / "rot")
    single = {r["event"]["id"] for r in run(tmp_path, rule_cache, "single")}
    gc.collect()  # yara-x scanners must be freed here, not by a collection on the cluster's event-loop thread
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        on_dask = run(tmp_path, rule_cache, "dask", "--segment-size", "1", "--dask", cluster.scheduler_address)
        gc.collect()
    assert {r["event"]["id"] for r in on_dask} == single
    missing = tmp_path / "gone"
    missing.mkdir()
    assert (
        cli_main(["-q", "scan", str(missing), "--no-db", "--dask", "tcp://127.0.0.1:1"]) == 1
    )  # unreachable: one line


def test_a_rerun_skips_segments_already_done(tmp_path, rule_cache):
    from sensor.store.db import FindingStore

    rotated(tmp_path / "rot")
    db = tmp_path / "sw.db"
    cfg = tmp_path / "sw.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "test"\n')
    args = ["-q", "scan", str(tmp_path / "rot"), "--db", str(db), "--config", str(cfg), "--segment-size", "1"]
    assert cli_main([*args, "--home-net", "10.0.0.0/8"]) == 0
    with FindingStore(str(db)) as store:
        complete = {r["event"]["id"] for r in store.findings()}
        done = store.done_segments()
        assert len(done) == 2 and len(complete) == 3
        with store._engine.begin() as conn:  # a driver killed after the first segment: the second undone
            from sqlalchemy import text

            second = sorted(done)[0]
            conn.execute(text("DELETE FROM segments WHERE segment_key = :k"), {"k": second})
            conn.execute(text("DELETE FROM findings"))
    assert cli_main([*args, "--home-net", "10.0.0.0/8"]) == 0
    with FindingStore(str(db)) as store:
        redone = {r["event"]["id"] for r in store.findings()}
        stats = store.runs()[-1]["stats"]
        assert len(store.done_segments()) == 2
    assert stats["net"]["segments_skipped"] == 1
    assert 0 < len(redone) < len(complete) and redone <= complete  # only the undone segment ran again


def half_closed(folder: Path) -> bytes:
    """A client that sends its request and FIN in one file, the server's answer (a member) in the next."""
    from scapy.all import IP, TCP, Ether

    folder.mkdir()
    member = gzip_named(sample_text(6000, 21) + random_bytes(3000, 22), "answer.csv")
    c, s, cp, sp = "10.0.0.5", "198.51.100.9", 40100, 9100
    ci, si = 1000, 5000

    def pkt(t: float, src: str, dst: str, sport: int, dport: int, flags: str, seq: int, ack: int, data: bytes = b""):
        p = Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack) / data
        p.time = t
        return p

    req = b"GET-ANSWER\n"
    first = [
        pkt(BASE_TIME, c, s, cp, sp, "S", ci, 0),
        pkt(BASE_TIME + 0.01, s, c, sp, cp, "SA", si, ci + 1),
        pkt(BASE_TIME + 0.02, c, s, cp, sp, "A", ci + 1, si + 1),
        pkt(BASE_TIME + 0.03, c, s, cp, sp, "PA", ci + 1, si + 1, req),
        pkt(BASE_TIME + 0.04, c, s, cp, sp, "FA", ci + 1 + len(req), si + 1),  # half-close: the client is done
    ]
    second, t, off = [], BASE_TIME + 1, 0
    while off < len(member):
        second.append(pkt(t, s, c, sp, cp, "PA", si + 1 + off, ci + 2 + len(req), member[off : off + 1400]))
        off, t = off + 1400, t + 0.01
    second.append(pkt(t, s, c, sp, cp, "FA", si + 1 + len(member), ci + 2 + len(req)))
    second.append(pkt(t + 0.01, c, s, cp, sp, "A", ci + 2 + len(req), si + 2 + len(member)))
    write_pcap(folder / "cap-0001.pcap", first)
    write_pcap(folder / "cap-0002.pcap", second)
    return member


def test_a_half_closed_connection_is_not_picked_up_again_by_the_next_segment(tmp_path, rule_cache):
    member = half_closed(tmp_path / "rot")
    sha = hashlib.sha256(member).hexdigest()
    single = run(tmp_path, rule_cache, "single")
    planned = run(tmp_path, rule_cache, "planned", "--segment-size", "1", "--read-ahead", "1")
    assert [r["file"]["hash"]["sha256"] for r in single] == [sha]
    assert [r["event"]["id"] for r in planned] == [r["event"]["id"] for r in single]  # once, not twice


def test_a_worker_process_serving_two_runs_uses_each_runs_settings(tmp_path, rule_cache):
    """A long-lived (Dask) worker keeps compiled detectors per process: a second run with another observer
    must not reuse the first run's detector, or its event.ids would carry the wrong sensor."""
    from sensor.config import Settings
    from sensor.pipeline import segment_task

    rotated(tmp_path / "rot")
    (seg, _) = plan([str(tmp_path / "rot")], "dir", 1, 1)
    ids = {}
    for observer in ("sensor-a", "sensor-b"):
        settings = Settings(observer=observer, cache_dir=rule_cache, home_net=("10.0.0.0/8",))
        results, _ = segment_task(seg, settings)
        ids[observer] = {r.event_id for r in results if hasattr(r, "event_id")}
    assert ids["sensor-a"] and ids["sensor-b"] and not ids["sensor-a"] & ids["sensor-b"]
