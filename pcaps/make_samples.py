#!/usr/bin/env python3
"""Builds the demo's sample captures: library-compressed data leaving the network, and benign traffic.

    python pcaps/make_samples.py [OUT_DIR]        (default: pcaps/samples/)

Writes exfil-http-post.pcap, c2-custom-port.pcapng, dns-and-tls.pcap.gz and ipv6-bzip2.pcap,
then prints each file's size and sha256 and each planted member (flow, stream offset, size,
sha256). pcaps/README.md says what each capture shows and what stagewatch should report.

The members come from the standard library (gzip, zlib, bz2, zipfile, base64) and the packets
from scapy, with fixed seeds, sequence numbers and timestamps, so every run writes the same
bytes. Only scapy and the standard library are needed (nothing from tests/).
"""

from __future__ import annotations

import base64
import bz2
import email.policy
import gzip
import hashlib
import io
import json
import random
import struct
import sys
import tarfile
import zipfile
import zlib
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import NamedTuple

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw
from scapy.utils import EDecimal, PcapNgWriter, PcapWriter

BASE_TIME = 1_763_800_000  # 2025-11-22 08:26:40 UTC, the first packet of every capture
MTIME = BASE_TIME - 60  # when the staged members were "written", a minute before they leave
US = 1_000_000
C2S, S2C = "c2s", "s2c"
MAC_HOST, MAC_GATEWAY = "00:50:56:0a:01:03", "00:1c:7f:00:00:01"
ZIP_DATE = (2025, 11, 22, 8, 25, 40)


class Member(NamedTuple):
    """A compressed member planted in a capture, as stagewatch should carve it."""

    capture: str
    fmt: str
    flow: str
    offset: int  # in the direction's byte stream (before any decoding layer)
    data: bytes
    note: str


# --------------------------------------------------------------------------------------------
# Packets


def set_time(pkt: Packet, us: int) -> None:
    pkt.time = EDecimal(us) / US  # exact microseconds: the same file bytes on every run


def time_us(pkt: Packet) -> int:
    return int(Decimal(str(pkt.time)) * US)


class Tcp:
    """One TCP connection written packet by packet; the client sends the SYN.

    Each send is cut in ``mss``-byte segments (PSH on the last), the peer ACKs every second
    segment and the last; ``vlan`` puts an 802.1Q tag on every frame.
    """

    def __init__(
        self,
        client: tuple[str, int],
        server: tuple[str, int],
        start: float,
        *,
        isn: tuple[int, int],
        mss: int = 1460,
        vlan: int | None = None,
        gap_us: int = 300,
    ) -> None:
        self.ends = {C2S: (client, server), S2C: (server, client)}
        self.v6 = ":" in client[0]
        self.mss, self.vlan, self.gap_us = mss, vlan, gap_us
        self.t = int(Decimal(str(start)) * US)
        self.nxt = {C2S: (isn[0] + 1) % 2**32, S2C: (isn[1] + 1) % 2**32}
        self.ip_id = {C2S: isn[0] & 0xFFFF, S2C: isn[1] & 0xFFFF}
        self.sent = {C2S: 0, S2C: 0}  # stream offset of the next byte, per direction
        self.pkts: list[Packet] = []
        opts = [("MSS", mss), ("NOP", None), ("NOP", None), ("SAckOK", b"")]
        self._emit(C2S, "S", isn[0], 0, options=opts)
        self.pause(18)
        self._emit(S2C, "SA", isn[1], self.nxt[C2S], options=opts)
        self._emit(C2S, "A", self.nxt[C2S], self.nxt[S2C])

    def _emit(self, d: str, flags: str, seq: int, ack: int, payload: bytes = b"", options: list | None = None) -> None:
        (src, sport), (dst, dport) = self.ends[d]
        macs = (MAC_HOST, MAC_GATEWAY) if d == C2S else (MAC_GATEWAY, MAC_HOST)
        link: Packet = Ether(src=macs[0], dst=macs[1])
        if self.vlan is not None:
            link = link / Dot1Q(vlan=self.vlan)
        if self.v6:
            l3: Packet = IPv6(src=src, dst=dst, hlim=64 if d == C2S else 52)
        else:
            l3 = IP(src=src, dst=dst, ttl=128 if d == C2S else 52, id=self.ip_id[d], flags="DF")
            self.ip_id[d] = (self.ip_id[d] + 1) & 0xFFFF
        tcp = TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=64240, options=options or [])
        pkt = link / l3 / tcp
        if payload:
            pkt = pkt / Raw(load=payload)
        set_time(pkt, self.t)
        self.t += self.gap_us
        self.pkts.append(pkt)

    def pause(self, ms: float) -> None:
        """Let time pass (a round trip, the peer thinking)."""
        self.t += int(ms * 1000)

    def send(self, d: str, data: bytes) -> int:
        """Send ``data`` in direction ``d``; return its offset in that direction's stream."""
        peer = S2C if d == C2S else C2S
        offset = self.sent[d]
        chunks = [data[i : i + self.mss] for i in range(0, len(data), self.mss)]
        for n, chunk in enumerate(chunks, 1):
            last = n == len(chunks)
            self._emit(d, "PA" if last else "A", self.nxt[d], self.nxt[peer], chunk)
            self.nxt[d] = (self.nxt[d] + len(chunk)) % 2**32
            if last or n % 2 == 0:
                self._emit(peer, "A", self.nxt[peer], self.nxt[d])
        self.sent[d] += len(data)
        return offset

    def close(self) -> None:
        """FIN from the client, FIN from the server, last ACK."""
        self._emit(C2S, "FA", self.nxt[C2S], self.nxt[S2C])
        self.nxt[C2S] = (self.nxt[C2S] + 1) % 2**32
        self.pause(15)
        self._emit(S2C, "FA", self.nxt[S2C], self.nxt[C2S])
        self.nxt[S2C] = (self.nxt[S2C] + 1) % 2**32
        self._emit(C2S, "A", self.nxt[C2S], self.nxt[S2C])

    def data_packets(self, d: str) -> list[int]:
        """Positions of the data segments sent in direction ``d``."""
        (src, sport), _ = self.ends[d]
        return [i for i, p in enumerate(self.pkts) if len(p[TCP].payload) and p[TCP].sport == sport]


def udp(src: tuple[str, int], dst: tuple[str, int], us: int, payload: bytes, from_host: bool) -> Packet:
    """One Ether/IP/UDP datagram; ``from_host`` says it leaves the capturing host's side."""
    macs = (MAC_HOST, MAC_GATEWAY) if from_host else (MAC_GATEWAY, MAC_HOST)
    pkt = Ether(src=macs[0], dst=macs[1]) / IP(src=src[0], dst=dst[0], ttl=64, id=(src[1] + dst[1]) & 0xFFFF)
    pkt = pkt / UDP(sport=src[1], dport=dst[1]) / Raw(load=payload)
    set_time(pkt, us)
    return pkt


def by_time(*lists: list[Packet]) -> list[Packet]:
    """Merge conversations by capture time (stable)."""
    return sorted((p for lst in lists for p in lst), key=time_us)


def pcap_bytes(pkts: list[Packet]) -> bytes:
    """A classic pcap (Ethernet, microseconds) of ``pkts``."""
    buf = io.BytesIO()
    w = PcapWriter(buf, linktype=1)
    w.write_header(None)  # write_packet() alone would leave the file without its header
    for p in pkts:
        sec, usec = divmod(time_us(p), US)
        w.write_packet(p, sec=sec, usec=usec)
    w.flush()
    return buf.getvalue()


def write_pcapng(path: Path, pkts: list[Packet]) -> None:
    w = PcapNgWriter(str(path))
    w.linktype = 1
    try:
        w.write_header(None)
        for p in pkts:
            w.write_packet(p, sec=Decimal(time_us(p)) / US)
    finally:
        w.close()


# --------------------------------------------------------------------------------------------
# Content


FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory"]
LAST = ["Smith", "Jones", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Anderson", "Thomas", "Moore"]


def customers_csv(rng: random.Random, n: int) -> bytes:
    """Customer export, the kind of table a DLP sensor exists for: exactly ``n`` bytes."""
    lines = ["id,name,email,iban,balance\n"]
    row = 0
    while sum(map(len, lines)) < n:
        row += 1
        first = rng.choice(FIRST)
        lines.append(
            f"{row},{first.title()} {rng.choice(LAST)},{first}{rng.randint(1, 999)}@corp.example,"
            f"DE{rng.randint(10**19, 10**20 - 1)},{rng.randint(100, 99999)}.{rng.randint(0, 99):02d}\n"
        )
    return "".join(lines).encode()[:n]


def news_page(rng: random.Random) -> bytes:
    words = ["network", "sensor", "market", "report", "city", "council", "weather", "season", "update"]
    paras = "".join(
        "<p>" + " ".join(rng.choice(words) for _ in range(rng.randint(40, 90))) + ".</p>\n" for _ in range(60)
    )
    head = '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Local news</title></head>\n'
    return (head + "<body><h1>Today</h1>\n" + paras + "</body></html>\n").encode()


def passwd_file(rng: random.Random) -> bytes:
    system = [
        "root:x:0:0:root:/root:/bin/bash",
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
        "bin:x:2:2:bin:/bin:/usr/sbin/nologin",
        "sys:x:3:3:sys:/dev:/usr/sbin/nologin",
        "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin",
        "backup:x:34:34:backup:/var/backups:/usr/sbin/nologin",
        "sshd:x:105:65534::/run/sshd:/usr/sbin/nologin",
        "postgres:x:113:120:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash",
    ]
    users = [
        f"{f}.{last.lower()}:x:{1000 + i}:{1000 + i}:{f.title()} {last},,,:/home/{f}.{last.lower()}:/bin/bash"
        for i, (f, last) in enumerate((rng.choice(FIRST), rng.choice(LAST)) for _ in range(40))
    ]
    return ("\n".join(system + users) + "\n").encode()


def zip_of(name: str, content: bytes) -> bytes:
    """A zip written by zipfile, as Python's shutil/zipfile staging does (fixed date)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o100644 << 16
        zf.writestr(info, content)
    return buf.getvalue()


def http_response(body: bytes, ctype: str, extra: str = "") -> bytes:
    head = (
        "HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nDate: Sat, 22 Nov 2025 08:26:41 GMT\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}Connection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


# --------------------------------------------------------------------------------------------
# The captures


def exfil_http_post(out: Path) -> list[Member]:
    """10.1.2.3 POSTs a gzip of a customer CSV to 203.0.113.9; 10.1.2.44 reads a gzip-encoded page."""
    rng = random.Random(101)
    name = "exfil-http-post.pcap"
    member = gzip.compress(customers_csv(rng, 80_000), compresslevel=9, mtime=MTIME)
    up = Tcp(("10.1.2.3", 50512), ("203.0.113.9", 80), BASE_TIME + 0.120, isn=(3_561_113_907, 1_204_880_117))
    head = (
        "POST /upload HTTP/1.1\r\nHost: 203.0.113.9\r\nUser-Agent: python-requests/2.31.0\r\n"
        "Accept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n"
        f"Content-Length: {len(member)}\r\n\r\n"
    ).encode()
    offset = up.send(C2S, head + member) + len(head)
    up.pause(40)
    up.send(S2C, http_response(b'{"status":"ok"}', "application/json"))
    up.close()

    page = gzip.compress(news_page(rng), compresslevel=6, mtime=MTIME - 3600)
    web = Tcp(("10.1.2.44", 51840), ("192.0.2.80", 80), BASE_TIME, isn=(2_017_775_530, 4_001_310_044))
    web.send(
        C2S,
        b"GET /news/index.html HTTP/1.1\r\nHost: www.example.org\r\n"
        b"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/132.0\r\n"
        b"Accept: text/html\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n\r\n",
    )
    web.pause(25)
    resp = http_response(page, "text/html; charset=utf-8", "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n")
    page_offset = web.send(S2C, resp) + len(resp) - len(page)
    web.close()

    (out / name).write_bytes(pcap_bytes(by_time(up.pkts, web.pkts)))
    return [
        Member(name, "gzip", "10.1.2.3:50512 -> 203.0.113.9:80 c2s", offset, member, "POST body: alert, outbound"),
        Member(name, "gzip", "192.0.2.80:80 -> 10.1.2.44:51840 s2c", page_offset, page, "Content-Encoding: event"),
    ]


def c2_custom_port(out: Path) -> list[Member]:
    """Length-prefixed zlib JSON, then a base64 line of a zip of passwd, to port 4444 on VLAN 20."""
    rng = random.Random(202)
    name = "c2-custom-port.pcapng"
    procs = [
        {
            "pid": rng.randint(400, 30000),
            "ppid": rng.randint(4, 4000),
            "name": exe,
            "cmd": f"C:\\Windows\\System32\\{exe} -k {rng.choice(['netsvcs', 'LocalService', 'DcomLaunch'])} -p",
            "user": rng.choice(["SYSTEM", "LOCAL SERVICE", "CORP\\bob"]),
        }
        for exe in (
            rng.choice(["svchost.exe", "explorer.exe", "msedge.exe", "python.exe", "lsass.exe"]) for _ in range(300)
        )
    ]
    docs = ["Finance", "HR", "Legal", "Projects", "Scans"]
    files = [
        {
            "path": f"C:\\Users\\bob\\Documents\\{rng.choice(docs)}\\{rng.choice(FIRST)}_{n:03d}.xlsx",
            "size": rng.randint(8_000, 4_000_000),
            "sha1": rng.randbytes(20).hex(),
        }
        for n in range(220)
    ]
    beacon = {"id": "WS-07", "user": "CORP\\bob", "os": "Windows 10 Pro 19045", "procs": procs, "files": files}
    blob = zlib.compress(json.dumps(beacon).encode(), 6)
    archive = zip_of("passwd", passwd_file(rng))
    line = base64.b64encode(archive) + b"\n"

    c2 = Tcp(("10.1.2.7", 49822), ("198.51.100.20", 4444), BASE_TIME + 5, isn=(912_004_771, 66_120_551), vlan=20)
    zlib_at = c2.send(C2S, struct.pack(">I", len(blob)) + blob) + 4
    c2.pause(80)
    task = json.dumps({"task": "upload", "path": "/etc/passwd", "enc": "zip+b64"}).encode()
    c2.send(S2C, struct.pack(">I", len(task)) + task)
    c2.pause(30)
    b64_at = c2.send(C2S, line)
    c2.pause(60)
    ack = b'{"ack":true}'
    c2.send(S2C, struct.pack(">I", len(ack)) + ack)
    c2.close()

    pkts = c2.pkts
    data = c2.data_packets(C2S)
    times = [time_us(p) for p in pkts]
    # three segments arrive after their successor (out of order), then one is retransmitted
    order = list(range(len(pkts)))
    for a, b in [(data[1], data[2]), (data[4], data[5]), (data[7], data[8])]:
        order.remove(a)
        order.insert(order.index(b) + 1, a)
    pkts = [pkts[i] for i in order]
    resent = c2.pkts[data[3]]
    pkts.insert(next(i for i, p in enumerate(pkts) if p is resent) + 3, resent.copy())
    for p, t in zip(pkts, sorted(times + [times[-1] + 1]), strict=True):
        set_time(p, t)

    write_pcapng(out / name, pkts)
    flow = "10.1.2.7:49822 -> 198.51.100.20:4444 c2s"
    return [
        Member(name, "zlib", flow, zlib_at, blob, "after a 4-byte length: alert, outbound"),
        Member(name, "zip", flow, b64_at, archive, "base64 line (offset of the text): alert, sensitive passwd"),
    ]


def client_hello(rng: random.Random, sni: bytes) -> bytes:
    """A TLS 1.3 ClientHello record, as a browser sends it, with the SNI extension."""

    def ext(kind: int, body: bytes) -> bytes:
        return struct.pack(">HH", kind, len(body)) + body

    def vec(width: int, body: bytes) -> bytes:
        return len(body).to_bytes(width, "big") + body

    exts = b"".join(
        [
            ext(0, vec(2, b"\x00" + vec(2, sni))),  # server_name
            ext(10, vec(2, struct.pack(">HHH", 0x001D, 0x0017, 0x0018))),  # supported_groups
            ext(11, vec(1, b"\x00")),  # ec_point_formats
            ext(13, vec(2, struct.pack(">6H", 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501))),
            ext(16, vec(2, vec(1, b"h2") + vec(1, b"http/1.1"))),  # ALPN
            ext(43, vec(1, struct.pack(">HH", 0x0304, 0x0303))),  # supported_versions
            ext(45, vec(1, b"\x01")),  # psk_key_exchange_modes
            ext(51, vec(2, struct.pack(">HH", 0x001D, 32) + rng.randbytes(32))),  # key_share x25519
        ]
    )
    suites = struct.pack(">9H", 0x1301, 0x1303, 0x1302, 0xC02B, 0xC02F, 0xCCA9, 0xCCA8, 0xC02C, 0xC030)
    body = b"\x03\x03" + rng.randbytes(32) + vec(1, rng.randbytes(32)) + vec(2, suites) + vec(1, b"\x00") + vec(2, exts)
    hs = b"\x01" + vec(3, body)
    return b"\x16\x03\x01" + vec(2, hs)


def server_hello(rng: random.Random) -> bytes:
    exts = struct.pack(">HHH", 43, 2, 0x0304) + struct.pack(">HHHH", 51, 36, 0x001D, 32) + rng.randbytes(32)
    body = b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32) + b"\x13\x01\x00"
    body += struct.pack(">H", len(exts)) + exts
    hs = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + struct.pack(">H", len(hs)) + hs


def app_data(rng: random.Random, sizes: list[int]) -> bytes:
    """TLS application-data records of random (ciphertext-like) bytes."""
    return b"".join(b"\x17\x03\x03" + struct.pack(">H", n) + rng.randbytes(n) for n in sizes)


def dns_and_tls(out: Path) -> list[Member]:
    """DNS lookups and a TLS download: encrypted and plain traffic with nothing compressed in it."""
    rng = random.Random(303)
    name = "dns-and-tls.pcap.gz"
    client, resolver = "10.1.2.15", ("10.1.2.1", 53)
    dns: list[Packet] = []
    t = BASE_TIME * US
    answers = [
        ("files.example.net", "A", "203.0.113.50"),
        ("files.example.net", "AAAA", "2001:db8:ffff::50"),
        ("time.example.org", "A", "198.51.100.123"),
        ("www.example.com", "A", "192.0.2.10"),
    ]
    for n, (qname, qtype, addr) in enumerate(answers):
        port, qid = 53000 + 17 * n, 0x1A2B + n
        query = DNS(id=qid, rd=1, qd=DNSQR(qname=qname, qtype=qtype))
        reply = DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=qname, qtype=qtype))
        reply.an = DNSRR(rrname=qname, type=qtype, ttl=300, rdata=addr)
        dns.append(udp((client, port), resolver, t, bytes(query), from_host=True))
        dns.append(udp(resolver, (client, port), t + 2_100, bytes(reply), from_host=False))
        t += 250_000 if n == 1 else 40_000

    tls = Tcp((client, 53422), ("203.0.113.50", 443), BASE_TIME + 0.010, isn=(1_500_221_093, 3_774_020_011))
    tls.send(C2S, client_hello(rng, b"files.example.net"))
    tls.pause(22)
    tls.send(S2C, server_hello(rng) + b"\x14\x03\x03\x00\x01\x01" + app_data(rng, [24, 2911, 286, 53]))
    tls.pause(1)
    tls.send(C2S, b"\x14\x03\x03\x00\x01\x01" + app_data(rng, [53, 412]))
    tls.pause(35)
    tls.send(S2C, app_data(rng, [16401, 16401, 9870, 19]))
    tls.pause(2)
    tls.send(C2S, app_data(rng, [19]))
    tls.close()

    (out / name).write_bytes(gzip.compress(pcap_bytes(by_time(dns, tls.pkts)), compresslevel=9, mtime=0))
    return []


def ipv6_bzip2(out: Path) -> list[Member]:
    """A bzip2 member across 30+ IPv6 segments to port 8443, a lost segment after it, never closed."""
    rng = random.Random(404)
    name = "ipv6-bzip2.pcap"
    member = bz2.compress(customers_csv(rng, 180_000), 9)
    sync = Tcp(
        ("2001:db8::10", 50344), ("2001:db8:ffff::20", 8443), BASE_TIME + 30, isn=(4_294_950_000, 7_700_123), mss=1440
    )
    sync.send(S2C, b"SYNC/1.1 READY\n")
    sync.pause(5)
    head = f"STOR db-export.csv.bz2 {len(member)}\n".encode()
    offset = sync.send(C2S, head + member) + len(head)
    sync.pause(30)
    sync.send(S2C, b"OK stored db-export.csv.bz2\n")
    sync.pause(400)
    tail = b"STOR notes.bin 4096\n" + rng.randbytes(4096)
    sync.send(C2S, tail)
    # the sensor missed the second segment of that last send: a gap after the member
    lost = sync.data_packets(C2S)[-2]
    pkts = [p for i, p in enumerate(sync.pkts) if i != lost]
    (out / name).write_bytes(pcap_bytes(pkts))  # no FIN: the connection is still open when the capture ends
    return [Member(name, "bzip2", "[2001:db8::10]:50344 -> [2001:db8:ffff::20]:8443 c2s", offset, member, "alert")]


def hosts_file() -> bytes:
    """The file the seed's atomic tests stage: a Windows hosts file with a few internal entries."""
    lines = [
        "# Copyright (c) 1993-2009 Microsoft Corp.",
        "#",
        "# This is a sample HOSTS file used by Microsoft TCP/IP for Windows.",
        "#",
        "# localhost name resolution is handled within DNS itself.",
        "#\t127.0.0.1       localhost",
        "#\t::1             localhost",
    ] + [f"10.1.{n // 200}.{n % 200 + 10}\tfs{n:02d}.corp.example" for n in range(40)]
    return ("\r\n".join(lines) + "\r\n").encode()


def staged_archives() -> tuple[bytes, bytes]:
    """stage_df00_lib.zip (zipfile, ZIP_DEFLATED) and stage_df00.tar.bz2 (tarfile + bz2) of the hosts file.

    samples/make_hostevents.py writes the same bytes into the staged tree, so disk and wire meet.
    """
    hosts = hosts_file()
    zipped = zip_of("hosts", hosts)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tar:
        info = tarfile.TarInfo("etc/hosts")
        info.size, info.mtime, info.mode = len(hosts), MTIME, 0o644
        tar.addfile(info, io.BytesIO(hosts))
    return zipped, buf.getvalue()


def mail_and_ftp(out: Path) -> list[Member]:
    """The seed's last two atomic tests leaving: a zipfile archive mailed, a bz2 tar stored by FTP."""
    name = "mail-and-ftp.pcap"
    zipped, tarred = staged_archives()

    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"], msg["To"], msg["Subject"] = "it-backup@corp.example", "archive@mailbox.example", "weekly backup"
    msg["Date"] = "Sat, 22 Nov 2025 08:26:40 +0000"
    msg["Message-ID"] = "<backup-20251122@ws-09.corp.example>"
    msg.set_content("Backup attached.\r\n")
    msg.add_attachment(zipped, maintype="application", subtype="zip", filename="stage_df00_lib.zip")
    msg.set_boundary("==stagewatch-sample==")
    data = msg.as_bytes()
    mail = Tcp(("10.1.2.9", 49_310), ("198.51.100.25", 25), BASE_TIME + 1, isn=(91_000_000, 2_100_000_000))
    mail.send(S2C, b"220 mx.mailbox.example ESMTP\r\n")
    for cmd, reply in (
        (b"EHLO ws-09.corp.example\r\n", b"250-mx.mailbox.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"),
        (b"MAIL FROM:<it-backup@corp.example>\r\n", b"250 2.1.0 Ok\r\n"),
        (b"RCPT TO:<archive@mailbox.example>\r\n", b"250 2.1.5 Ok\r\n"),
        (b"DATA\r\n", b"354 End data with <CR><LF>.<CR><LF>\r\n"),
    ):
        mail.send(C2S, cmd)
        mail.pause(20)
        mail.send(S2C, reply)
    msg_off = mail.send(C2S, data.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    mail.send(S2C, b"250 2.0.0 Ok: queued\r\n")
    mail.send(C2S, b"QUIT\r\n")
    mail.send(S2C, b"221 2.0.0 Bye\r\n")
    mail.close()

    ctl = Tcp(("10.1.2.12", 40_100), ("203.0.113.21", 21), BASE_TIME + 2, isn=(55_000_000, 3_300_000_000))
    ctl.send(S2C, b"220 (vsFTPd 3.0.5)\r\n")
    for cmd, reply in (
        (b"USER backup\r\n", b"331 Please specify the password.\r\n"),
        (b"PASS hunter2\r\n", b"230 Login successful.\r\n"),
        (b"TYPE I\r\n", b"200 Switching to Binary mode.\r\n"),
        (b"PASV\r\n", b"227 Entering Passive Mode (203,0,113,21,195,80).\r\n"),
        (b"STOR /incoming/stage_df00.tar.bz2\r\n", b"150 Ok to send data.\r\n"),
    ):
        ctl.send(C2S, cmd)
        ctl.pause(20)
        ctl.send(S2C, reply)
    data_conn = Tcp(("10.1.2.12", 40_101), ("203.0.113.21", 50_000), ctl.t / US + 0.005, isn=(66_000_000, 4_000_000))
    data_conn.send(C2S, tarred)
    data_conn.close()
    ctl.t = max(ctl.t, data_conn.t) + 10_000
    ctl.send(S2C, b"226 Transfer complete.\r\n")
    ctl.send(C2S, b"QUIT\r\n")
    ctl.send(S2C, b"221 Goodbye.\r\n")
    ctl.close()

    (out / name).write_bytes(pcap_bytes(by_time(mail.pkts, ctl.pkts, data_conn.pkts)))
    return [
        Member(name, "zip", "10.1.2.9:49310 -> 198.51.100.25:25 c2s", msg_off, zipped, "base64 in the message: alert"),
        Member(name, "bzip2", "10.1.2.12:40101 -> 203.0.113.21:50000 c2s", 0, tarred, "FTP STOR: alert"),
    ]


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent / "samples"
    out.mkdir(parents=True, exist_ok=True)
    members: list[Member] = []
    for build in (exfil_http_post, c2_custom_port, dns_and_tls, ipv6_bzip2, mail_and_ftp):
        members += build(out)
    for path in sorted(out.iterdir()):
        if path.name.endswith((".pcap", ".pcapng", ".pcap.gz")):
            data = path.read_bytes()
            print(f"{path.name:24} {len(data):7} bytes  sha256 {hashlib.sha256(data).hexdigest()}")
    for m in members:
        digest = hashlib.sha256(m.data).hexdigest()
        print(f"  {m.capture:22} {m.fmt:6} {m.flow} at {m.offset}: {len(m.data)} bytes sha256 {digest} ({m.note})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
