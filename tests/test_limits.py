"""Limits are never silent: a bound that stops work is counted in the run record (the store's runs.stats) and
the summary, with a one-line warning naming where. One test per cap (issue "Hostile input")."""

from __future__ import annotations

import base64
import gzip
import io
import json
import random
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests import appbuild as ab
from tests.netbuild import segments, write_pcap

MEMBER = gzip.compress(random.Random(7).randbytes(1000) + b"customer rows " * 400)


def _json_upload(tmp: Path, value: bytes, name: str) -> Path:
    body = ab.json_body({"data": value.decode()})
    req = ab.http_request(
        "POST", "/api/v2/sync", "api.example.net", body, headers=[("Content-Type", "application/json")]
    )
    conv = ab.http_conversation([(req, ab.http_response(200, b"{}"))], server="203.0.113.80")
    return write_pcap(tmp / name, segments(conv))


def _scan(tmp: Path, pcap: Path) -> tuple[list[dict], dict, str]:
    db, out = tmp / f"{pcap.stem}.db", tmp / f"{pcap.stem}.jsonl"
    cmd = [sys.executable, "-m", "sensor", "scan", "--db", str(db), "--jsonl", str(out), "--home-net", "10.0.0.0/8"]
    done = subprocess.run([*cmd, str(pcap)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as conn:
        (stats,) = conn.execute("select stats from runs").fetchone()
    return [json.loads(line) for line in out.read_text().splitlines()], json.loads(stats), done.stderr


def _nested(layers: int, inner: bytes = MEMBER) -> bytes:
    for _ in range(layers):
        inner = base64.b64encode(inner)
    return inner


@pytest.mark.parametrize("layers", [1, 2, 3, 5, 8])
def test_a_member_under_up_to_eight_base64_layers_in_json_is_found(tmp_path, layers):
    found, stats, _ = _scan(tmp_path, _json_upload(tmp_path, _nested(layers), f"b64x{layers}.pcap"))
    (alert,) = [r for r in found if r["event"]["kind"] == "alert"]
    assert alert["stagewatch"]["format"] == "gzip"
    assert alert["stagewatch"]["encoding"].count("base64") == layers
    assert not stats["limits"]


@pytest.mark.parametrize("layers", [9, 12])
def test_deeper_base64_nesting_is_a_depth_limit_hit_counted_and_shown(tmp_path, layers):
    """The bug this fixes: 8 layers gave no finding and no limit anywhere (the depth cap was 3 and nothing
    flagged the run); now 8 are decoded, and deeper nesting is counted in the run record and the summary."""
    found, stats, err = _scan(tmp_path, _json_upload(tmp_path, _nested(layers), f"b64x{layers}.pcap"))
    assert not [r for r in found if r["event"]["kind"] == "alert"]
    assert stats["limits"] == {"depth": 1}
    assert "encoding depth limit 8 reached" in err
    assert "limits hit" in err and "depth 1" in err


def test_deep_base64_of_anything_is_flagged_not_just_of_known_headers(tmp_path):
    """Base64 of base64 of ... converges on text starting "Vm0w" whatever is inside (from about seven layers
    on): sixteen layers over plain text are decoded to the limit and counted, not passed over as one more
    long string."""
    _, stats, _ = _scan(tmp_path, _json_upload(tmp_path, _nested(16, b"just some words " * 64), "text.pcap"))
    assert stats["limits"] == {"depth": 1}


# -- caps on one staged file: counted in the run record and the summary, and shown on the finding ------------------

STAGED = "Users/bob/AppData/Local/Temp"


def _scan_staged(tmp: Path, files: dict[str, bytes], limits: str) -> tuple[list[dict], dict, str]:
    folder = tmp / "tree" / STAGED
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    cfg = tmp / "sw.toml"
    cfg.write_text(f"[limits]\n{limits}\n")
    db, out = tmp / "s.db", tmp / "o.jsonl"
    cmd = [sys.executable, "-m", "sensor", "scan", "--config", str(cfg), "--db", str(db), "--jsonl", str(out)]
    done = subprocess.run([*cmd, str(tmp / "tree")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as conn:
        (stats,) = conn.execute("select stats from runs").fetchone()
    return [json.loads(line) for line in out.read_text().splitlines()], json.loads(stats), done.stderr


def _limits_on(rec: dict) -> dict[str, int]:
    return {h["limit"]: h["value"] for h in rec["stagewatch"].get("limits", [])}


def test_output_cap_stops_a_member_counts_it_and_shows_it_on_the_finding(tmp_path):
    bomb = gzip.compress(b"\x00" * (8 << 20))  # 8 MiB of output from 8 KiB
    found, stats, err = _scan_staged(tmp_path, {"rows.gz": bomb}, "max_output = 1048576\nmax_ratio = 100000")
    (rec,) = found
    assert _limits_on(rec).get("output_bytes", 0) >= 1 << 20
    assert stats["limits"].get("output_bytes") == 1
    assert "output_bytes 1" in err


def test_ratio_cap_stops_a_bomb_counts_it_and_shows_it_on_the_finding(tmp_path):
    bomb = gzip.compress(b"\x00" * (16 << 20))
    found, stats, _ = _scan_staged(tmp_path, {"rows.gz": bomb}, "max_ratio = 50")
    (rec,) = found
    assert "ratio" in _limits_on(rec)
    assert stats["limits"].get("ratio") == 1


def test_entry_listing_cap_is_counted_and_shown(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(40):
            z.writestr(f"part{i:03d}.csv", b"a,b\n%d,%d\n" % (i, i) * 20)
    found, stats, _ = _scan_staged(tmp_path, {"parts.zip": buf.getvalue()}, "max_entries = 10")
    (rec,) = [r for r in found if r["stagewatch"]["format"] == "zip"]
    assert _limits_on(rec) == {"entries": 10}
    assert stats["limits"].get("entries") == 1


def test_encoded_run_cap_decodes_that_much_and_counts_it(tmp_path):
    text = b"data=" + base64.b64encode(MEMBER + random.Random(1).randbytes(200_000))
    found, stats, err = _scan_staged(tmp_path, {"post.txt": text}, "max_encoded = 65536")
    assert stats["limits"].get("encoded_bytes", 0) >= 1  # once per capped window of the run that was decoded
    assert "longer than 65536 bytes; decoded that much" in err
    assert [r["stagewatch"]["format"] for r in found] == ["gzip"]  # its start decoded: the member is still seen


def test_candidate_flood_is_counted_not_silently_dropped(tmp_path):
    flood = b"x\x9c" * 60_000 + gzip.compress(b"rows " * 2000)
    found, stats, err = _scan_staged(tmp_path, {"flood.bin": flood}, "candidate_flood = 1000")
    assert stats["limits"].get("candidates", 0) >= 1
    assert "limits hit" in err and "candidates" in err


def test_a_limit_hit_on_an_object_without_a_finding_is_on_its_object_record(tmp_path):
    """--objects: the body whose base64 nesting went past max_depth says so itself (a hunt can find it)."""
    pcap = _json_upload(tmp_path, _nested(12), "b64x12-objects.pcap")
    objects = tmp_path / "objects.jsonl"
    cmd = [sys.executable, "-m", "sensor", "-q", "scan", "--no-db", "--jsonl", str(tmp_path / "f.jsonl")]
    done = subprocess.run([*cmd, "--objects", str(objects), "--home-net", "10.0.0.0/8", str(pcap)], capture_output=True)
    assert done.returncode == 0, done.stderr
    recs = [json.loads(line) for line in objects.read_text().splitlines()]
    hit = [r for r in recs if r["stagewatch"].get("limits")]
    assert len(hit) == 1 and hit[0]["http"]["request"]["method"] == "POST"
    assert [(h["limit"], h["value"]) for h in hit[0]["stagewatch"]["limits"]] == [("depth", 8)]


# -- network caps: counted in the run record's network counters and shown on the summary's network row ----------


def test_network_caps_are_counted_in_the_run_record_and_the_summary(tmp_path):
    """Stream depth, the flow cap, the memory cap and the fragment buffer, each hit by one capture with small
    limits (FTP transfers that wait in vain: tests/test_smtp_ftp.py, ftp.expired)."""
    from scapy.all import IP, UDP, Ether, Raw, fragment

    from tests.netbuild import BASE_TIME, Conv

    big = random.Random(5).randbytes(300_000)
    convs = [Conv("10.0.0.5", 40000, "203.0.113.9", 8000, [("c2s", big)], start=BASE_TIME)]  # past stream_depth
    convs += [  # more open flows than max_flows, each holding bytes against the memcap
        Conv("10.0.0.6", 41000 + i, "203.0.113.10", 9000, [("c2s", random.Random(i).randbytes(3000))], close=None,
             start=BASE_TIME + 1 + i * 0.01)
        for i in range(40)
    ]  # fmt: skip
    pkts = [p for c in convs for p in segments(c)]
    datagram = IP(src="10.0.0.7", dst="203.0.113.11", id=7) / UDP(sport=5000, dport=5001) / Raw(b"d" * 6000)
    frags = [Ether() / f for f in fragment(datagram, fragsize=500)]
    for n, f in enumerate(frags):
        f.time = BASE_TIME + 2 + n * 0.001
    pcap = write_pcap(tmp_path / "caps.pcap", sorted([*pkts, *frags], key=lambda p: float(p.time)))
    runs = {  # the flow cap first reached in one run, the memory cap in the other
        "stream_depth = 65536\nmax_flows = 10\nmax_fragments = 4": (
            "depth_hits",
            "flow_cap_evictions",
            "fragments_evicted",
        ),
        "memcap = 100000": ("evictions",),
    }  # fmt: skip
    for n, (limits, counters) in enumerate(runs.items()):
        cfg, db = tmp_path / f"sw{n}.toml", tmp_path / f"s{n}.db"
        cfg.write_text(f"[limits]\n{limits}\n")
        cmd = [sys.executable, "-m", "sensor", "scan", "--config", str(cfg), "--db", str(db), "--jsonl", "/dev/null"]
        done = subprocess.run(
            [*cmd, "--home-net", "10.0.0.0/8", str(pcap)], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        with sqlite3.connect(db) as conn:
            (stats,) = conn.execute("select stats from runs").fetchone()
        net = json.loads(stats)["net"]
        for counter in counters:
            assert net.get(counter, 0) >= 1, (counter, net)
            assert counter in done.stderr, (counter, done.stderr[-1500:])


def test_an_lzma_header_asking_for_a_huge_dictionary_is_a_memory_limit_not_an_allocation():
    """Found by fuzzing (fuzz/corpus/verify/lzma-2gib-dictionary): a 12-byte .lzma header asking for a 2 GiB
    dictionary made liblzma allocate it (the fuzzer's 2 GiB RSS limit stopped it). Decoders now run under a
    128 MiB memory limit, and reaching it is a `memory` limit hit."""
    from sensor.config import Limits
    from sensor.content import decompress

    header = b"\x5d" + (1 << 31).to_bytes(4, "little") + b"\xff" * 8 + b"\x00" * 16
    dec = decompress.run(decompress.lzma_alone_codec(), header, 0, Limits(), "test")
    assert dec.limit is not None and dec.limit.limit == "memory" and dec.output == 0


def test_a_candidate_stopped_by_the_memory_limit_is_counted_though_it_does_not_verify(tmp_path):
    header = b"\x5d" + (1 << 31).to_bytes(4, "little") + b"\xff" * 8 + b"\x00" + random.Random(2).randbytes(4000)
    found, stats, err = _scan_staged(tmp_path, {"big-dictionary.lzma": header}, "max_depth = 8")
    assert not found
    assert stats["limits"] == {"memory": 1}
    assert "memory 1" in err
