"""Suricata's outputs as input (issue "Beside Zeek and Suricata"): the real Suricata 7 runs over a capture of
four ways out (HTTP upload, HTTP download, SMTP attachment, FTP STOR), with eve fileinfo/flow records and
file-store v2; scanning its log folder gives the members the capture gives, on the same connections, with
Suricata's flow_id and community_id; its flows reach the store; bad inputs are one line each."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sensor.config import Settings
from sensor.model import Finding, FlowRecord, ObjectRecord
from sensor.output.ecs import finding_record, object_record
from sensor.pipeline import Job, scan_inputs
from sensor.stats import RunStats
from tests import suricata_run, waysout
from tests.conftest import need
from tests.waysout import ATTACHED, CLIENT, DOWNLOAD, HOME, MEMBERS, OUTSIDE, STORED, UPLOAD
from tests.waysout import sha as _sha


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return waysout.write(tmp_path_factory.mktemp("cap"))


@pytest.fixture(scope="module")
def suricata(capture: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(suricata_run.missing())
    return suricata_run.run(capture, tmp_path_factory.mktemp("suricata") / "logs")


def scan(paths: list[Path], cache: Path, **kw: object) -> tuple[list[object], RunStats]:
    stats = RunStats()
    settings = Settings(home_net=HOME, observer="test", cache_dir=cache, objects=True, **kw)  # type: ignore[arg-type]
    return list(scan_inputs(Job(tuple(str(p) for p in paths), settings), stats)), stats


def by_member(results: list[object]) -> dict[str, Finding]:
    out: dict[str, Finding] = {}
    for r in results:
        if isinstance(r, Finding) and r.member.sha256 in {_sha(m) for m in MEMBERS.values()}:
            assert r.member.sha256 not in out, "one finding per member"
            out[r.member.sha256] = r
    return out


def test_the_members_suricata_stored_are_the_ones_the_capture_holds(capture, suricata, rule_cache):
    direct = by_member(scan([capture], rule_cache)[0])
    results, stats = scan([suricata], rule_cache)
    bridged = by_member(results)
    assert set(bridged) == set(direct) == {_sha(m) for m in MEMBERS.values()}
    for sha, f in bridged.items():
        d = direct[sha]
        o, p = f.origin, d.origin
        assert (o.src, o.sport, o.dst, o.dport, o.direction) == (p.src, p.sport, p.dst, p.dport, p.direction), sha
        assert o.community_id == p.community_id  # Suricata's community_id is the one we compute
        assert f.kind == d.kind and f.member.format == d.member.format
        rec = finding_record(f)
        assert isinstance(rec["suricata"]["flow_id"], int) and rec["stagewatch"]["bridge"]["sensor"] == "suricata"
        assert rec["stagewatch"]["bridge"]["hash"]["sha256"] == rec["stagewatch"]["container"]["sha256"]
    up = bridged[_sha(UPLOAD)]
    assert (up.name, up.app.method, up.app.url, up.app.domain) == ("rows.gz", "POST", "/upload/rows.gz", "drop.example")
    assert up.origin.direction == "outbound" and up.kind.value == "alert" and up.origin.protocol == "http"
    assert bridged[_sha(DOWNLOAD)].origin.direction == "inbound"
    mail = bridged[_sha(ATTACHED)]
    assert mail.app.protocol == "smtp" and mail.app.mail_from == "bob@corp.example"
    assert "drop@mail.example" in mail.app.rcpt_to
    ftp = bridged[_sha(STORED)]
    assert ftp.app.protocol == "ftp" and ftp.origin.direction == "outbound"
    assert stats.bridge["files_scanned"] >= 4


def test_eve_flows_are_flows(suricata, rule_cache):
    results, _ = scan([suricata], rule_cache)
    flows = [r for r in results if isinstance(r, FlowRecord)]
    ports = {(f.src, f.sport, f.dst, f.dport) for f in flows}
    assert (CLIENT, 49152, OUTSIDE, 80) in ports and (CLIENT, 49170, OUTSIDE, 25) in ports
    up = next(f for f in flows if f.sport == 49152)
    assert up.direction == "outbound" and up.community_id.startswith("1:")
    assert len(UPLOAD) < up.bytes[0] < len(UPLOAD) + 2000  # payload: the POST's head and body


def test_files_suricata_did_not_store_are_objects_with_its_hashes(capture, tmp_path, rule_cache):
    need(suricata_run.missing())
    out = suricata_run.run(capture, tmp_path / "nostore", filestore=False)
    results, stats = scan([out], rule_cache)
    assert by_member(results) == {}
    seen = {r.app.sensor.sha256: r for r in results if isinstance(r, ObjectRecord) and not r.scanned}
    assert _sha(UPLOAD) in seen and seen[_sha(UPLOAD)].size == len(UPLOAD)
    rec = object_record(seen[_sha(UPLOAD)])
    assert rec["stagewatch"]["scanned"] is False and rec["suricata"]["flow_id"]
    assert stats.bridge["files_not_kept"] >= 4


def test_a_stored_file_without_its_record_and_a_bad_eve_line_one_line_each(suricata, tmp_path, rule_cache, warnings):
    copy = tmp_path / "logs"
    shutil.copytree(suricata, copy)
    eve = copy / "eve.json"
    lines = eve.read_text().splitlines()
    keep = [ln for ln in lines if _sha(DOWNLOAD) not in ln]  # the download's record is gone
    eve.write_text("\n".join([keep[0], "{not json", *keep[1:]]) + "\n")
    for meta in copy.glob(f"filestore/*/{_sha(DOWNLOAD)}.*.json"):
        meta.unlink()
    results, stats = scan([copy], rule_cache)
    found = {r.member.sha256: r for r in results if isinstance(r, Finding)}
    assert {_sha(UPLOAD), _sha(ATTACHED), _sha(STORED)} <= set(found)  # the rest processed
    orphan = found[_sha(DOWNLOAD)]  # still scanned: as a file, without its flow
    assert orphan.origin.path.endswith(_sha(DOWNLOAD))  # type: ignore[union-attr]
    assert stats.errors["eve_lines"] == 1 and stats.bridge["suricata.stored_without_record"] == 1
    text = warnings
    assert sum("not JSON" in ln for ln in text) == 1 and sum("no eve fileinfo record" in ln for ln in text) == 1


def test_real_eve_records_from_suricata_verify(tmp_path, rule_cache):
    """suricata-verify's expected eve.json (MIT, tests/data/bridges/NOTICE.md): a fileinfo record of a file not
    stored and not hashed (eicar.com downloaded over HTTP), and a tls record; read as they are."""
    data = Path(__file__).parent / "data" / "bridges" / "suricata"
    shutil.copy(data / "output-eve-fileinfo" / "expected" / "eve.json", tmp_path / "eve.json")
    (tmp_path / "tls").mkdir()
    shutil.copy(data / "tls-json-output-ids@be1ed6e4" / "expected" / "eve.json", tmp_path / "tls" / "eve.json")
    results, stats = scan([tmp_path], rule_cache)
    (obj,) = [r for r in results if isinstance(r, ObjectRecord)]
    assert (obj.name, obj.size, obj.scanned, obj.sha256) == ("eicar.com", 68, False, "")
    assert (obj.origin.src, obj.origin.dst, obj.origin.direction) == ("188.40.238.250", "10.16.1.11", "inbound")
    assert obj.app.url == "/download/eicar.com" and obj.app.sensor.flow_id == 841252990914572
    assert not obj.origin.client_to_server  # the server's port sent it
    assert stats.errors == {} and stats.bridge["suricata.eve_files"] == 2
