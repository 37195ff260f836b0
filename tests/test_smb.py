"""SMB2/3 (issue "More ways out", item 2): files written to and read from shares. Conversations crafted as
MS-SMB2 lays them out (tests/smbbuild.py: writes out of order and sparse, related compounds, an SMB1 NEGOTIATE
answered in SMB2, encrypted messages, UTF-16 names with a lone surrogate, a lost segment), and a real Samba
server (smbd) with smbclient putting and getting files in a network namespace, captured by tcpdump. Each is
scanned through the real pipeline; correlation then names the technique (T1048 out, T1570 between inside hosts).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from sensor.names import text, to_bytes
from sensor.output.ecs import finding_record
from tests import netns
from tests import smbbuild as sb
from tests.builders import gzip_named, sample_text, xz_member, zip_archive, zlib_member
from tests.conftest import need
from tests.incidents import scan_and_correlate
from tests.netbuild import Conv, data_indices, drop, nth_data, segments, write_pcap
from tests.test_http import run_pcap

CLIENT, SERVER, INSIDE_SERVER = "10.0.0.10", "203.0.113.25", "10.0.0.20"
GZ = gzip_named(sample_text(60_000, 51), "rows.csv")
ZIP = zip_archive({"q3/ledger.csv": sample_text(40_000, 52)})
XZ = xz_member(sample_text(30_000, 53))
ZL = zlib_member(sample_text(30_000, 54))
FID = sb.file_id(7)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _session(*, server: str = SERVER) -> list[tuple[str, bytes]]:
    return [
        ("c2s", sb.nbss(sb.negotiate_smb1())),
        ("s2c", sb.nbss(sb.negotiate_response())),
        ("c2s", sb.nbss(sb.tree_connect(2, f"\\\\{server}\\drop"))),
        ("s2c", sb.nbss(sb.tree_connect_response(2, tree=5))),
    ]


def _put(mid: int, fid: bytes, name: str, pieces: list[tuple[int, bytes]], tree: int = 5) -> list[tuple[str, bytes]]:
    out = [("c2s", sb.nbss(sb.create(mid, name, tree))), ("s2c", sb.nbss(sb.create_response(mid, fid, tree)))]
    for i, (offset, data) in enumerate(pieces):
        out.append(("c2s", sb.nbss(sb.write(mid + 1 + i, fid, offset, data, tree))))
        out.append(("s2c", sb.nbss(sb.write_response(mid + 1 + i, len(data), tree))))
    m = mid + 1 + len(pieces)
    return [*out, ("c2s", sb.nbss(sb.close(m, fid, tree))), ("s2c", sb.nbss(sb.close_response(m, tree)))]


def _run(tmp_path, rule_cache, sends, *, server: str = SERVER, name: str = "smb.pcap", drop_segment=None):
    conv = Conv(client=CLIENT, client_port=50445, server=server, server_port=445, sends=sends)
    pkts = segments(conv)
    if drop_segment is not None:
        pkts = drop(pkts, nth_data(conv, "c2s", drop_segment(conv)))
    return run_pcap(rule_cache, write_pcap(tmp_path / name, pkts))


def test_writes_out_of_order_make_the_file_that_was_put(tmp_path, rule_cache):
    third = len(GZ) // 3
    pieces = [(2 * third, GZ[2 * third :]), (0, GZ[:third]), (third, GZ[third : 2 * third])]
    run = _run(tmp_path, rule_cache, [*_session(), *_put(10, FID, "stage\\rows.gz", pieces)])
    f = run.one(GZ)
    rec = finding_record(f)
    assert rec["file"]["name"] == f"\\\\{SERVER}\\drop\\stage\\rows.gz"
    assert (rec["event"]["kind"], rec["network"]["direction"], rec["network"]["protocol"]) == (
        "alert",
        "outbound",
        "smb",
    )
    assert rec["smb"] == {"command": "WRITE"} and not f.member.truncated
    assert run.stats.app["smb.smb1_messages"] == 1  # the SMB1 NEGOTIATE, answered in SMB2 and followed


def test_sparse_writes_leave_a_hole_and_each_run_is_scanned(tmp_path, rule_cache):
    # the gzip's middle never written; a zip written past the hole at 1 MiB
    pieces = [(0, GZ[:4000]), (8000, GZ[8000:]), (1 << 20, ZIP)]
    run = _run(tmp_path, rule_cache, [*_session(), *_put(10, FID, "sparse.bin", pieces)])
    assert run.of(GZ) == []  # never the whole gzip's hash: its middle was not sent
    z = run.one(ZIP)
    assert z.name == f"\\\\{SERVER}\\drop\\sparse.bin"
    smb_objects = [o for o in run.objects if o.origin.protocol == "smb"]
    assert len(smb_objects) == 3 and all(o.truncated for o in smb_objects)
    assert run.stats.app["smb.sparse_files"] == 1


def test_a_related_compound_create_write_close(tmp_path, rule_cache):
    related = sb.RELATED
    req = sb.compound(
        sb.create(20, "out\\ledger.zip", tree=5),
        sb.write(21, sb.ALL_ONES, 0, ZIP, tree=5, flags=related),
        sb.close(22, sb.ALL_ONES, tree=5, flags=related),
    )
    resp = sb.compound(
        sb.create_response(20, FID, tree=5),
        sb.write_response(21, len(ZIP), tree=5, flags=related),
        sb.close_response(22, tree=5, flags=related),
    )
    run = _run(tmp_path, rule_cache, [*_session(), ("c2s", sb.nbss(req)), ("s2c", sb.nbss(resp))])
    f = run.one(ZIP)
    assert f.name == f"\\\\{SERVER}\\drop\\out\\ledger.zip" and f.origin.direction == "outbound"


def test_a_read_by_an_inside_client_from_an_outside_server_is_inbound(tmp_path, rule_cache):
    half = len(XZ) // 2
    sends = [
        *_session(),
        ("c2s", sb.nbss(sb.create(10, "tools\\kit.xz", tree=5))),
        ("s2c", sb.nbss(sb.create_response(10, FID, tree=5))),
        ("c2s", sb.nbss(sb.compound(sb.read(11, FID, 0, half, tree=5), sb.read(12, FID, half, len(XZ), tree=5)))),
        ("s2c", sb.nbss(sb.compound(sb.read_response(11, XZ[:half], tree=5), sb.read_response(12, XZ[half:], tree=5)))),
        ("c2s", sb.nbss(sb.close(13, FID, tree=5))),
        ("s2c", sb.nbss(sb.close_response(13, tree=5))),
    ]
    f = _run(tmp_path, rule_cache, sends).one(XZ)
    assert f.origin.direction == "inbound" and f.kind.value == "event"
    assert f.app is not None and f.app.command == "READ" and f.name == f"\\\\{SERVER}\\drop\\tools\\kit.xz"


def test_a_response_captured_before_its_request_is_paired(tmp_path, rule_cache):
    """A SPAN port merging the two directions can record an answer before the request that caused it: the READ
    answer waits for its request (MessageId), then the file is put together and named."""
    sends = [
        *_session(),
        ("c2s", sb.nbss(sb.create(10, "kit.zip", tree=5))),
        ("s2c", sb.nbss(sb.create_response(10, FID, tree=5))),
        ("c2s", sb.nbss(sb.read(11, FID, 0, len(ZIP), tree=5))),
        ("s2c", sb.nbss(sb.read_response(11, ZIP, tree=5))),
        ("c2s", sb.nbss(sb.close(12, FID, tree=5))),
        ("s2c", sb.nbss(sb.close_response(12, tree=5))),
    ]
    conv = Conv(client=CLIENT, client_port=50445, server=SERVER, server_port=445, sends=sends)
    pkts = segments(conv)
    is_request = nth_data(conv, "c2s", 3)  # negotiate, tree connect, create, then the READ request
    i = next(n for n, p in enumerate(pkts) if is_request(p))
    answer = [n for n in data_indices(pkts, (SERVER, 445)) if n > i]
    last = answer[-2]  # the READ answer's last segment (the CLOSE answer follows)
    pkts = [*pkts[:i], *pkts[i + 1 : last + 1], pkts[i], *pkts[last + 1 :]]
    run = run_pcap(rule_cache, write_pcap(tmp_path / "smb.pcap", pkts))
    assert run.stats.app["smb.responses_first"] > 0
    assert run.one(ZIP).name == f"\\\\{SERVER}\\drop\\kit.zip"


def test_internal_copy_is_internal(tmp_path, rule_cache):
    sends = [*_session(server=INSIDE_SERVER), *_put(10, FID, "rows.zlib", [(0, ZL)])]
    f = _run(tmp_path, rule_cache, sends, server=INSIDE_SERVER).one(ZL)
    assert f.origin.direction == "internal" and f.kind.value == "event"


def test_a_name_with_a_lone_surrogate_is_kept_exactly(tmp_path, rule_cache):
    name = "r\udc00sum\u00e9.gz"
    run = _run(tmp_path, rule_cache, [*_session(), *_put(10, FID, name, [(0, GZ)])])
    rec = finding_record(run.one(GZ))
    full = f"\\\\{SERVER}\\drop\\{name}"
    assert rec["file"]["name"] == text(full) and "\ufffd" in rec["file"]["name"]  # as a Windows log's name is shown
    assert rec["file"]["name_bytes"] == to_bytes(full).hex()


def test_encrypted_messages_are_counted_not_read(tmp_path, rule_cache):
    sends = [*_session(), ("c2s", sb.nbss(sb.transform(5000))), ("s2c", sb.nbss(sb.transform(300)))]
    sends += _put(10, FID, "after.gz", [(0, GZ)])
    run = _run(tmp_path, rule_cache, sends)
    assert run.stats.app["smb.encrypted_messages"] == 2 and run.stats.app["smb.encrypted_bytes"] >= 5300
    assert run.one(GZ).name == f"\\\\{SERVER}\\drop\\after.gz"


def test_a_lost_segment_leaves_a_hole_and_reading_resumes_at_the_next_message(tmp_path, rule_cache):
    sends = [*_session(), *_put(10, FID, "first.gz", [(0, GZ)]), *_put(20, sb.file_id(8), "second.zip", [(0, ZIP)])]

    def middle_of_the_gzip_write(conv: Conv) -> int:
        return 5  # negotiate, tree connect, create, then the write's segments: the second one of it

    run = _run(tmp_path, rule_cache, sends, drop_segment=middle_of_the_gzip_write)
    assert run.of(GZ) == []
    assert run.one(ZIP).name == f"\\\\{SERVER}\\drop\\second.zip"
    assert run.stats.app["smb.resyncs"] == 1


# -- correlation ----------------------------------------------------------------------------------------------------


def test_smb_transfers_join_incidents_as_t1048_out_and_t1570_between_inside_hosts(tmp_path, rule_cache):
    caps, staged = tmp_path / "captures", tmp_path / "staged"
    caps.mkdir()
    sends = [*_session(), *_put(10, FID, "rows.gz", [(0, GZ)])]
    out = Conv(client="10.0.0.10", client_port=50001, server=SERVER, server_port=445, sends=sends)
    sends = [*_session(server=INSIDE_SERVER), *_put(10, FID, "ledger.zip", [(0, ZIP)])]
    lateral = Conv("10.0.0.11", 50002, INSIDE_SERVER, 445, sends=sends, start=out.start + 5)
    write_pcap(caps / "day.pcap", sorted(segments(out) + segments(lateral), key=lambda p: float(p.time)))
    for host, name, data in (("WS-10", "rows.gz", GZ), ("WS-11", "ledger.zip", ZIP)):
        f = staged / host / "Users/bob/AppData/Local/Temp" / name
        f.parent.mkdir(parents=True)
        f.write_bytes(data)
        os.utime(f, (out.start - 60, out.start - 60))
    found, _ = scan_and_correlate(tmp_path, rule_cache, [caps, staged], "--host-from-path", "/staged/([^/]+)/",
                                  hostmap="name,ip\nWS-10,10.0.0.10\nWS-11,10.0.0.11\n")  # fmt: skip
    incidents = {r["host"]["name"]: r for r in found}
    assert set(incidents) == {"WS-10", "WS-11"}
    assert set(incidents["WS-10"]["threat"]["technique"]["id"]) == {"T1560.002", "T1048"}
    assert set(incidents["WS-11"]["threat"]["technique"]["id"]) == {"T1560.002", "T1570"}
    assert "lateral_member" in incidents["WS-11"]["stagewatch"]["incident"]["reasons"]


# -- a real server and client -------------------------------------------------------------------------------------


def _smb_conf(root: Path, share: Path) -> Path:
    for d in ("lock", "state", "cache", "private", "pid", "log", "ncalrpc"):
        (root / d).mkdir()
    conf = root / "smb.conf"
    conf.write_text(
        "[global]\n"
        "server role = standalone server\nworkgroup = TESTGRP\nnetbios name = TESTSRV\n"
        f"interfaces = {netns.SERVER}/32\nbind interfaces only = yes\nsmb ports = 445\n"
        f"lock directory = {root}/lock\nstate directory = {root}/state\ncache directory = {root}/cache\n"
        f"private dir = {root}/private\npid directory = {root}/pid\nncalrpc dir = {root}/ncalrpc\n"
        f"log file = {root}/log/smbd.log\npassdb backend = tdbsam:{root}/private/passdb.tdb\n"
        "map to guest = Bad User\ndisable spoolss = yes\nload printers = no\n"
        f"[drop]\npath = {share}\nread only = no\nguest ok = yes\nforce user = root\n"
    )
    return conf


def test_samba_put_get_and_an_encrypted_put(tmp_path, rule_cache):
    need(netns.missing() or (None if shutil.which("smbd") and shutil.which("smbclient") else "samba is not installed"))
    root = Path(tempfile.mkdtemp(prefix="sw-smbd-"))
    try:
        os.chmod(root, 0o755)
        share = root / "share"
        share.mkdir()
        (share / "kit.zip").write_bytes(ZIP)  # on the server already: read down by the client
        conf = _smb_conf(root, share)
        secret = "Pw-for-tests-1"
        subprocess.run(["smbpasswd", "-c", str(conf), "-a", "-s", "root"], input=f"{secret}\n{secret}\n",
                       check=True, capture_output=True, text=True)  # fmt: skip
        local = tmp_path / "stage.gz"
        local.write_bytes(GZ)
        secret_file = tmp_path / "secret.xz"
        secret_file.write_bytes(XZ)
        pcap = tmp_path / "samba.pcap"
        with netns.loopback_capture(pcap, "tcp port 445") as inside:
            route = [
                "ip",
                "route",
                "replace",
                "local",
                netns.SERVER,
                "dev",
                "lo",
                "src",
                netns.CLIENT,
                "table",
                "local",
            ]
            inside(route, check=True, capture_output=True)
            inside(["smbd", "-D", "-s", str(conf)], check=True, capture_output=True, timeout=30)
            try:
                unc = f"//{netns.SERVER}/drop"
                for _ in range(100):
                    probe = inside(["smbclient", unc, "-N", "-c", "ls"], capture_output=True, timeout=30)
                    if probe.returncode == 0:
                        break
                    time.sleep(0.1)
                cmds = f"put {local} stage.gz; get kit.zip {tmp_path / 'kit.zip'}"
                done = inside(["smbclient", unc, "-N", "-c", cmds], capture_output=True, text=True, timeout=60)
                assert done.returncode == 0, done.stderr[-500:]
                enc = ["smbclient", unc, "-U", f"root%{secret}", "--client-protection=encrypt"]
                done = inside([*enc, "-c", f"put {secret_file} secret.xz"], capture_output=True, text=True, timeout=60)
                assert done.returncode == 0, done.stderr[-500:]
            finally:
                pid = root / "pid" / "smbd.pid"
                if pid.exists():
                    os.kill(int(pid.read_text()), signal.SIGTERM)
        assert (share / "stage.gz").read_bytes() == GZ and (tmp_path / "kit.zip").read_bytes() == ZIP
        run = run_pcap(rule_cache, pcap)
        put, got = run.one(GZ), run.one(ZIP)
        assert put.name == f"\\\\{netns.SERVER}\\drop\\stage.gz" and put.origin.direction == "outbound"
        assert put.kind.value == "alert" and put.origin.protocol == "smb"
        assert got.name == f"\\\\{netns.SERVER}\\drop\\kit.zip" and got.origin.direction == "inbound"
        assert run.of(XZ) == []  # sent encrypted: counted, not read
        assert run.stats.app["smb.encrypted_messages"] > 0
    finally:
        shutil.rmtree(root, ignore_errors=True)
