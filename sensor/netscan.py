"""Captures to findings: packets decoded, flows reassembled, streams and datagrams scanned.

Kept apart from pipeline.py because it wires four layers (capture, flow, detect, model) for one
kind of input; pipeline.py chooses it per input and runs it in one or several processes.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import replace

from sensor.capture.pcapfile import read_packets
from sensor.config import Settings
from sensor.detect.detector import Detector
from sensor.detect.stream import StreamScanner
from sensor.flow.decode import Decoder
from sensor.flow.direction import HomeNet, ip_text
from sensor.flow.table import Budget, Flow, FlowTable
from sensor.model import ContentObject, Finding, FlowRecord, NetworkOrigin, Segment
from sensor.stats import RunStats


def shard_of(a: bytes, b: bytes, shards: int) -> int:
    """Symmetric hash of the IP pair: both directions, and FTP control and data, meet in one process."""
    lo, hi = (a, b) if a <= b else (b, a)
    return zlib.crc32(lo + hi) % shards


class NetScanner:
    """One process's view of the network inputs: flows persist across capture files until `finish`."""

    def __init__(self, settings: Settings, detector: Detector, stats: RunStats, shard: tuple[int, int] = (0, 1)):
        self.det = detector
        self.stats = stats
        self.shard, self.shards = shard
        self.home = HomeNet(settings.home_net)
        self.budget = Budget()
        self.out: list[Finding | FlowRecord] = []
        lim = settings.limits
        self.table = FlowTable(lim, self.home, stats, self._sink, self._datagram, self.out.append, self.budget)
        self.decoder = Decoder(stats, max_fragments=lim.max_fragments, fragment_timeout=lim.fragment_timeout)
        self._owned: dict[tuple[bytes, bytes], bool] = {}  # IP pair -> this process's share (cached hash)

    def scan(self, path: str) -> Iterator[Finding | FlowRecord]:
        """Every finding and ended flow of one capture file (open flows carry on into the next file)."""
        self.table.source = path
        decode, process, out = self.decoder.decode, self.table.process, self.out
        shards, mine = self.shards, self.shard
        owned = self._owned
        for pkt in read_packets(path, self.stats):
            seg = decode(pkt)
            if seg is None:
                continue
            if shards > 1:
                pair = (seg.src, seg.dst)
                mine_ = owned.get(pair)
                if mine_ is None:
                    if len(owned) > 1 << 18:
                        owned.clear()
                    mine_ = owned[pair] = shard_of(seg.src, seg.dst, shards) == mine
                if not mine_:
                    continue
            process(seg)
            if out:
                yield from out
                out.clear()

    def finish(self) -> Iterator[Finding | FlowRecord]:
        """End of input: flush every open flow through the detector."""
        self.decoder.close()
        self.table.flush()
        yield from self.out
        self.out.clear()

    # -- wiring -------------------------------------------------------------------------------
    def _origin(self, flow: Flow, d: int) -> NetworkOrigin:
        c, s = (flow.cip, flow.cport), (flow.sip, flow.sport)
        (src, sport), (dst, dport) = (c, s) if d == 0 else (s, c)
        return NetworkOrigin(
            src=ip_text(src),
            sport=sport,
            dst=ip_text(dst),
            dport=dport,
            transport="tcp" if flow.proto == 6 else "udp",
            direction=flow.directions[d],
            community_id=flow.cid,
            flow_start=flow.start,
            ts=flow.start,
            packet=0,
            source=flow.source,
            client_to_server=d == 0,
        )

    def _sink(self, flow: Flow, d: int) -> StreamScanner:
        return StreamScanner(self.det, self._origin(flow, d), self.out.append, self.budget, self.table)

    def _datagram(self, flow: Flow, d: int, seg: Segment) -> None:
        if not seg.payload:
            return
        origin = replace(self._origin(flow, d), ts=seg.ts, packet=seg.index, source=self.table.source)
        obj = ContentObject(origin=origin, data=seg.payload, index=flow.datagrams - 1)  # datagrams count from 0
        self.out.extend(self.det.scan(obj))
