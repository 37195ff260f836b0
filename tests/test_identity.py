"""Host identity from the wire (issue "Correlation as evidence really arrives", item 3): DHCP (the ACK's
address, never the IP source; the name from the client's REQUEST), NetBIOS registrations, LLMNR and mDNS
answers, Kerberos AS-REQs of machine accounts (UDP and TCP; users are not hosts), NTLMSSP AUTHENTICATE in SMB
and HTTP. Captures crafted with scapy's protocol layers, and a real DHCP exchange (dnsmasq and busybox udhcpc
in network namespaces). Then an address that moves from one host to another between two findings, each
finding given the host of its time; trust and leases; the store's table and `stagewatch hosts`."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from sensor.cli import main as cli_main
from sensor.config import Settings
from sensor.correlate.identities import Claims
from sensor.model import Identity
from sensor.pipeline import Job, scan_inputs
from sensor.stats import RunStats
from sensor.store.db import FindingStore
from sensor.store.schema import SCHEMA_VERSION
from tests import appbuild as ab
from tests import identitybuild as ib
from tests import smbbuild as sb
from tests.builders import sample_text, zip_archive
from tests.conftest import need
from tests.incidents import scan_and_correlate
from tests.netbuild import BASE_TIME, Conv, segments, write_pcap

T = BASE_TIME


def _identities(tmp_path: Path, rule_cache: Path, pkts: list) -> list[Identity]:
    pcap = write_pcap(tmp_path / "id.pcap", sorted(pkts, key=lambda p: float(p.time)))
    settings = Settings(home_net=("10.0.0.0/8",), observer="t", cache_dir=rule_cache)
    return [r for r in scan_inputs(Job((str(pcap),), settings), RunStats()) if isinstance(r, Identity)]


def _one(found: list[Identity], source: str) -> Identity:
    got = [i for i in found if i.source == source]
    assert len(got) == 1, found
    return got[0]


def test_dhcp_names_the_address_of_the_ack_through_a_relay(tmp_path, rule_cache):
    pkts = ib.dhcp_exchange("02:00:00:aa:bb:01", "10.1.2.50", "ws-dhcp-01", T, lease=3600, relay="10.1.2.1")
    i = _one(_identities(tmp_path, rule_cache, pkts), "dhcp")
    assert (i.address, i.name, i.mac) == ("10.1.2.50", "ws-dhcp-01", "02:00:00:aa:bb:01")
    assert i.until is not None and abs(i.until - (T + 0.01 + 3600)) < 0.01
    assert i.detail == "DHCPACK client's option 12" and i.packet == 2


def test_netbios_llmnr_and_mdns_state_addresses(tmp_path, rule_cache):
    pkts = [
        ib.nbns_registration("WS-NB-02", "10.1.2.51", T),
        ib.nbns_registration("CORP", "10.1.2.51", T + 1, suffix=0x00, group=True),  # a group: not the host
        ib.nbns_registration("WS-NB-02", "10.1.2.51", T + 2, suffix=0x1C),  # a service suffix: not the host
        ib.name_answer("ws-ll-03", "10.1.2.52", T + 3, 5355),
        ib.name_answer("mac-mini.local", "10.1.2.53", T + 4, 5353),
    ]
    found = _identities(tmp_path, rule_cache, pkts)
    got = sorted((i.source, i.address, i.name) for i in found)
    assert got == [
        ("llmnr", "10.1.2.52", "ws-ll-03"),
        ("mdns", "10.1.2.53", "mac-mini"),
        ("nbns", "10.1.2.51", "WS-NB-02"),
    ]


def test_kerberos_machine_accounts_over_udp_and_tcp_and_not_users(tmp_path, rule_cache):
    tcp_req = ib.as_req("WS-KRB-05$")
    conv = Conv(
        "10.1.2.55", 50555, "10.0.0.2", 88, sends=[("c2s", len(tcp_req).to_bytes(4, "big") + tcp_req)], start=T + 5
    )
    pkts = [ib.kerberos_udp("WS-KRB-04$", "10.1.2.54", T), ib.kerberos_udp("bob", "10.1.2.57", T + 1), *segments(conv)]
    found = _identities(tmp_path, rule_cache, pkts)
    assert sorted((i.address, i.name) for i in found) == [
        ("10.1.2.54", "WS-KRB-04.corp.example"),
        ("10.1.2.55", "WS-KRB-05.corp.example"),
    ]
    assert all(i.source == "kerberos" and "AS-REQ cname" in (i.detail or "") for i in found)


def test_ntlmssp_workstation_names_in_smb_and_http(tmp_path, rule_cache):
    smb = Conv("10.1.2.58", 50445, "10.0.0.20", 445, start=T, sends=[
        ("c2s", sb.nbss(sb.negotiate_smb1())), ("s2c", sb.nbss(sb.negotiate_response())),
        ("c2s", sb.nbss(ib.smb_session_setup(1, ib.ntlm_authenticate("WS-NTLM-06")))),
    ])  # fmt: skip
    http = Conv("10.1.2.59", 50080, "10.0.0.80", 80, start=T + 2, sends=[
        ("c2s", ib.http_ntlm_request("WS-NTLM-07")), ("s2c", ab.http_response(200, b"ok")),
    ])  # fmt: skip
    found = _identities(tmp_path, rule_cache, segments(smb) + segments(http))
    assert sorted((i.source, i.address, i.name) for i in found) == [
        ("ntlm", "10.1.2.58", "WS-NTLM-06"),
        ("ntlm", "10.1.2.59", "WS-NTLM-07"),
    ]
    assert {i.detail for i in found} == {
        "NTLMSSP AUTHENTICATE in SMB SESSION_SETUP (user CORP\\bob)",
        "NTLMSSP AUTHENTICATE in HTTP Authorization (user CORP\\bob)",
    }


# -- claims over time ------------------------------------------------------------------------------------------------


def _claim(source: str, name: str | None, ts: float, mac: str | None = None, until: float | None = None) -> Identity:
    return Identity("10.1.2.60", name, source, ts, until, mac)


def test_trust_and_leases_decide_which_claim_holds():
    claims = Claims([
        _claim("dhcp", "ws-a", T, "02:aa", until=T + 3600),
        _claim("kerberos", "WS-A.corp.example", T + 10),
        _claim("nbns", "PRINTER-9", T + 20),  # lower trust than Kerberos: ignored while Kerberos holds
        _claim("dhcp", "ws-a", T + 1800, "02:aa", until=T + 5400),  # a renewal by the same MAC: no change
        _claim("dhcp", None, T + 6000, "02:bb", until=T + 9600),  # the address goes to another MAC, unnamed
        _claim("nbns", "WS-B", T + 6100),  # the new holder names itself
    ])  # fmt: skip
    name = lambda ts: c.name if (c := claims.at("10.1.2.60", ts)) else None  # noqa: E731
    assert [name(t) for t in (T - 1, T + 5, T + 15, T + 30, T + 2000, T + 6050, T + 6200)] == [
        None, "ws-a", "WS-A.corp.example", "WS-A.corp.example", "WS-A.corp.example", None, "WS-B",
    ]  # fmt: skip
    short_lease = Claims([_claim("dhcp", "ws-c", T, "02:cc", until=T + 60)])
    assert short_lease.at("10.1.2.60", T + 30) is not None and short_lease.at("10.1.2.60", T + 61) is None


def test_an_address_that_moves_between_two_findings_names_each_by_its_time(tmp_path, rule_cache):
    """10.1.2.60 is ws-a's (DHCP) when X leaves, then ws-b's when Y leaves; no host map: the wire names them."""
    x = zip_archive({"a/q3.csv": sample_text(40_000, 71)})
    y = zip_archive({"b/q4.csv": sample_text(40_000, 72)})
    caps, staged = tmp_path / "captures", tmp_path / "staged"
    caps.mkdir()
    addr, out = "10.1.2.60", "203.0.113.9"
    pkts = ib.dhcp_exchange("02:00:00:00:00:0a", addr, "ws-a", T, lease=3600)
    pkts += ib.dhcp_exchange("02:00:00:00:00:0b", addr, "ws-b", T + 1800, lease=3600, xid=0x9999)
    for data, at, port in ((x, T + 60, 50001), (y, T + 1900, 50002)):
        req = ab.http_request("POST", "/up", "drop.example", data)
        pkts += segments(ab.http_conversation([(req, ab.http_response(200, b"ok"))], client=addr, server=out,
                                              client_port=port, start=at))  # fmt: skip
    write_pcap(caps / "day.pcap", sorted(pkts, key=lambda p: float(p.time)))
    for host, data, at in (("ws-a", x, T + 30), ("ws-b", y, T + 1870)):
        f = staged / host / "tmp" / f"{host}.zip"
        f.parent.mkdir(parents=True)
        f.write_bytes(data)
        os.utime(f, (at, at))
    found, store = scan_and_correlate(tmp_path, rule_cache, [caps, staged], "--host-from-path", "/staged/([^/]+)/")
    incidents = {r["host"]["name"]: r for r in found}
    assert set(incidents) == {"ws-a", "ws-b"}
    assert incidents["ws-a"]["stagewatch"]["incident"]["host_named_by"].startswith("dhcp: 10.1.2.60 = ws-a, MAC 02:")
    assert incidents["ws-a"]["host"]["ip"] == [addr] and incidents["ws-b"]["host"]["ip"] == [addr]
    listing = tmp_path / "hosts.jsonl"
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(T + 1900))
    assert cli_main(["-q", "hosts", "--db", str(store), "--at", at, "--jsonl", str(listing)]) == 0
    (now,) = map(json.loads, listing.read_text().splitlines())
    assert now["host"]["name"] == "ws-b" and now["stagewatch"]["identity"]["source"] == "dhcp"
    assert cli_main(["-q", "hosts", "--db", str(store), "--jsonl", str(listing), "--truncate"]) == 0
    assert len(listing.read_text().splitlines()) == 2


# -- the store ---------------------------------------------------------------------------------------------------------


def test_a_version_3_store_gains_the_identities_table(tmp_path):
    path = tmp_path / "old.db"
    with FindingStore(str(path)):
        pass
    with sqlite3.connect(path) as conn:  # what stagewatch wrote before identities existed
        conn.execute("DROP TABLE identities")
        conn.execute("UPDATE schema_version SET version = 3")
    with FindingStore(str(path)) as s:
        run = s.begin_run("t", [])
        assert s.add_identities(run, [(Identity("10.1.2.3", "ws-1", "dhcp", T), "{}")]) == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert conn.execute("SELECT address, name FROM identities").fetchall() == [("10.1.2.3", "ws-1")]


def test_a_version_3_store_on_postgresql_gains_the_identities_table(pg_url):
    from sqlalchemy import text

    with FindingStore(pg_url) as s, s._engine.begin() as conn:
        conn.execute(text("DROP TABLE identities"))
        conn.execute(text("UPDATE schema_version SET version = 3"))
    with FindingStore(pg_url) as s:
        run = s.begin_run("t", [])
        ident = Identity(f"10.9.{uuid.uuid4().int % 250}.1", "ws-pg", "kerberos", T)
        assert s.add_identities(run, [(ident, "{}")]) == 1
        with s._engine.connect() as conn:
            assert conn.execute(text("SELECT max(version) FROM schema_version")).scalar() == SCHEMA_VERSION


# -- a real DHCP exchange --------------------------------------------------------------------------------------------


def test_a_real_dhcp_exchange_names_the_client(tmp_path, rule_cache):
    """dnsmasq serves 10.77.0.0/24 on one end of a veth pair; busybox udhcpc asks for an address as
    ws-real-01 on the other; tcpdump on the server's side records it."""
    need(None if os.geteuid() == 0 else "needs root for network namespaces")
    for tool in ("dnsmasq", "busybox", "tcpdump", "ip"):
        need(None if shutil.which(tool) else f"{tool} is not installed (make test installs it)")
    server, client = f"swd-{uuid.uuid4().hex[:6]}", f"swc-{uuid.uuid4().hex[:6]}"
    run = lambda *argv: subprocess.run(argv, check=True, capture_output=True)  # noqa: E731
    pcap = tmp_path / "dhcp.pcap"
    work = Path(tempfile.mkdtemp(prefix="sw-dhcp-"))
    try:
        run("ip", "netns", "add", server)
        run("ip", "netns", "add", client)
        run("ip", "link", "add", "swd0", "netns", server, "type", "veth", "peer", "name", "swc0", "netns", client)
        run("ip", "-n", server, "addr", "add", "10.77.0.1/24", "dev", "swd0")
        run("ip", "-n", server, "link", "set", "swd0", "up")
        run("ip", "-n", client, "link", "set", "swc0", "up")
        tcpdump = ["tcpdump", "-i", "swd0", "-U", "--immediate-mode", "-w", str(pcap), "udp port 67 or udp port 68"]
        dump = subprocess.Popen(["ip", "netns", "exec", server, *tcpdump], stderr=subprocess.PIPE, text=True)
        assert dump.stderr is not None
        dump.stderr.readline()
        leases = work / "leases"
        dnsmasq = ["dnsmasq", "--no-daemon", "--port=0", "--interface=swd0", "--bind-interfaces",
                   "--dhcp-range=10.77.0.50,10.77.0.99,1h", f"--dhcp-leasefile={leases}",
                   f"--pid-file={work / 'pid'}"]  # fmt: skip
        dns = subprocess.Popen(
            ["ip", "netns", "exec", server, *dnsmasq], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            time.sleep(0.5)
            script = work / "script.sh"
            script.write_text("#!/bin/sh\nexit 0\n")
            script.chmod(0o755)
            got = subprocess.run(["ip", "netns", "exec", client, "busybox", "udhcpc", "-i", "swc0", "-n", "-q", "-f",
                                  "-x", "hostname:ws-real-01", "-s", str(script), "-t", "5"],
                                 capture_output=True, text=True, timeout=60)  # fmt: skip
            assert got.returncode == 0, got.stderr[-400:]
            time.sleep(0.3)
        finally:
            dns.terminate()
            dns.wait(timeout=10)
            dump.send_signal(2)
            dump.wait(timeout=10)
    finally:
        subprocess.run(["ip", "netns", "del", server], capture_output=True)
        subprocess.run(["ip", "netns", "del", client], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    settings = Settings(home_net=("10.0.0.0/8",), observer="t", cache_dir=rule_cache)
    found = [r for r in scan_inputs(Job((str(pcap),), settings), RunStats()) if isinstance(r, Identity)]
    (i,) = found
    assert i.source == "dhcp" and i.name == "ws-real-01" and i.address.startswith("10.77.0.")
    assert i.mac is not None and i.until is not None and 3500 < i.until - i.ts <= 3600
