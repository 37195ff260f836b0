"""DNS tunnels (issue "More ways out", item 1): data compressed, spelled into query names in hex, base32 or
base64 chunks, sent to the attacker's zone (through a resolver or not), and pulled back in TXT answers.
Captures crafted by tests/dnsbuild.py as common tools write them (sequence label first or last, decimal or hex,
or none; retries, reordering, losses; two clients and two zones interleaved), and a real iodine tunnel in a
network namespace. Each is scanned through the real pipeline."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import struct
import time
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR

from sensor.config import Limits, Settings
from sensor.model import Finding, ObjectRecord
from sensor.output.ecs import finding_record
from sensor.pipeline import Job, scan_inputs
from sensor.protocols import dns_message
from sensor.protocols.dns_tunnel import readings, sequence, zones
from sensor.stats import RunStats
from tests import dnsbuild as db
from tests import netns
from tests.builders import gzip_named, random_bytes, sample_text, xz_member, zip_archive, zlib_member
from tests.conftest import need
from tests.incidents import scan_and_correlate
from tests.netbuild import Conv, interleave, segments, write_pcap
from tests.test_http import Run, run_pcap

GZ = gzip_named(sample_text(30_000, 41), "accounts.csv")
ZL = zlib_member(sample_text(20_000, 42))
ZIP = zip_archive({"hr/salaries.csv": sample_text(25_000, 43)})
XZ = xz_member(sample_text(15_000, 44))
BIG = gzip_named(sample_text(400_000, 45), "export.csv")  # 68 KiB: over 1,100 queries of 120 hex characters


def _scan(tmp_path: Path, rule_cache: Path, pkts: list, **kw) -> Run:
    return run_pcap(rule_cache, write_pcap(tmp_path / "dns.pcap", pkts), **kw)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- tunnels found whole -----------------------------------------------------------------------------------------


def test_hex_chunks_with_a_sequence_label_first(tmp_path, rule_cache):
    run = _scan(tmp_path, rule_cache, db.packets(db.Tunnel(GZ)))
    f = run.one(GZ)
    rec = finding_record(f)
    assert rec["event"]["kind"] == "alert" and rec["network"]["direction"] == "outbound"
    assert rec["network"]["protocol"] == "dns" and rec["network"]["transport"] == "udp"
    assert rec["dns"] == {"type": "query", "question": {"registered_domain": "exfil-example.com"}}
    dns = rec["stagewatch"]["dns"]
    assert dns["zone"] == "t.exfil-example.com" and dns["sequence"] == "first label, decimal"
    assert dns["messages"] == len(db.Tunnel(GZ).names()) and "lost" not in dns
    assert rec["stagewatch"]["encoding"] == ["dns", "hex"] and rec["stagewatch"]["source"]["packet"] == 1
    assert (rec["source"]["ip"], rec["destination"]["ip"]) == ("10.1.2.3", "198.51.100.53")
    assert f.member.stored_name == "accounts.csv" and not f.member.truncated


def test_base32_zip_with_a_hex_counter_last_retries_and_reordering(tmp_path, rule_cache):
    tunnel = db.Tunnel(ZIP, encoding="base32", sequence="hexlast", zone="x.evil-example.net", chunk=180)
    run = _scan(tmp_path, rule_cache, db.packets(tunnel, retries=0.05, reorder=0.2, seed=7))
    f = run.one(ZIP)
    assert f.member.format.value == "zip" and f.origin.direction == "outbound" and f.encoding == ("dns", "base32")
    assert f.app is not None and f.app.dns is not None and f.app.dns.sequence == "last label before the zone, hex"
    assert run.stats.app["dns.retries"] > 0 and run.stats.app["dns.tunnels"] == 1


def test_base64_where_the_clients_own_case_survives(tmp_path, rule_cache):
    run = _scan(tmp_path, rule_cache, db.packets(db.Tunnel(XZ, encoding="base64", sequence="last")))
    f = run.one(XZ)
    assert f.encoding == ("dns", "base64url") and f.kind.value == "alert"


def test_each_chunk_encoded_alone_is_read_as_well_as_the_whole_text(tmp_path, rule_cache):
    # 101 characters of base32 per query: not whole 8-character quanta, each chunk padded alone by the tool
    tunnel = db.Tunnel(GZ, encoding="base32", chunk=101, per_chunk=True, sequence="first")
    run = _scan(tmp_path, rule_cache, db.packets(tunnel))
    assert run.one(GZ).encoding == ("dns", "base32")


def test_without_sequence_labels_capture_order_and_a_resolver_relaying_with_dns_0x20(tmp_path, rule_cache):
    """The resolver's copy of each query (its case randomised) is the same tunnel, attributed to the client."""
    tunnel = db.Tunnel(ZL, encoding="base32", sequence=None, server="10.0.0.53")
    run = _scan(tmp_path, rule_cache, db.packets(tunnel, resolver="10.0.0.53", retries=0.05))
    f = run.one(ZL)
    assert (f.origin.src, f.origin.dst) == ("10.1.2.3", "10.0.0.53")
    # an internal resolver, but the zone is not one of the site's: the data leaves
    assert f.origin.direction == "outbound" and f.kind.value == "alert"
    assert run.stats.app["dns.resolver_copies"] == len(tunnel.names()) + run.stats.app["dns.retries"]
    assert run.stats.app["dns.tunnels"] == 1


def test_a_zone_in_home_domains_keeps_the_direction_of_the_flow(tmp_path, rule_cache):
    tunnel = db.Tunnel(ZL, zone="sync.corp.example", server="10.0.0.53")
    pcap = write_pcap(tmp_path / "dns.pcap", db.packets(tunnel))
    settings = Settings(home_net=("10.0.0.0/8",), home_domains=("corp.example",), observer="t", cache_dir=rule_cache)
    found = [r for r in scan_inputs(Job((str(pcap),), settings), RunStats()) if isinstance(r, Finding)]
    assert [(f.member.sha256, f.origin.direction, f.kind.value) for f in found] == [(_sha(ZL), "internal", "event")]


def test_two_clients_and_two_zones_interleaved(tmp_path, rule_cache):
    a = db.packets(db.Tunnel(GZ, client="10.1.2.3", zone="a.exfil-example.com"), seed=1)
    b = db.packets(db.Tunnel(ZIP, client="10.1.2.4", zone="b.exfil-example.com", encoding="base32"), seed=2)
    c = db.packets(db.Tunnel(XZ, client="10.1.2.3", zone="c.other-example.org", sequence="last"), seed=3)
    d = db.packets(db.Tunnel(ZL, client="10.1.2.3", zone="b.exfil-example.com", sequence=None), seed=4)
    run = _scan(tmp_path, rule_cache, interleave(a, b, c, d))
    got = {
        f.member.sha256: (f.origin.src, f.app.dns.zone)  # type: ignore[union-attr]
        for f in run.findings
    }
    assert got == {
        _sha(GZ): ("10.1.2.3", "a.exfil-example.com"),
        _sha(ZIP): ("10.1.2.4", "b.exfil-example.com"),
        _sha(XZ): ("10.1.2.3", "c.other-example.org"),
        _sha(ZL): ("10.1.2.3", "b.exfil-example.com"),
    }


def test_a_file_pulled_down_in_txt_answers_is_inbound(tmp_path, rule_cache):
    run = _scan(tmp_path, rule_cache, db.txt_download(GZ, "10.1.2.3", "198.51.100.53"))
    f = run.one(GZ)
    assert f.origin.direction == "inbound" and f.kind.value == "event" and f.encoding == ("dns", "base64")
    assert (f.origin.src, f.origin.dst) == ("198.51.100.53", "10.1.2.3")
    assert f.app is not None and f.app.dns is not None and f.app.dns.answers
    assert f.app.dns.sequence == "first label, decimal"


def test_dns_over_tcp_carries_a_tunnel_too(tmp_path, rule_cache):
    names = db.Tunnel(GZ, sequence="first").names()
    wire = b""
    for n, name in enumerate(names):
        msg = bytes(DNS(id=n, rd=1, qd=DNSQR(qname=name)))
        wire += struct.pack("!H", len(msg)) + msg
    conv = Conv(client="10.1.2.3", client_port=40000, server="198.51.100.53", server_port=53, sends=[("c2s", wire)])
    run = _scan(tmp_path, rule_cache, segments(conv))
    f = run.one(GZ)
    assert f.origin.transport == "tcp" and f.origin.protocol == "dns" and f.origin.direction == "outbound"
    assert run.stats.app["dns.messages"] == len(names)


# -- losses, reordering, bounds -----------------------------------------------------------------------------------


def test_one_percent_lost_queries_give_a_finding_truncated_at_the_first_loss(tmp_path, rule_cache):
    tunnel = db.Tunnel(BIG, sequence="last")
    names = tunnel.names()
    pkts = db.packets(tunnel, lose=0.01, seed=3)
    sent = {p[DNSQR].qname.decode().rstrip(".") for p in pkts}
    first_lost = min(i for i, n in enumerate(names) if n not in sent)
    prefix = bytes.fromhex("".join(n.split(".")[0] + n.split(".")[1] for n in names[:first_lost]))
    run = _scan(tmp_path, rule_cache, pkts)
    assert len(run.findings) == 1
    f = run.findings[0]
    assert f.member.truncated and f.member.format.value == "gzip"
    assert f.member.sha256 == _sha(prefix[: f.member.length]) and f.member.length <= len(prefix)
    assert f.app is not None and f.app.dns is not None and f.app.dns.lost == len(names) - len(sent)


def test_without_sequence_labels_reordering_never_gives_a_wrong_hash(tmp_path, rule_cache):
    for seed in range(3):
        run = _scan(tmp_path, rule_cache, db.packets(db.Tunnel(GZ, sequence=None), reorder=0.05, seed=seed))
        for f in run.findings:
            assert f.member.truncated or f.member.sha256 == _sha(GZ), (seed, f.member)


def test_a_memory_cap_decodes_early_and_is_counted(tmp_path, rule_cache):
    limits = Limits(dns_client_bytes=64 * 1024)
    run = _scan(tmp_path, rule_cache, db.packets(db.Tunnel(BIG)), limits=limits)
    assert run.stats.limits["tunnel_memory"] >= 1
    assert run.stats.app["dns.tunnels"] >= 2  # decoded in parts, none lost
    assert any(f.member.format.value == "gzip" and f.member.truncated for f in run.findings)


def test_an_idle_tunnel_is_decoded_when_its_timeout_passes(tmp_path, rule_cache):
    """A second transfer to the same zone after a long pause is a tunnel of its own."""
    first = db.packets(db.Tunnel(GZ), start=1_700_000_000.0)
    second = db.packets(db.Tunnel(ZIP, encoding="base32"), start=1_700_001_000.0)
    run = _scan(tmp_path, rule_cache, first + second, limits=Limits(dns_timeout=120.0))
    assert {f.member.sha256 for f in run.findings} == {_sha(GZ), _sha(ZIP)}
    assert run.stats.app["dns.tunnels"] == 2


# -- benign look-alikes -------------------------------------------------------------------------------------------


def test_benign_random_looking_names_decode_to_nothing(tmp_path, rule_cache):
    pcap = db.write_frames(tmp_path / "benign.pcap", db.benign_frames(6000, seed=11))
    run = run_pcap(rule_cache, pcap)
    assert run.findings == []
    dns_objects = [o for o in run.objects if o.origin.protocol == "dns"]
    assert dns_objects and max(o.size for o in dns_objects) <= 16 * 1024


# -- units --------------------------------------------------------------------------------------------------------


def test_zones_are_learned_from_the_names():
    names = [(b"aa11", b"0", b"t"), (b"bb22", b"1", b"t"), (b"cc33", b"2", b"t"), (b"www",), (b"mail",)]
    assert zones(names) == [1, 1, 1, 0, 0]
    # a retry repeats a data label: the suffix under it is still not a zone
    assert zones([(b"aa", b"7", b"t"), (b"aa", b"7", b"t"), (b"bb", b"8", b"t")]) == [1, 1, 1]


def test_a_counter_is_found_first_or_last_and_data_is_not_taken_for_one():
    assert sequence([(b"%d" % i, b"ab" * 10) for i in range(50)]) == (0, 10)
    assert sequence([(b"ab" * 10, b"%04x" % i) for i in range(5, 60)]) == (-1, 16)
    hexdata = [(random_bytes(4, i).hex().encode(), b"ff") for i in range(50)]
    assert sequence(hexdata) is None


def test_readings_follow_the_alphabet_and_case():
    assert [r.encoding for r in readings([b"1f8b", b"08ab"], False, False)] == ["hex"]
    assert [r.encoding for r in readings([b"MZXW6YTB", b"OI"], False, False)] == ["base32"]
    assert [r.encoding for r in readings([b"MzXw6YtB", b"oI"], False, False)] == ["base32", "base64"]
    assert readings([b"not\xffdata"], False, False) == []  # a binary encoding (iodine's base128): nothing
    assert [r.encoding for r in readings([b"v=spf1 -all"], False, True)] == ["raw"]


def test_a_compression_pointer_loop_and_a_forward_pointer_are_errors():
    header = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    with pytest.raises(dns_message.DnsError):
        dns_message.parse(header + b"\xc0\x0c\x00\x01\x00\x01")  # points at itself
    with pytest.raises(dns_message.DnsError):
        dns_message.parse(header + b"\x01a\xc0\x20" + b"\x00" * 20)  # points forward
    ok = dns_message.parse(bytes(DNS(id=9, qd=DNSQR(qname="a.b.example"))), strict=True)
    assert ok.questions[0].labels == (b"a", b"b", b"example")


def test_strict_reading_accepts_only_dns_and_lenient_keeps_what_parsed():
    msg = bytes(DNS(id=3, qr=1, qd=DNSQR(qname="x.example"), an=DNSRR(rrname="x.example", type="TXT", rdata=[b"hi"])))
    assert dns_message.parse(msg, strict=True).answers[0].texts == (b"hi",)
    with pytest.raises(dns_message.DnsError):
        dns_message.parse(msg + b"junk", strict=True)
    cut = dns_message.parse(msg[:-4])
    assert cut.questions and not cut.complete


# -- a real tunnel ------------------------------------------------------------------------------------------------


def test_a_real_iodine_tunnel_is_one_tunnel_and_no_member(tmp_path, rule_cache):
    need(netns.missing() or (None if shutil.which("iodined") else "iodine is not installed (make test installs it)"))
    need(None if os.path.exists("/dev/net/tun") else "no /dev/net/tun: iodine cannot open its tunnel device")
    pcap = tmp_path / "iodine.pcap"
    pids = [tmp_path / "iodined.pid", tmp_path / "iodine.pid"]
    with netns.loopback_capture(pcap, "udp port 53") as inside:
        # the client's queries leave from its own address (inside home_net), not the server's
        local = ["ip", "route", "replace", "local", netns.SERVER, "dev", "lo", "src", netns.CLIENT, "table", "local"]
        inside(local, check=True, capture_output=True)
        try:
            server = ["iodined", "-c", "-P", "pw-for-test", "-l", netns.SERVER, "-F", str(pids[0]), "192.168.99.1"]
            inside([*server, "t.tunnel-example.com"], check=True, capture_output=True, timeout=30)
            client = ["iodine", "-r", "-P", "pw-for-test", "-F", str(pids[1]), netns.SERVER, "t.tunnel-example.com"]
            done = inside(client, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr[-400:]
            time.sleep(1.0)  # lazy-mode polls
        finally:
            for pid in pids:
                if pid.exists():
                    os.kill(int(pid.read_text()), signal.SIGTERM)
    run = run_pcap(rule_cache, pcap)
    assert run.findings == []
    assert run.stats.app["dns.queries"] > 10
    objects = [o for o in run.objects if o.origin.protocol == "dns"]
    zones_seen = {(o.origin.src if o.origin.client_to_server else o.origin.dst, o.app.dns.zone) for o in objects}  # type: ignore[union-attr]
    assert zones_seen <= {(netns.CLIENT, "t.tunnel-example.com")}
    assert all(isinstance(o, ObjectRecord) for o in objects)


# -- correlation ----------------------------------------------------------------------------------------------------


def test_a_dns_tunnel_finding_joins_an_incident_as_t1048_003(tmp_path, rule_cache):
    caps, staged = tmp_path / "captures", tmp_path / "staged"
    caps.mkdir()
    tunnel = db.Tunnel(GZ, client="10.1.2.3", server="10.0.0.53", encoding="base32", sequence="last")
    pkts = db.packets(tunnel, start=1_764_000_000.0)
    write_pcap(caps / "day.pcap", pkts)
    f = staged / "WS-01" / "Users/bob/AppData/Local/Temp/accounts.csv.gz"
    f.parent.mkdir(parents=True)
    f.write_bytes(GZ)
    os.utime(f, (1_764_000_000.0 - 60, 1_764_000_000.0 - 60))
    found, _ = scan_and_correlate(
        tmp_path,
        rule_cache,
        [caps, staged],
        "--host-from-path",
        "/staged/([^/]+)/",
        hostmap="name,ip\nWS-01,10.1.2.3\n",
    )
    (incident,) = found
    assert incident["host"]["name"] == "WS-01"
    assert set(incident["threat"]["technique"]["id"]) == {"T1560.002", "T1048.003"}
    assert "same_sha256" in incident["stagewatch"]["incident"]["reasons"]
