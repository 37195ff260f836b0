"""Packet -> Segment: a struct fast path for the common frames, dpkt for the rest, IP fragments reassembled.

The fast path reads Ethernet (0-2 VLAN tags), unfragmented IPv4 and IPv6 without extension headers, TCP
and UDP with `struct.unpack_from` (BASELINE.md: 7x dpkt's object-building rate). Any frame it does not
fully understand goes to the dpkt path, which parses one layer at a time with dpkt's upper-layer dispatch
switched off (dpkt swallows errors and leaves raw bytes behind, STYLE.md §8.6), checks each layer and
counts what it cannot decode in `RunStats.undecoded`:

    linktype:N       a link type neither path knows
    ethertype:0xNNNN a network protocol other than IPv4/IPv6 (after VLAN tags)
    llc              an IEEE 802.3 frame with a length field (LLC/SNAP, Novell raw, ISL)
    af:N             a BSD loopback address family other than IPv4/IPv6
    ip_version:N     a raw-IP frame whose version nibble is neither 4 nor 6
    ip_proto:N       a transport other than TCP or UDP (after IPv6 extension headers)
    short            the frame ends inside a header
    malformed        a header field contradicts the frame or the protocol

Both paths honour the IPv4 total length and the IPv6 payload length: trailing Ethernet padding is not
payload (tcpflow writes it as stream data, BASELINE.md finding 5). Checksums are never verified.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import dpkt

from sensor import native
from sensor.flow.fragments import FragmentTable, OversizeDatagram
from sensor.model import Packet, Segment
from sensor.stats import RunStats

ETH_IP4, ETH_IP6 = 0x0800, 0x86DD
TCP, UDP = 6, 17
_VLAN = frozenset({0x8100, 0x88A8, 0x9100})  # outer tag types on the fast path; an inner one is 0x8100
_DPKT_VLAN = frozenset({0x8100, 0x88A8, 0x9100, 0x9200})  # what dpkt's Ethernet strips
_IP6_FRAGMENT = 44
_IP6_EXT = {  # extension headers walked to reach the transport (fragment headers are handled apart)
    0: dpkt.ip6.IP6HopOptsHeader,
    43: dpkt.ip6.IP6RoutingHeader,
    51: dpkt.ip6.IP6AHHeader,
    60: dpkt.ip6.IP6DstOptsHeader,
}

_IP4_FIELDS = struct.Struct("!BxHxxHxB2x4s4s").unpack_from  # ver/ihl, total length, flags/offset, proto, src, dst
_IP6_FIELDS = struct.Struct("!4xHBx16s16s").unpack_from  # payload length, next header, src, dst
_TCP_FIELDS = struct.Struct("!HHI4xBB").unpack_from  # sport, dport, seq, data offset, flags
_UDP_PORTS = struct.Struct("!HH").unpack_from  # sport, dport
_ETH_IP4_TCP = struct.Struct("!12xHBxHxxHxB2x4s4sHHI4xBB").unpack_from  # all of the above at once
_new = tuple.__new__


class _Undecoded(Exception):
    """A frame the dpkt path gives up on; `reason` is its RunStats.undecoded key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _parse(cls: type[dpkt.Packet], buf: bytes) -> dpkt.Packet:
    """dpkt's parse of one header, its failures turned into counted reasons."""
    try:
        return cls(buf)
    except dpkt.NeedData:
        raise _Undecoded("short") from None
    except (dpkt.UnpackError, IndexError, KeyError, ValueError, struct.error):
        raise _Undecoded("malformed") from None


# dpkt classes with their upper-layer dispatch switched off: each layer is parsed here, explicitly.
class _Ethernet(dpkt.ethernet.Ethernet):
    _typesw: dict = {}

    def __init__(self, buf: bytes) -> None:
        # dpkt's Ethernet.__init__ runs the tag parsing a second time when the data was left as bytes,
        # which would strip a third and fourth VLAN tag (or guess past MPLS labels) a second time.
        self._next_type = None
        dpkt.Packet.__init__(self, buf)


class _SLL(dpkt.sll.SLL):
    _typesw: dict = {}


class _SLL2(dpkt.sll2.SLL2):
    _typesw: dict = {}


class _Loopback(dpkt.loopback.Loopback):
    def unpack(self, buf: bytes) -> None:
        dpkt.Packet.unpack(self, buf)


class _IPv4(dpkt.ip.IP):
    _protosw: dict = {}


class _IPv6(dpkt.ip6.IP6):
    # dpkt's own walk parses the data of a non-first fragment as headers when the fragment header is
    # not the first extension header; the walk is done in Decoder._ip6 instead.
    def unpack(self, buf: bytes) -> None:
        dpkt.Packet.unpack(self, buf)


def _link_ethernet(data: bytes) -> tuple[int, bytes]:
    if len(data) >= 14 and (data[12] << 8 | data[13]) <= 1500:
        raise _Undecoded("llc")
    eth = _parse(_Ethernet, data)
    et = eth.type
    if et in _DPKT_VLAN:
        et = eth.vlan_tags[-1].type  # dpkt strips up to two tags; a third is left as the type
    if not isinstance(eth.data, bytes):
        raise _Undecoded("malformed")
    return et, eth.data


def _link_sll(data: bytes) -> tuple[int, bytes]:
    sll = _parse(_SLL, data)
    return sll.ethtype, sll.data


def _link_sll2(data: bytes) -> tuple[int, bytes]:
    sll = _parse(_SLL2, data)
    return sll.ethtype, sll.data


_LOOPBACK_FAMILIES = {2: ETH_IP4, 24: ETH_IP6, 28: ETH_IP6, 30: ETH_IP6}  # AF_INET, AF_INET6 (BSDs, macOS)


def _link_loopback(data: bytes) -> tuple[int, bytes]:
    lo = _parse(_Loopback, data)  # the family is in the capturing host's byte order (NULL) or big-endian (LOOP)
    family = lo.family
    if family > 0xFFFF:
        family = int.from_bytes(family.to_bytes(4, "little"), "big")
    et = _LOOPBACK_FAMILIES.get(family)
    if et is None:
        raise _Undecoded(f"af:{family}")
    return et, lo.data


def _link_raw(data: bytes) -> tuple[int, bytes]:
    if not data:
        raise _Undecoded("short")
    version = data[0] >> 4
    if version == 4:
        return ETH_IP4, data
    if version == 6:
        return ETH_IP6, data
    raise _Undecoded(f"ip_version:{version}")


_LINKS = {  # LINKTYPE_* -> link-layer parser returning (ethertype, network-layer bytes)
    1: _link_ethernet,
    113: _link_sll,
    276: _link_sll2,
    0: _link_loopback,  # NULL
    108: _link_loopback,  # LOOP (OpenBSD)
    101: _link_raw,
    12: _link_raw,  # DLT_RAW on most systems
    14: _link_raw,  # DLT_RAW on OpenBSD
    228: _link_raw,  # IPV4
    229: _link_raw,  # IPV6
}


def decode_fast(ts: float, linktype: int, data: bytes, index: int) -> Segment | None:
    """The struct fast path, the reference of the compiled `_core.decode_fast`: the frame's Segment when it
    fully understands it, else None ("not mine", never "undecodable": Decoder.decode hands it to dpkt)."""
    n = len(data)
    if linktype != 1 or n < 34:
        return None
    if n >= 54:
        # The usual frame, untagged Ethernet + IPv4 with a 20-byte header + TCP/UDP, in one unpack.
        et, vihl, total, frag, proto, src, dst, sport, dport, seq, doff, flags = _ETH_IP4_TCP(data, 0)
        if et == 0x0800 and vihl == 0x45 and total >= 20 and not frag & 0x3FFF:
            end = 14 + total  # the IP length, not the frame: Ethernet padding is not payload
            if end > n:
                end = n
            if proto == 6:
                p = 34 + ((doff >> 4) << 2)
                if doff >= 0x50 and p <= end:
                    # tuple.__new__ skips the NamedTuple's Python-level __new__: about 150 ns a packet
                    return _new(Segment, (ts, index, src, dst, sport, dport, 6, seq, flags, data[p:end]))
            elif proto == 17 and end >= 42:
                return _new(Segment, (ts, index, src, dst, sport, dport, 17, 0, 0, data[42:end]))
    # The general fast path: VLAN tags, IPv4 options, IPv6, short frames.
    et = data[12] << 8 | data[13]
    off = 14
    if et in _VLAN:
        et = data[16] << 8 | data[17]
        off = 18
        if et == 0x8100:
            et = data[20] << 8 | data[21]
            off = 22
    if et == 0x0800:  # IPv4
        if n < off + 20:
            return None
        vihl, total, frag, proto, src, dst = _IP4_FIELDS(data, off)
        hl = (vihl & 15) << 2
        if vihl >> 4 != 4 or hl < 20 or frag & 0x3FFF:  # fragments (MF or an offset) need reassembly
            return None
        t = off + hl
        if total:
            if total < hl:
                return None
            end = off + total  # the IP length, not the frame: Ethernet padding is not payload
            if end > n:
                end = n
        else:  # 0: segmentation offload on the capturing host; the frame is the datagram
            end = n
    elif et == 0x86DD:  # IPv6
        if n < off + 40 or data[off] >> 4 != 6:
            return None
        plen, proto, src, dst = _IP6_FIELDS(data, off)
        t = off + 40
        end = t + plen if plen else n
        if end > n:
            end = n
    else:
        return None
    if proto == 6:
        if t + 20 > end:
            return None
        sport, dport, seq, doff, flags = _TCP_FIELDS(data, t)
        p = t + ((doff >> 4) << 2)
        if doff < 0x50 or p > end:
            return None
        return _new(Segment, (ts, index, src, dst, sport, dport, 6, seq, flags, data[p:end]))
    if proto == 17:
        if t + 8 > end:
            return None
        sport, dport = _UDP_PORTS(data, t)
        return _new(Segment, (ts, index, src, dst, sport, dport, 17, 0, 0, data[t + 8 : end]))
    return None


class Decoder:
    """Frames to TCP segments and UDP datagrams; counts what it cannot decode; reassembles IP fragments."""

    def __init__(
        self,
        stats: RunStats,
        max_fragments: int = 4096,
        fragment_timeout: float = 30.0,
        fast: Callable[[float, int, bytes, int], Segment | None] | None = None,
    ) -> None:
        self.stats = stats
        self.fragments = FragmentTable(stats, max_fragments, fragment_timeout)
        self._fast = fast or native.pick("decode_fast", decode_fast)

    def decode(self, pkt: Packet) -> Segment | None:
        """The frame's segment, or None (undecodable frames are counted; a buffered fragment is not).

        The fast path (compiled in sensor/_core.pyx, or `decode_fast` below, its reference) takes the
        common frames; whatever it does not fully understand goes to `decode_dpkt`, which decides and counts.
        """
        ts, linktype, data, index, wirelen, _ = pkt
        if len(data) < wirelen:
            self.stats.snapped += 1  # decode what is there: a cut payload is what remains of it
        seg = self._fast(ts, linktype, data, index)
        return seg if seg is not None else self.decode_dpkt(pkt)

    def close(self) -> None:
        """End of input: fragments of datagrams that never completed are counted and dropped."""
        self.fragments.close()

    def decode_dpkt(self, pkt: Packet) -> Segment | None:
        """The dpkt path alone, for any link type the decoder knows (the fast path's reference, in tests)."""
        try:
            link = _LINKS.get(pkt.linktype)
            if link is None:
                raise _Undecoded(f"linktype:{pkt.linktype}")
            et, l3 = link(pkt.data)
            if et == ETH_IP4:
                return self._ip4(pkt, l3)
            if et == ETH_IP6:
                return self._ip6(pkt, l3)
            raise _Undecoded(f"ethertype:0x{et:04x}")
        except _Undecoded as e:
            self.stats.undecoded[e.reason] += 1
            return None
        except OversizeDatagram:
            self.stats.undecoded["malformed"] += 1
            return None

    def _ip4(self, pkt: Packet, l3: bytes) -> Segment | None:
        ip = _parse(_IPv4, l3)  # ihl < 5 raises; the payload is cut at the total length (all of it when 0)
        if ip.v != 4 or (ip.len and ip.len < ip.hl << 2):
            raise _Undecoded("malformed")
        if len(ip.opts) < (ip.hl << 2) - 20:
            raise _Undecoded("short")
        payload = ip.data
        if not isinstance(payload, bytes):
            raise _Undecoded("malformed")
        if ip.p != TCP and ip.p != UDP:
            raise _Undecoded(f"ip_proto:{ip.p}")
        if ip.mf or ip.offset:
            payload = self.fragments.add((ip.src, ip.dst, ip.id, ip.p), ip.offset << 3, ip.mf, payload, pkt.ts)
            if payload is None:
                return None
        return _transport(pkt, ip.src, ip.dst, ip.p, payload)

    def _ip6(self, pkt: Packet, l3: bytes) -> Segment | None:
        ip6 = _parse(_IPv6, l3)
        if ip6.v != 6:
            raise _Undecoded("malformed")
        src, dst, nxt = ip6.src, ip6.dst, ip6.nxt
        buf = ip6.data[: ip6.plen] if ip6.plen else ip6.data  # payload length 0: jumbogram or offload
        pos = 0
        reassembled = False
        while True:
            ext = _IP6_EXT.get(nxt)
            if ext is not None:
                hdr = _parse(ext, buf[pos:])
                if pos + hdr.length > len(buf):
                    raise _Undecoded("short")
                pos += hdr.length
                nxt = hdr.nxt
            elif nxt == _IP6_FRAGMENT:
                if reassembled:
                    raise _Undecoded("malformed")  # a fragment header inside a reassembled payload
                frag = _parse(dpkt.ip6.IP6FragmentHeader, buf[pos:])
                pos += 8
                nxt = frag.nxt
                reassembled = True
                if frag.frag_off or frag.m_flag:  # else an atomic fragment (RFC 6946): the datagram is whole
                    if nxt != TCP and nxt != UDP and nxt not in _IP6_EXT:
                        raise _Undecoded(f"ip_proto:{nxt}")
                    key = (src, dst, frag.id, nxt)
                    payload = self.fragments.add(key, frag.frag_off << 3, frag.m_flag, buf[pos:], pkt.ts)
                    if payload is None:
                        return None
                    buf, pos = payload, 0
            else:
                return _transport(pkt, src, dst, nxt, buf[pos:])


def _transport(pkt: Packet, src: bytes, dst: bytes, proto: int, payload: bytes) -> Segment:
    """TCP or UDP over an IP payload (already cut at the IP length), with dpkt."""
    if proto == TCP:
        tcp = _parse(dpkt.tcp.TCP, payload)  # a data offset under 5 raises
        if len(tcp.opts) < (tcp.off << 2) - 20:
            raise _Undecoded("short")  # options cut off: the header did not fit in the datagram
        if not isinstance(tcp.data, bytes):
            raise _Undecoded("malformed")
        return Segment(pkt.ts, pkt.index, src, dst, tcp.sport, tcp.dport, TCP, tcp.seq, tcp.flags & 0xFF, tcp.data)
    if proto == UDP:
        udp = _parse(dpkt.udp.UDP, payload)
        if not isinstance(udp.data, bytes):
            raise _Undecoded("malformed")
        return Segment(pkt.ts, pkt.index, src, dst, udp.sport, udp.dport, UDP, 0, 0, udp.data)
    raise _Undecoded(f"ip_proto:{proto}")


def decode_struct(pkt: Packet) -> Segment | None:
    """The Python fast path alone: None for any frame it does not fully understand (for tests and benchmarks).

    None here means "not mine", never "undecodable": `Decoder.decode` hands such frames to the dpkt path.
    """
    return decode_fast(pkt.ts, pkt.linktype, pkt.data, pkt.index)
