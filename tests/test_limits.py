"""Limits are never silent: a bound that stops work is counted in the run record (the store's runs.stats) and
the summary, with a one-line warning naming where. One test per cap (issue "Hostile input")."""

from __future__ import annotations

import base64
import gzip
import json
import random
import sqlite3
import subprocess
import sys
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
