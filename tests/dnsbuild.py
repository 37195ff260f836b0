"""DNS tunnel captures as common exfiltration tools write them: data compressed first, then spelled into query
names (hex, base32 or base64 chunks in labels of at most 63 characters), a sequence label first or last or none,
the attacker's zone at the end; with retries, reordering, losses, a resolver relaying, and answers carrying data
back in TXT records. Used by tests/test_dns_tunnel.py and bench/bench_dns.py."""

from __future__ import annotations

import base64
import ipaddress
import random
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether


def spell(data: bytes, encoding: str) -> str:
    """`data` as label text: hex, base32 (no padding, lower case) or base64url (no padding)."""
    if encoding == "hex":
        return data.hex()
    if encoding == "base32":
        return base64.b32encode(data).decode().rstrip("=").lower()
    if encoding == "base64":
        return base64.urlsafe_b64encode(data).decode().rstrip("=")
    raise ValueError(encoding)


def labels(text: str, size: int = 63) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass
class Tunnel:
    """How one tool sends one file."""

    data: bytes
    zone: str = "t.exfil-example.com"
    encoding: str = "hex"
    chunk: int = 120  # characters of encoded text per query
    label: int = 60  # characters per label
    sequence: str | None = "first"  # "first", "last", "hexlast" or None
    client: str = "10.1.2.3"
    server: str = "198.51.100.53"  # the resolver or the authoritative server the client asks
    per_chunk: bool = False  # each chunk of data encoded alone (else the whole text split)

    def names(self) -> list[str]:
        if self.per_chunk:
            step = self.chunk * {"hex": 4, "base32": 5, "base64": 6}[self.encoding] // 8
            chunks = [spell(self.data[i : i + step], self.encoding) for i in range(0, len(self.data), step)]
        else:
            text = spell(self.data, self.encoding)
            chunks = [text[i : i + self.chunk] for i in range(0, len(text), self.chunk)]
        out = []
        for n, chunk in enumerate(chunks):
            parts = labels(chunk, self.label)
            if self.sequence == "first":
                parts = [str(n), *parts]
            elif self.sequence == "last":
                parts = [*parts, str(n)]
            elif self.sequence == "hexlast":
                parts = [*parts, f"{n:04x}"]
            out.append(".".join([*parts, self.zone]))
        return out


def query(name: str, client: str, server: str, ts: float, txid: int, sport: int = 53000, qtype: str = "A"):  # noqa: ANN201
    pkt = (
        Ether()
        / IP(src=client, dst=server)
        / UDP(sport=sport, dport=53)
        / DNS(id=txid, rd=1, qd=DNSQR(qname=name, qtype=qtype))
    )
    pkt.time = ts
    return pkt


def answer(name: str, client: str, server: str, ts: float, txid: int, txt: list[bytes] | None, sport: int = 53000):  # noqa: ANN201
    an = DNSRR(rrname=name, type="TXT", rdata=txt) if txt else None
    pkt = (
        Ether()
        / IP(src=server, dst=client)
        / UDP(sport=53, dport=sport)
        / DNS(id=txid, qr=1, aa=1, rd=1, ra=1, qd=DNSQR(qname=name, qtype="TXT" if txt else "A"), an=an)
    )
    pkt.time = ts
    return pkt


def packets(
    tunnel: Tunnel,
    *,
    start: float = 1_700_000_000.0,
    gap: float = 0.05,
    retries: float = 0.0,
    lose: float = 0.0,
    reorder: float = 0.0,
    resolver: str | None = None,
    authority: str = "203.0.113.53",
    seed: int = 1,
    answers: bool = False,
) -> list:
    """The queries (and their answers) of `tunnel`: `retries`, `lose` and `reorder` are fractions of queries
    repeated, never sent, or swapped with the next; with `resolver`, each query is also relayed by it."""
    rnd = random.Random(seed)
    names = tunnel.names()
    order = list(range(len(names)))
    for i in range(len(order) - 1):
        if rnd.random() < reorder:
            order[i], order[i + 1] = order[i + 1], order[i]
    out = []
    ts = start
    for i in order:
        if rnd.random() < lose:
            continue
        for _ in range(2 if rnd.random() < retries else 1):
            ts += gap
            txid = rnd.randrange(65536)
            sport = rnd.randrange(1024, 65535)
            out.append(query(names[i], tunnel.client, tunnel.server, ts, txid, sport))
            if resolver:
                relayed = "".join(c.upper() if rnd.random() < 0.5 else c for c in names[i])  # DNS 0x20
                out.append(
                    query(relayed, resolver, authority, ts + 0.001, rnd.randrange(65536), rnd.randrange(1024, 65535))
                )
            if answers:
                out.append(answer(names[i], tunnel.client, tunnel.server, ts + 0.01, txid, None, sport))
    return out


def txt_download(
    data: bytes,
    client: str,
    server: str,
    zone: str = "d.exfil-example.com",
    chunk: int = 180,
    start: float = 1_700_000_500.0,
) -> list:
    """A file pulled down in TXT answers (base64), one numbered query per chunk."""
    text = base64.b64encode(data)
    out = []
    ts = start
    for n, i in enumerate(range(0, len(text), chunk)):
        name = f"{n}.{zone}"
        ts += 0.05
        sport = 40000 + n % 20000
        out.append(query(name, client, server, ts, n, sport, qtype="TXT"))
        out.append(answer(name, client, server, ts + 0.01, n, [text[i : i + chunk]], sport))
    return out


# -- benign look-alikes, written as raw frames (fast enough for 100,000 queries) ----------------------------------

_ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"


def _name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\x00"


def _udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed)  # fmt: skip
    return _ETH + ip + udp


def _rr(rtype: int, rdata: bytes, ttl: int = 300) -> bytes:
    return b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def _txt(*strings: bytes) -> bytes:
    return b"".join(bytes([len(s)]) + s for s in strings)


def benign_frames(n: int, seed: int = 1, start: float = 1_764_200_000.0) -> list[tuple[float, bytes]]:
    """`n` benign queries with random-looking labels, and most answers: CDN hash names, telemetry ids (UUIDs,
    base32 tokens), DKIM keys and ACME tokens in TXT, NXDOMAIN with NSEC3 hashes, plain names. A few clients ask
    thousands of such names under one zone, as an agent or a busy browser does."""
    rnd = random.Random(seed)
    clients = [f"10.20.{i // 250}.{i % 250 + 1}" for i in range(300)]
    heavy = clients[:5]
    resolver = "10.0.0.53"
    sites = [f"site{i}-example.com" for i in range(400)]
    b32 = "abcdefghijklmnopqrstuvwxyz234567"
    out: list[tuple[float, bytes]] = []
    ts = start
    for _ in range(n):
        ts += rnd.expovariate(200.0)
        client = rnd.choice(heavy) if rnd.random() < 0.3 else rnd.choice(clients)
        kind = rnd.random()
        qtype, answer, rcode, authority = 1, b"", 0, b""
        if kind < 0.2:
            name = f"{rnd.randbytes(16).hex()}.cdn-hash-example.net"
            answer = _rr(1, rnd.randbytes(4))
        elif kind < 0.35:
            name = f"{uuid.UUID(bytes=rnd.randbytes(16))}.telemetry.vendor-example.com"
            answer = _rr(1, rnd.randbytes(4))
        elif kind < 0.45:
            token = "".join(rnd.choice(b32) for _ in range(26))
            name = f"{token}.sync.cloud-example.com"
            answer = _rr(5, _name(f"edge{rnd.randrange(9)}.cloud-example.com")) + _rr(1, rnd.randbytes(4))
        elif kind < 0.5:
            name = f"{rnd.randbytes(20).hex()}.{rnd.randbytes(8).hex()}.objects.storage-example.com"
            answer = _rr(1, rnd.randbytes(4))
        elif kind < 0.55:
            name = f"s{rnd.randrange(2020, 2027)}{rnd.randrange(1, 13):02d}._domainkey.{rnd.choice(sites)}"
            qtype = 16
            key = base64.b64encode(rnd.randbytes(294))
            answer = _rr(16, _txt(b"v=DKIM1; k=rsa; p=" + key[:200], key[200:]))
        elif kind < 0.6:
            name = f"_acme-challenge.{rnd.choice(['www', 'api', 'mail'])}.{rnd.choice(sites)}"
            qtype = 16
            answer = _rr(16, _txt(base64.urlsafe_b64encode(rnd.randbytes(32)).rstrip(b"=")))
        elif kind < 0.7:
            name = f"{rnd.choice(['wpad', 'isatap', 'printer', 'nas'])}{rnd.randrange(99)}.{rnd.choice(sites)}"
            rcode = 3
            nsec3 = "".join(rnd.choice("0123456789abcdefghijklmnopqrstuv") for _ in range(32))
            rdata = (
                b"\x01\x00\x00\x0a\x04"
                + rnd.randbytes(4)
                + b"\x14"
                + rnd.randbytes(20)
                + b"\x00\x06\x40\x00\x00\x00\x00\x03"
            )
            owner = _name(f"{nsec3}.{name.split('.', 1)[1]}")
            authority = owner + struct.pack("!HHIH", 50, 1, 300, len(rdata)) + rdata
        else:
            name = f"{rnd.choice(['www', 'api', 'static', 'img', 'login', 'cdn'])}.{rnd.choice(sites)}"
            answer = _rr(1, rnd.randbytes(4))
        txid, sport = rnd.randrange(65536), rnd.randrange(1024, 65535)
        question = _name(name) + struct.pack("!HH", qtype, 1)
        q = struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + question
        out.append((ts, _udp(client, resolver, sport, 53, q)))
        if rnd.random() < 0.9:
            answers = answer.count(b"\xc0\x0c") if answer else 0
            r = struct.pack("!HHHHHH", txid, 0x8180 | rcode, 1, answers, 1 if authority else 0, 0) + question
            out.append((ts + 0.002, _udp(resolver, client, 53, sport, r + answer + authority)))
    return out


def write_frames(path: str | Path, frames: list[tuple[float, bytes]]) -> Path:
    """A classic pcap (Ethernet) of (time, frame) pairs."""
    path = Path(path)
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, frame in frames:
            sec = int(ts)
            f.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(frame), len(frame)) + frame)
    return path


__all__ = ["Tunnel", "answer", "benign_frames", "labels", "packets", "query", "spell", "txt_download", "write_frames"]
