"""Live capture from a SPAN/TAP interface: an AF_PACKET socket in promiscuous mode, frames as Packets.

The standard library's socket module speaks AF_PACKET directly; frames come through a TPACKET_V3
ring (mmap'ed blocks the kernel fills: no system call per frame), or one recvmsg per frame where
the ring cannot be set up. scapy is used only to compile a `--bpf` expression (through tcpdump).
The kernel strips 802.1Q tags into the packet's metadata; the ring's frame header (or
PACKET_AUXDATA) hands them back and they are put back into the frame, so the decoder sees what a
capture file would hold. Several workers share one interface through PACKET_FANOUT with a classic
BPF program that sends both directions of an IP pair to the same worker (the kernel's own hash
mode splits by 5-tuple, which would part an FTP control connection from its data).
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from sensor import native
from sensor.errors import InputError
from sensor.model import Packet

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_STATISTICS = 6
PACKET_AUXDATA = 8
PACKET_FANOUT = 18
PACKET_FANOUT_DATA = 22
PACKET_FANOUT_CBPF = 6
PACKET_FANOUT_FLAG_DEFRAG = 0x8000
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
LINKTYPE_ETHERNET = 1
AUXDATA = struct.Struct("=IIIHHHH")  # struct tpacket_auxdata
SNAP = 262_144  # veth and loopback carry offloaded frames up to 64 KiB; leave room
RCVBUF = 64 << 20
PACKET_RX_RING = 5
PACKET_VERSION = 10
TPACKET_V3 = 2
TP_STATUS_KERNEL, TP_STATUS_USER = 0, 1
BLOCK_SIZE, BLOCK_NR, FRAME_SIZE = 1 << 20, 64, 1 << 16  # a 64 MiB ring of 1 MiB blocks
UINT = struct.Struct("=I")
HDR3 = struct.Struct("=IIIIIIHHIIH")  # struct tpacket3_hdr up to tp_vlan_tpid
SLL_PKTTYPE = 48 + 10  # the sockaddr_ll after the aligned 48-byte tpacket3_hdr; sll_pkttype at +10


def ring_block(ring: mmap.mmap | bytes | bytearray, base: int, source: str, n: int, out: list[Packet]) -> int:
    """The frames of the TPACKET_V3 block at `base`, appended to `out` as Packets numbered after `n` (VLAN
    tags the kernel took out put back); returns the last number. The compiled core has the same loop."""
    u32, hdr_of = UINT.unpack_from, HDR3.unpack_from
    if base + 20 > len(ring):
        return n
    count, p = u32(ring, base + 12)[0], base + u32(ring, base + 16)[0]
    for _ in range(count):
        if p + SLL_PKTTYPE >= len(ring):
            break  # a header past the ring: never from a sane kernel, and never read
        nxt, sec, nsec, snaplen, wirelen, status, mac, _, _, tci, tpid = hdr_of(ring, p)
        if p + mac + snaplen > len(ring):
            break
        if ring[p + SLL_PKTTYPE] != PACKET_OUTGOING:  # a SPAN port sends nothing: skip our own
            data = ring[p + mac : p + mac + snaplen]
            if status & TP_STATUS_VLAN_VALID:
                tag_type = tpid if status & TP_STATUS_VLAN_TPID_VALID and tpid else 0x8100
                data = data[:12] + struct.pack("!HH", tag_type, tci & 0xFFFF) + data[12:]
                wirelen += 4
            n += 1
            out.append(Packet(sec + nsec * 1e-9, LINKTYPE_ETHERNET, data, n, wirelen, source))
        if not nxt:
            break  # the block's last frame: a count past it would read this frame again and again
        p += nxt
    return n


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]


def _prog(insns: list[tuple[int, int, int, int]]) -> tuple[bytes, object]:
    """A struct sock_fprog for setsockopt (the array is returned too: it must outlive the call)."""
    arr = (SockFilter * len(insns))(*[SockFilter(*i) for i in insns])
    fprog = SockFprog(len(insns), ctypes.cast(arr, ctypes.POINTER(SockFilter)))
    return bytes(ctypes.string_at(ctypes.addressof(fprog), ctypes.sizeof(fprog))), arr


def ip_pair_program(workers: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF: (sum of the source and destination address words) mod `workers`, 0 for non-IP.

    A sum is the same both ways, so a connection's two directions, and every connection between
    the same two hosts, land on one worker. A fanout program sees the packet from its network
    header (not the Ethernet header a socket filter sees), so the protocol comes from the skb
    (the SKF_AD_PROTOCOL ancillary load) and the offsets are the IP header's.
    """
    ld_h, ld_w, jeq, ret_a, ret_k = 0x28, 0x20, 0x15, 0x16, 0x06
    st, ldx_mem, add_x, mod_k = 0x02, 0x61, 0x0C, 0x94
    skf_ad_protocol = 0xFFFFF000  # SKF_AD_OFF + SKF_AD_PROTOCOL
    v4 = [(ld_w, 0, 0, 12), (st, 0, 0, 0), (ld_w, 0, 0, 16), (ldx_mem, 0, 0, 0), (add_x, 0, 0, 0)]
    v6: list[tuple[int, int, int, int]] = [(ld_w, 0, 0, 8), (st, 0, 0, 0)]
    for off in range(12, 40, 4):  # IPv6 source 8-23, destination 24-39: eight words in all
        v6 += [(ld_w, 0, 0, off), (ldx_mem, 0, 0, 0), (add_x, 0, 0, 0), (st, 0, 0, 0)]
    tail = [(mod_k, 0, 0, workers), (ret_a, 0, 0, 0)]
    body_v4, body_v6 = v4 + tail, v6 + tail
    prog = [(ld_h, 0, 0, skf_ad_protocol), (jeq, 0, len(body_v4), 0x0800)] + body_v4
    prog += [(jeq, 0, len(body_v6), 0x86DD)] + body_v6 + [(ret_k, 0, 0, 0)]
    return prog


@dataclass
class DropCounter:
    """Kernel counters (PACKET_STATISTICS resets on every read, so they are summed here)."""

    packets: int = 0
    drops: int = 0


class LiveCapture:
    """One AF_PACKET socket on `iface`: promiscuous, VLAN tags restored, optional BPF and fanout group."""

    def __init__(
        self,
        iface: str,
        bpf: str | None = None,
        fanout: tuple[int, int] | None = None,  # (group id, number of workers)
        ring: bool = True,
    ) -> None:
        self.iface = iface
        self.source = f"live:{iface}"
        self.counters = DropCounter()
        self.received = 0
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError:
            raise InputError(iface, "capture needs CAP_NET_RAW (run as root, or grant the capability)") from None
        try:
            self.sock.bind((iface, 0))
        except OSError as e:
            self.sock.close()
            what = "no such interface" if e.errno in (errno.ENODEV, errno.ENXIO) else e.strerror or str(e)
            raise InputError(iface, f"cannot capture: {what}") from None
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        ifindex = socket.if_nametoindex(iface)
        self.sock.setsockopt(
            SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
        )
        self.sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        if bpf:
            self._attach_bpf(bpf)
        if fanout is not None:
            group, workers = fanout
            mode = PACKET_FANOUT_CBPF | PACKET_FANOUT_FLAG_DEFRAG
            # the flag sets the int's top bit: passed as bytes, Python's int form is signed
            self.sock.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack("I", (group & 0xFFFF) | (mode << 16)))
            data, self._fanout_arr = _prog(ip_pair_program(workers))
            self.sock.setsockopt(SOL_PACKET, PACKET_FANOUT_DATA, data)
        self.ring: mmap.mmap | None = None
        if ring:
            self._setup_ring()
        self.sock.settimeout(0.2)

    def _attach_bpf(self, expression: str) -> None:
        try:
            from scapy.arch.common import compile_filter
        except ImportError as e:  # pragma: no cover - scapy is a dependency
            raise InputError(self.iface, f"cannot compile --bpf: {e}") from None
        try:
            compiled = compile_filter(expression, iface=self.iface)
        except Exception as e:  # noqa: BLE001 - scapy raises its own Scapy_Exception types
            raise InputError(self.iface, f"--bpf {expression!r} does not compile: {e}") from None
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(compiled))

    def packets(self, stop: threading.Event) -> Iterator[list[Packet] | None]:
        """Frames in batches (a ring block's, or one received frame) until `stop` is set; None whenever 0.2 s
        passed with none (the caller may sweep)."""
        if self.ring is not None:
            yield from self._ring_packets(stop)
        else:
            yield from self._recv_packets(stop)

    def _setup_ring(self) -> None:
        """A TPACKET_V3 receive ring: the kernel fills mmap'ed blocks, no system call per frame."""
        try:
            self.sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            req = struct.pack("7I", BLOCK_SIZE, BLOCK_NR, FRAME_SIZE, BLOCK_SIZE // FRAME_SIZE * BLOCK_NR, 60, 0, 0)
            self.sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
            self.ring = mmap.mmap(
                self.sock.fileno(), BLOCK_SIZE * BLOCK_NR, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
        except OSError:  # an old kernel or a restricted one: one frame per recvmsg instead
            self.ring = None

    def _ring_packets(self, stop: threading.Event) -> Iterator[list[Packet] | None]:
        ring = self.ring
        assert ring is not None
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN | select.POLLERR)
        u32, walk = UINT.unpack_from, native.pick("ring_block", ring_block)
        block, n = 0, 0
        while not stop.is_set():
            base = block * BLOCK_SIZE
            if not u32(ring, base + 8)[0] & TP_STATUS_USER:
                if not poller.poll(200):
                    yield None
                continue
            batch: list[Packet] = []
            try:
                n = walk(ring, base, self.source, n, batch)
            finally:
                UINT.pack_into(ring, base + 8, TP_STATUS_KERNEL)  # the block goes back to the kernel
            block = (block + 1) % BLOCK_NR
            self.received = n
            if batch:
                yield batch

    def _recv_packets(self, stop: threading.Event) -> Iterator[list[Packet] | None]:
        recv = self.sock.recvmsg
        cmsg_space = socket.CMSG_SPACE(AUXDATA.size)
        n = 0
        while not stop.is_set():
            try:
                data, anc, _, addr = recv(SNAP, cmsg_space)
            except TimeoutError:
                yield None
                continue
            except InterruptedError:
                continue
            if addr[2] == PACKET_OUTGOING:
                continue  # a SPAN port sends nothing; these are this host's own frames
            wirelen = len(data)
            for level, kind, cdata in anc:
                if level == SOL_PACKET and kind == PACKET_AUXDATA and len(cdata) >= AUXDATA.size:
                    status, tp_len, _, _, _, tci, tpid = AUXDATA.unpack_from(cdata)
                    wirelen = tp_len
                    if status & TP_STATUS_VLAN_VALID:
                        tag_type = tpid if status & TP_STATUS_VLAN_TPID_VALID and tpid else 0x8100
                        data = data[:12] + struct.pack("!HH", tag_type, tci) + data[12:]
                        wirelen += 4
            n += 1
            self.received = n
            yield [Packet(time.time(), LINKTYPE_ETHERNET, data, n, wirelen, self.source)]

    def drops(self) -> DropCounter:
        """Kernel counters so far (packets the socket was offered, and dropped for lack of buffer)."""
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12 if self.ring is not None else 8)
        packets, drops = struct.unpack_from("II", raw)
        self.counters.packets += packets
        self.counters.drops += drops
        return self.counters

    def close(self) -> None:
        if self.ring is not None:
            self.ring.close()
        self.sock.close()


__all__ = ["DropCounter", "LiveCapture", "ip_pair_program"]
