"""Craft TCP and UDP conversations with scapy and write them as captures, for reassembly tests.

A :class:`Conv` describes one TCP connection as the bytes each side sends; :func:`segments`
turns it into the packets a sensor would capture (handshake, MSS-sized segments with PSH on the
last one of each send, delayed ACKs from the peer, FIN or RST, increasing timestamps). The
mutators then make the capture hard the way real ones are: out-of-order arrival, exact
retransmissions, overlapping resends with the same or different bytes, segments the sensor
missed, VLAN/QinQ tags, IP fragments and other link types. :func:`payload_stream` gives the
exact bytes of one direction, so a test can assert stream offsets and hashes.

Conventions, kept everywhere in this module:

- ``isn_c`` / ``isn_s`` are the SYN's sequence numbers, so the first data byte of each
  direction has sequence number ``isn + 1`` (mod 2**32), with or without a captured handshake.
- Times are whole microseconds (``pkt.time`` is an exact :class:`~scapy.utils.EDecimal`), so
  the files written are byte-identical on every run.
- Mutators never change the packets they are given: they return new lists of copies, and the
  same seed gives the same result. Apply the TCP mutators (:func:`reorder`,
  :func:`retransmit`, :func:`overlap`, :func:`drop`) before :func:`vlan`, :func:`fragment` and
  :func:`as_linktype`, as a real network would.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet import fragment as _ip_fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback
from scapy.packet import Packet, Raw
from scapy.utils import EDecimal, PcapNgWriter, PcapWriter

__all__ = [
    "BASE_TIME",
    "LINKTYPES",
    "Conv",
    "Direction",
    "as_linktype",
    "data_indices",
    "drop",
    "fragment",
    "interleave",
    "is_data",
    "nth_data",
    "overlap",
    "payload_stream",
    "reorder",
    "retransmit",
    "segments",
    "udp_datagrams",
    "vlan",
    "write_pcap",
    "write_pcapng",
]

Direction = Literal["c2s", "s2c"]
Close = Literal["fin", "rst"] | None
LinkKind = Literal["ether", "sll", "sll2", "raw", "loop"]

#: Default capture time of a conversation's first packet (2025-11-22 08:26:40 UTC).
BASE_TIME = 1_763_800_000

#: pcap link-layer header types (LINKTYPE_*) by the names :func:`as_linktype` takes.
LINKTYPES: dict[str, int] = {"ether": 1, "sll": 113, "sll2": 276, "raw": 101, "loop": 0}

_SEQ_MOD = 2**32
_US = 1_000_000
_ETH_IPV4, _ETH_IPV6, _TPID_8021Q = 0x0800, 0x86DD, 0x8100
_LOOP_AF_INET, _LOOP_AF_INET6 = 2, 24  # DLT_NULL families; 24 is the BSD AF_INET6 libpcap files carry
_LINKTYPE_OF: dict[type[Packet], int] = {
    Ether: LINKTYPES["ether"],
    CookedLinux: LINKTYPES["sll"],
    CookedLinuxV2: LINKTYPES["sll2"],
    IP: LINKTYPES["raw"],
    IPv6: LINKTYPES["raw"],
    Loopback: LINKTYPES["loop"],
}


# --------------------------------------------------------------------------------------------
# Time


def _us(pkt: Packet) -> int:
    """The packet's capture time in whole microseconds."""
    return int(Decimal(str(pkt.time)) * _US)


def _set_us(pkt: Packet, us: int) -> None:
    """Set the capture time to ``us`` microseconds, exactly."""
    pkt.time = EDecimal(us) / _US


def _to_us(seconds: float | int | Decimal) -> int:
    return int(Decimal(str(seconds)) * _US)


def _monotonic(pkts: list[Packet]) -> list[Packet]:
    """Push times forward where needed so that they strictly increase (1 µs apart at least)."""
    last = None
    for pkt in pkts:
        now = _us(pkt)
        if last is not None and now <= last:
            now = last + 1
            _set_us(pkt, now)
        last = now
    return pkts


# --------------------------------------------------------------------------------------------
# The conversation


@dataclass
class Conv:
    """One TCP connection: its endpoints, initial sequence numbers and the data each side sends.

    ``sends`` is the ordered list of ``(direction, bytes)`` application writes; each becomes
    ``ceil(len / mss)`` segments. Without ``handshake`` the capture starts mid-stream (the
    first packet is data). ``close`` is how the client ends it: ``"fin"`` (FIN from both
    sides), ``"rst"`` (an RST) or ``None`` (still open when the capture ends). ``start`` is the
    first packet's time in seconds and ``gap_us`` the time between two packets.
    """

    client: str
    client_port: int
    server: str
    server_port: int
    sends: list[tuple[Direction, bytes]] = field(default_factory=list)
    isn_c: int = 1_000_000
    isn_s: int = 3_000_000_000
    handshake: bool = True
    close: Close = "fin"
    mss: int = 1460
    start: float | int = BASE_TIME
    gap_us: int = 500
    client_mac: str = "02:00:00:00:00:01"
    server_mac: str = "02:00:00:00:00:02"

    def __post_init__(self) -> None:
        c, s = ipaddress.ip_address(self.client), ipaddress.ip_address(self.server)
        if c.version != s.version:
            raise ValueError(f"client {self.client} and server {self.server} are not the same IP version")
        for name in ("client_port", "server_port"):
            if not 0 < getattr(self, name) < 65536:
                raise ValueError(f"{name} must be 1..65535")
        for name in ("isn_c", "isn_s"):
            if not 0 <= getattr(self, name) < _SEQ_MOD:
                raise ValueError(f"{name} must be 0..2**32-1")
        if self.mss <= 0 or self.gap_us <= 0:
            raise ValueError("mss and gap_us must be positive")
        if self.close not in ("fin", "rst", None):
            raise ValueError(f"close must be 'fin', 'rst' or None, not {self.close!r}")
        for direction, data in self.sends:
            if direction not in ("c2s", "s2c"):
                raise ValueError(f"send direction must be 'c2s' or 's2c', not {direction!r}")
            if not data:
                raise ValueError("a send must carry at least one byte")

    @property
    def ipv6(self) -> bool:
        """True when the endpoints are IPv6 addresses."""
        return ipaddress.ip_address(self.client).version == 6

    def sender(self, direction: Direction) -> tuple[str, int]:
        """The (ip, port) that sends the data of ``direction``."""
        return (self.client, self.client_port) if direction == "c2s" else (self.server, self.server_port)


def payload_stream(conv: Conv, direction: Direction) -> bytes:
    """The exact bytes of one direction of ``conv``: what reassembly must give back."""
    return b"".join(data for d, data in conv.sends if d == direction)


def segments(conv: Conv, start: float | int | None = None) -> list[Packet]:
    """The whole conversation as Ether/IP(v6)/TCP packets in capture order.

    Handshake (SYN with the MSS option, SYN-ACK, ACK) when ``conv.handshake``; each send cut
    in ``conv.mss``-byte segments (PSH|ACK on the last one), ACKed by the peer after every
    second segment and after the last; then the close. ``start`` overrides ``conv.start``.
    """
    t = _to_us(conv.start if start is None else start)
    nxt: dict[Direction, int] = {"c2s": (conv.isn_c + 1) % _SEQ_MOD, "s2c": (conv.isn_s + 1) % _SEQ_MOD}
    ip_id: dict[Direction, int] = {"c2s": conv.isn_c & 0xFFFF, "s2c": conv.isn_s & 0xFFFF}
    out: list[Packet] = []

    def emit(d: Direction, flags: str, seq: int, ack: int, payload: bytes = b"", options: list | None = None) -> None:
        nonlocal t
        src, dst = (conv.client, conv.server) if d == "c2s" else (conv.server, conv.client)
        sport, dport = (conv.client_port, conv.server_port) if d == "c2s" else (conv.server_port, conv.client_port)
        smac, dmac = (conv.client_mac, conv.server_mac) if d == "c2s" else (conv.server_mac, conv.client_mac)
        if conv.ipv6:
            l3: Packet = IPv6(src=src, dst=dst, hlim=64)
        else:
            l3 = IP(src=src, dst=dst, ttl=64, id=ip_id[d], flags="DF")
            ip_id[d] = (ip_id[d] + 1) & 0xFFFF
        tcp = TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=64240, options=options or [])
        pkt = Ether(src=smac, dst=dmac) / l3 / tcp
        if payload:
            pkt = pkt / Raw(load=payload)
        _set_us(pkt, t)
        t += conv.gap_us
        out.append(pkt)

    if conv.handshake:
        syn_opts = [("MSS", conv.mss), ("NOP", None), ("NOP", None), ("SAckOK", b"")]
        emit("c2s", "S", conv.isn_c, 0, options=syn_opts)
        emit("s2c", "SA", conv.isn_s, nxt["c2s"], options=syn_opts)
        emit("c2s", "A", nxt["c2s"], nxt["s2c"])
    for d, data in conv.sends:
        peer: Direction = "s2c" if d == "c2s" else "c2s"
        chunks = [data[i : i + conv.mss] for i in range(0, len(data), conv.mss)]
        for n, chunk in enumerate(chunks, 1):
            last = n == len(chunks)
            emit(d, "PA" if last else "A", nxt[d], nxt[peer], chunk)
            nxt[d] = (nxt[d] + len(chunk)) % _SEQ_MOD
            if last or n % 2 == 0:
                emit(peer, "A", nxt[peer], nxt[d])
    if conv.close == "fin":
        emit("c2s", "FA", nxt["c2s"], nxt["s2c"])
        nxt["c2s"] = (nxt["c2s"] + 1) % _SEQ_MOD
        emit("s2c", "FA", nxt["s2c"], nxt["c2s"])
        nxt["s2c"] = (nxt["s2c"] + 1) % _SEQ_MOD
        emit("c2s", "A", nxt["c2s"], nxt["s2c"])
    elif conv.close == "rst":
        emit("c2s", "RA", nxt["c2s"], nxt["s2c"])
    return out


def udp_datagrams(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    payloads: Sequence[bytes | tuple[Direction, bytes]],
    start: float | int = BASE_TIME,
    gap_us: int = 500,
) -> list[Packet]:
    """Ether/IP(v6)/UDP datagrams between ``src:sport`` and ``dst:dport``, one per payload.

    A bare ``bytes`` payload goes from ``src`` to ``dst``; ``("s2c", bytes)`` goes back (a DNS
    answer, for instance). Times start at ``start`` and grow by ``gap_us``.
    """
    v6 = ipaddress.ip_address(src).version == 6
    out: list[Packet] = []
    t = _to_us(start)
    for n, item in enumerate(payloads):
        d, data = item if isinstance(item, tuple) else ("c2s", item)
        a, b, pa, pb = (src, dst, sport, dport) if d == "c2s" else (dst, src, dport, sport)
        l3 = IPv6(src=a, dst=b, hlim=64) if v6 else IP(src=a, dst=b, ttl=64, id=(sport + n) & 0xFFFF)
        macs = ("02:00:00:00:00:01", "02:00:00:00:00:02")
        smac, dmac = macs if d == "c2s" else macs[::-1]
        pkt = Ether(src=smac, dst=dmac) / l3 / UDP(sport=pa, dport=pb) / Raw(load=bytes(data))
        _set_us(pkt, t)
        t += gap_us
        out.append(pkt)
    return out


# --------------------------------------------------------------------------------------------
# Looking at packets


def _l3(pkt: Packet) -> Packet | None:
    return pkt.getlayer(IP) or pkt.getlayer(IPv6)


def _tcp(pkt: Packet) -> TCP | None:
    return pkt.getlayer(TCP)


def _half(pkt: Packet) -> tuple[str, int, str, int] | None:
    """(src ip, sport, dst ip, dport) of a TCP packet, addresses normalized; None otherwise."""
    l3, tcp = _l3(pkt), _tcp(pkt)
    if l3 is None or tcp is None:
        return None
    return str(ipaddress.ip_address(l3.src)), tcp.sport, str(ipaddress.ip_address(l3.dst)), tcp.dport


def is_data(pkt: Packet) -> bool:
    """True for a TCP segment that carries payload bytes."""
    tcp = _tcp(pkt)
    return tcp is not None and len(tcp.payload) > 0


def data_indices(pkts: Sequence[Packet], sender: tuple[str, int] | None = None) -> list[int]:
    """Positions in ``pkts`` of the data segments, all or only those sent by ``(ip, port)``."""
    want = None if sender is None else (str(ipaddress.ip_address(sender[0])), sender[1])
    out = []
    for i, pkt in enumerate(pkts):
        half = _half(pkt)
        if half is not None and is_data(pkt) and (want is None or half[:2] == want):
            out.append(i)
    return out


def nth_data(conv: Conv, direction: Direction, n: int) -> Callable[[Packet], bool]:
    """A :func:`drop` predicate matching the ``n``-th (0-based) data segment of ``direction``.

    It matches on sender, sequence number and length, so every copy of that segment (its
    retransmissions too) is matched, in any order and under any encapsulation.
    """
    pkts = segments(conv)
    idx = data_indices(pkts, conv.sender(direction))
    if not 0 <= n < len(idx):
        raise IndexError(f"{direction} has {len(idx)} data segments, no segment {n}")
    target = pkts[idx[n]]
    key = (_half(target), _tcp(target).seq, len(_tcp(target).payload))

    def predicate(pkt: Packet) -> bool:
        tcp = _tcp(pkt)
        return tcp is not None and (_half(pkt), tcp.seq, len(tcp.payload)) == key

    return predicate


def _copies(pkts: Iterable[Packet]) -> list[Packet]:
    return [pkt.copy() for pkt in pkts]


def _refresh(pkt: Packet) -> None:
    """Forget lengths and checksums so scapy recomputes them after an edit."""
    l3, tcp = _l3(pkt), _tcp(pkt)
    if isinstance(l3, IP):
        del l3.len, l3.chksum
    elif isinstance(l3, IPv6):
        del l3.plen
    if tcp is not None:
        del tcp.chksum


# --------------------------------------------------------------------------------------------
# TCP mutators


def reorder(pkts: Sequence[Packet], seed: int, fraction: float = 0.2) -> list[Packet]:
    """Deliver some data segments after the next data segment of the same direction.

    About ``fraction`` of the data segments (at least one when ``fraction > 0``) are each moved
    to just after their successor; the capture times are then handed out again in list order, so
    they still increase, as in a capture of out-of-order arrival.
    """
    out = _copies(pkts)
    times = sorted(_us(p) for p in out)
    by_half: dict[tuple, list[int]] = {}
    for i in data_indices(out):
        by_half.setdefault(_half(out[i]), []).append(i)
    pairs = [(g[k], g[k + 1]) for g in by_half.values() for k in range(len(g) - 1)]
    rng = random.Random(seed)
    rng.shuffle(pairs)
    want = max(1, round(fraction * sum(map(len, by_half.values())))) if fraction > 0 else 0
    used: set[int] = set()
    chosen = []
    for a, b in pairs:
        if len(chosen) == want:
            break
        if a not in used and b not in used:
            chosen.append((a, b))
            used.update((a, b))
    order = list(range(len(out)))
    for a, b in sorted(chosen):
        order.remove(a)
        order.insert(order.index(b) + 1, a)
    result = [out[i] for i in order]
    for pkt, t in zip(result, times, strict=True):
        _set_us(pkt, t)
    return result


def retransmit(pkts: Sequence[Packet], seed: int, fraction: float = 0.1, later: int = 2) -> list[Packet]:
    """Add exact duplicates (same bytes) of about ``fraction`` of the data segments.

    Each duplicate arrives ``later`` packets after its original (or at the end of the list).
    """
    out = _copies(pkts)
    idx = data_indices(out)
    want = max(1, round(fraction * len(idx))) if fraction > 0 and idx else 0
    picked = set(random.Random(seed).sample(idx, want))
    inserts: dict[int, list[Packet]] = {}
    for i in sorted(picked):
        inserts.setdefault(min(i + later, len(out) - 1), []).append(out[i].copy())
    result: list[Packet] = []
    for i, pkt in enumerate(out):
        result.append(pkt)
        result.extend(inserts.get(i, []))
    return _monotonic(result)


def overlap(pkts: Sequence[Packet], index: int, shift: int, new_bytes: bytes | None = None) -> list[Packet]:
    """Resend the data segment at ``pkts[index]`` starting ``shift`` bytes earlier.

    The resent segment follows the original and carries the ``shift`` stream bytes before it
    (taken from the other segments of that direction) plus the original payload, so it overlaps
    both. With ``new_bytes`` the start of the resent payload is replaced by those bytes (at most
    ``shift + len(payload)`` of them): the overlap then disagrees with what was sent first.
    """
    out = _copies(pkts)
    orig = out[index]
    tcp = _tcp(orig)
    if tcp is None or not is_data(orig):
        raise ValueError(f"packet {index} is not a TCP data segment")
    if shift <= 0:
        raise ValueError("shift must be positive")
    payload = bytes(tcp.payload)
    before = bytearray(shift)
    covered = [False] * shift
    half = _half(orig)
    for i in data_indices(out):
        other = _tcp(out[i])
        if i == index or _half(out[i]) != half:
            continue
        rel = (other.seq - tcp.seq) % _SEQ_MOD
        rel = rel - _SEQ_MOD if rel >= _SEQ_MOD // 2 else rel  # signed distance from the original
        data = bytes(other.payload)
        for k in range(max(rel, -shift), min(rel + len(data), 0)):
            before[k + shift] = data[k - rel]
            covered[k + shift] = True
    if not all(covered):
        raise ValueError(f"the {shift} bytes before packet {index} were not all sent")
    resent = bytes(before) + payload
    if new_bytes is not None:
        if len(new_bytes) > len(resent):
            raise ValueError(f"new_bytes is longer than the resent payload ({len(resent)} bytes)")
        resent = new_bytes + resent[len(new_bytes) :]
    dup = orig.copy()
    dup_tcp = _tcp(dup)
    dup_tcp.seq = (tcp.seq - shift) % _SEQ_MOD
    dup_tcp.remove_payload()
    dup_tcp.add_payload(Raw(load=resent))
    _refresh(dup)
    _set_us(dup, _us(orig) + 1)
    return _monotonic(out[: index + 1] + [dup] + out[index + 1 :])


def drop(pkts: Sequence[Packet], predicate: Callable[[Packet], bool]) -> list[Packet]:
    """Leave out every packet matching ``predicate``: a segment the sensor never saw (a gap)."""
    return [pkt.copy() for pkt in pkts if not predicate(pkt)]


# --------------------------------------------------------------------------------------------
# Link layer and IP mutators


def vlan(pkts: Sequence[Packet], ids: Sequence[int] = (100,), outer_tpid: int = 0x88A8) -> list[Packet]:
    """Tag Ethernet frames with 802.1Q VLAN ``ids``, outermost first.

    One id gives an 802.1Q tag (TPID 0x8100); two or more give QinQ, whose outer tag uses
    ``outer_tpid`` (802.1ad 0x88A8 by default; pass 0x8100 for the older double-0x8100 form).
    """
    if not ids:
        raise ValueError("at least one VLAN id")
    out = []
    for pkt in pkts:
        eth = pkt.getlayer(Ether)
        if eth is None or pkt.firstlayer() is not eth:
            raise ValueError("vlan() needs Ethernet frames")
        tpids = [outer_tpid if len(ids) > 1 and n == 0 else _TPID_8021Q for n in range(len(ids))]
        new: Packet = Ether(src=eth.src, dst=eth.dst, type=tpids[0])
        for n, vid in enumerate(ids):
            inner_type = tpids[n + 1] if n + 1 < len(ids) else eth.type
            tag_cls = Dot1AD if tpids[n] == 0x88A8 else Dot1Q
            new = new / tag_cls(vlan=vid, type=inner_type)
        new = new / eth.payload.copy()
        new.time = pkt.time
        out.append(new)
    return out


def fragment(pkts: Sequence[Packet], size: int) -> list[Packet]:
    """Split IP packets whose payload exceeds ``size`` bytes into fragments of at most ``size``.

    ``size`` is the data per fragment after the IP header (IPv4) or after the fragment header
    (IPv6) and must be a multiple of 8. IPv4 uses scapy's ``fragment()`` (DF cleared), IPv6
    ``fragment6()`` with a fragment identification counted from 1, so files are reproducible.
    Fragments share their packet's time, pushed 1 µs apart.
    """
    if size <= 0 or size % 8:
        raise ValueError("fragment size must be a positive multiple of 8")
    out: list[Packet] = []
    frag_id = 0
    for pkt in pkts:
        l3 = _l3(pkt)
        if l3 is None or len(l3.payload) <= size:
            out.append(pkt.copy())
            continue
        if isinstance(l3, IP):
            frags = _ip_fragment(pkt, fragsize=size)
            for f in frags:
                f[IP].flags = int(f[IP].flags) & ~0x2  # DF off: these were fragmented
        else:
            frag_id += 1
            whole = pkt.copy()
            v6 = whole[IPv6]
            upper = v6.payload
            v6.remove_payload()
            del v6.nh, v6.plen
            v6.add_payload(IPv6ExtHdrFragment(id=frag_id) / upper)
            unfrag = len(whole) - len(v6.payload)  # link + IPv6 header bytes
            frags = fragment6(whole, unfrag + 8 + size)
        for f in frags:
            f.time = pkt.time
        out.extend(frags)
    return _monotonic(out)


def as_linktype(pkts: Sequence[Packet], kind: LinkKind) -> list[Packet]:
    """Re-encapsulate the IP layer of each packet: ``sll`` (Linux cooked v1), ``sll2`` (v2),
    ``raw`` (no link header), ``loop`` (BSD loopback / DLT_NULL) or ``ether`` (plain Ethernet).

    Any Ethernet header and VLAN tags are dropped; the link source address of ``sll``/``sll2``
    is the old Ethernet source.
    """
    out = []
    for pkt in pkts:
        l3 = _l3(pkt)
        if l3 is None:
            raise ValueError(f"no IP layer in {pkt.summary()}")
        v6 = isinstance(l3, IPv6)
        ip = (IPv6 if v6 else IP)(bytes(l3))  # bytes, so the old link layer is forgotten
        eth = pkt.getlayer(Ether)
        mac = bytes.fromhex(eth.src.replace(":", "")) if eth is not None else b"\x00" * 6
        proto = _ETH_IPV6 if v6 else _ETH_IPV4
        if kind == "sll":
            new = CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=mac + b"\x00\x00", proto=proto) / ip
        elif kind == "sll2":
            link = CookedLinuxV2(proto=proto, ifindex=1, lladdrtype=1, pkttype=0, lladdrlen=6, src=mac + b"\x00\x00")
            new = link / ip
        elif kind == "raw":
            new = ip
        elif kind == "loop":
            new = Loopback(type=_LOOP_AF_INET6 if v6 else _LOOP_AF_INET) / ip
        elif kind == "ether":
            dst = eth.dst if eth is not None else "02:00:00:00:00:02"
            new = Ether(src=eth.src if eth is not None else "02:00:00:00:00:01", dst=dst, type=proto) / ip
        else:
            raise ValueError(f"unknown link type {kind!r}; one of {', '.join(LINKTYPES)}")
        new.time = pkt.time
        out.append(new)
    return out


def interleave(*pkt_lists: Sequence[Packet]) -> list[Packet]:
    """Merge packet lists by capture time (stable: on a tie, earlier lists come first)."""
    merged = [pkt.copy() for pkts in pkt_lists for pkt in pkts]
    return sorted(merged, key=_us)


# --------------------------------------------------------------------------------------------
# Writing


def _linktype(pkts: Sequence[Packet], linktype: int | None) -> int:
    kinds = {type(p) for p in pkts}
    unknown = [k.__name__ for k in kinds if k not in _LINKTYPE_OF]
    if linktype is not None:
        return linktype
    if unknown:
        raise ValueError(f"cannot tell the link type of {', '.join(sorted(unknown))}; pass linktype")
    found = {_LINKTYPE_OF[k] for k in kinds}
    if len(found) > 1:
        raise ValueError(f"packets of several link types {sorted(found)} cannot share one file")
    return found.pop() if found else LINKTYPES["ether"]


def write_pcap(path: str | Path, pkts: Sequence[Packet], linktype: int | None = None) -> Path:
    """Write ``pkts`` as a classic pcap (microsecond, little-endian); return the path.

    The link type is taken from the packets' outer layer unless ``linktype`` is given.
    """
    lt = _linktype(pkts, linktype)
    path = Path(path)
    with PcapWriter(str(path), linktype=lt, sync=False) as writer:
        writer.linktype = lt  # set again: the constructor ignores a falsy 0 (LINKTYPE_NULL)
        writer.write_header(None)
        for pkt in pkts:
            sec, usec = divmod(_us(pkt), _US)
            writer.write_packet(pkt, sec=sec, usec=usec)
    return path


def write_pcapng(path: str | Path, pkts: Sequence[Packet], linktype: int | None = None) -> Path:
    """Write ``pkts`` as pcapng (one section, one interface, µs timestamps); return the path."""
    lt = _linktype(pkts, linktype)
    path = Path(path)
    writer = PcapNgWriter(str(path))
    writer.linktype = lt
    try:
        writer.write_header(None)
        for pkt in pkts:
            writer.write_packet(pkt, sec=Decimal(_us(pkt)) / _US)
    finally:
        writer.close()
    return path
