"""Captures to findings: packets decoded, flows reassembled, streams and datagrams scanned.

Kept apart from pipeline.py because it wires four layers (capture, flow, detect, model) for one
kind of input; pipeline.py chooses it per input and runs it in one or several processes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace

from sensor import native
from sensor.capture.pcapfile import read_batches, read_packets
from sensor.capture.plan import Segment as PlannedSegment
from sensor.config import Settings
from sensor.detect import inner
from sensor.detect.detector import Detector
from sensor.detect.stream import StreamScanner
from sensor.flow.chunker import ChunkSink
from sensor.flow.decode import Decoder
from sensor.flow.direction import HomeNet, ip_text
from sensor.flow.reassembly import EndReason
from sensor.flow.table import ACK, FIN, RST, SYN, TCP, Budget, Flow, FlowTable
from sensor.model import (
    ContentObject,
    Finding,
    FlowRecord,
    Identity,
    LimitHit,
    NetworkOrigin,
    ObjectRecord,
    Packet,
    Segment,
)
from sensor.protocols import dns_message
from sensor.protocols.dns_tunnel import DnsTunnels
from sensor.protocols.identity import Identities
from sensor.protocols.session import Session
from sensor.stats import RunStats

Result = Finding | FlowRecord | ObjectRecord | Identity


IDENTITY_PORTS = frozenset({67, 68, 88, 137, 5353, 5355})  # where sensor/protocols/identity/ readers listen


class _Ending:
    """How far a connection seen in a read-back file got towards its end."""

    __slots__ = ("fin_from", "over")

    def __init__(self) -> None:
        self.fin_from: set[tuple] = set()  # the orientations (sender first) that sent FIN
        self.over = False  # RST, or FIN from both sides


class NetScanner:
    """One process's view of the network inputs: flows persist across capture files until `finish`."""

    def __init__(self, settings: Settings, detector: Detector, stats: RunStats, shard: tuple[int, int] = (0, 1)):
        self.det = detector
        self.stats = stats
        self.home = HomeNet(settings.home_net)
        self.budget = native.pick("Budget", Budget)()
        self.out: list[Result] = []
        self.app_layer = settings.app_layer
        self.objects = settings.objects
        self.limits = settings.limits
        self.shared: dict[str, object] = {}  # extractors' per-process state (the FTP registry, DNS tunnels)
        self.dns: DnsTunnels | None = None
        self.identities: Identities | None = None
        if settings.app_layer:
            self.dns = DnsTunnels(settings.limits, settings.home_domains, self._object, stats)
            self.shared["dns"] = self.dns
            self.identities = Identities(self._identity)
            self.shared["identities"] = self.identities
        lim = settings.limits
        table = native.pick("FlowTable", FlowTable)  # the compiled core's (sensor/_flow.pyx) or its reference
        self.table = table(lim, self.home, stats, self._sink, self._datagram, self.out.append, self.budget, shard)
        self.decoder = Decoder(stats, max_fragments=lim.max_fragments, fragment_timeout=lim.fragment_timeout)

    def scan(self, path: str) -> Iterator[Result]:
        """Every finding and ended flow of one capture file (open flows carry on into the next file)."""
        yield from self.feed(read_batches(path, self.stats), path)

    def feed(self, batches: Iterable[list[Packet] | None], source: str) -> Iterator[Result]:
        """Results of a packet source (a file's records, or a live interface's frames), in batches.

        A None from the source means "nothing arrived lately": idle flows are swept by the wall
        clock then, as capture time does not move on a quiet link.
        """
        self.table.source = source
        feed, decoder, out = self.table.feed, self.decoder, self.out
        for batch in batches:
            if batch is None:
                now = time.time()
                self.table.sweep(now)
                if self.dns is not None:
                    self.dns.sweep(now)
            else:
                feed(batch, decoder)
            if out:
                yield from out
                out.clear()

    def run_segment(self, seg: PlannedSegment) -> Iterator[Result]:
        """One planned segment: read back (track only), its own files, then read ahead for its open flows."""
        self.table.foreign = self._open_before(seg)
        for path in seg.files:
            yield from self.scan(path)
        self.table.admit_new = False
        for path in seg.read_ahead:
            if not self.table.open_tcp():
                break
            yield from self.scan(path)
        self.decoder.close()
        self.table.flush(EndReason.SEGMENT if seg.read_ahead else EndReason.EOF)
        self._flush_shared()
        yield from self.out
        self.out.clear()

    def _open_before(self, seg: PlannedSegment) -> set[tuple]:
        """Flows still open at the segment's start, from the previous segment's last file (both orientations)."""
        if not seg.read_back or seg.start_ts is None:
            return set()
        since = seg.start_ts - self.limits.flow_timeout
        # one record per connection, shared by both orientations: the sides that sent FIN, and whether it
        # is over. A FIN only half-closes: the other side may go on sending into this segment's files,
        # and those bytes belong to the previous segment's flow, not to a mid-stream flow here.
        state: dict[tuple, _Ending] = {}
        decoder = Decoder(RunStats())
        for path in seg.read_back:
            for pkt in read_packets(path, RunStats()):
                if pkt.ts < since:
                    continue
                s = decoder.decode(pkt)
                if s is None or s.proto != TCP:
                    continue
                key = (s.src, s.sport, s.dst, s.dport, s.proto)
                back = (s.dst, s.dport, s.src, s.sport, s.proto)
                rec = state.get(key)
                if rec is None or (s.flags & SYN and not s.flags & ACK):  # a new connection on this tuple
                    rec = state[key] = state[back] = _Ending()
                if s.flags & RST:
                    rec.over = True
                elif s.flags & FIN:
                    rec.fin_from.add(key)
                    rec.over = len(rec.fin_from) == 2
        return {k for k, rec in state.items() if not rec.over}

    def finish(self) -> Iterator[Result]:
        """End of input: flush every open flow through the detector."""
        self.decoder.close()
        self.table.flush()
        self._flush_shared()
        yield from self.out
        self.out.clear()

    def _flush_shared(self) -> None:
        for state in self.shared.values():
            flush = getattr(state, "flush", None)
            if flush is not None:
                flush()  # transfers still waiting for their other half go out unnamed

    # -- wiring -------------------------------------------------------------------------------
    def _origin(
        self, flow: Flow, d: int, ts: float | None = None, packet: int = 0, protocol: str | None = None
    ) -> NetworkOrigin:
        """Direction d's endpoints; `ts`/`packet` of one datagram (else the flow's start) set at once (a
        dataclasses.replace per datagram cost more than the rest of its DNS reading)."""
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
            ts=flow.start if ts is None else ts,
            packet=packet,
            source=flow.source if ts is None else self.table.source,
            client_to_server=d == 0,
            protocol=protocol,
            sni=flow.sni,
        )

    def _sink(self, flow: Flow, d: int) -> ChunkSink:
        if not self.app_layer:
            return StreamScanner(self.det, self._origin(flow, d), self.out.append, self.budget)
        session = flow.app
        if not isinstance(session, Session):
            session = flow.app = Session(
                lambda d_: self._origin(flow, d_),
                self._object,
                lambda d_, start, index, proto: self._raw(flow, d_, start, index, proto),
                self.budget,
                self.stats,
                self.limits,
                flow.sport,
                self.shared,
            )
        return session.sinks[d]

    def _raw(self, flow: Flow, d: int, start: int, index: int, protocol: str | None) -> StreamScanner:
        """A direction no extractor parses (any more): scanned raw from stream offset `start`."""
        origin = self._origin(flow, d)
        if protocol:
            origin = replace(origin, protocol=protocol)
        return StreamScanner(self.det, origin, self.out.append, self.budget, start, index)

    def _object(self, obj: ContentObject, scan: bool) -> None:
        """One application object: scanned (unless its parts are), and recorded for --objects."""
        limits: tuple[LimitHit, ...] = ()
        if scan:
            self.out.extend(self.det.scan(obj))
            limits = tuple(self.det.object_limits)
        if self.objects and isinstance(obj.origin, NetworkOrigin):
            data = obj.data
            self.out.append(
                ObjectRecord(
                    origin=obj.origin,
                    index=obj.index,
                    name=obj.name,
                    size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    mime_type=inner.mime_of(bytes(data[: inner.MAGIC_BYTES])) if data else None,
                    layers=obj.layers,
                    truncated=obj.truncated,
                    app=obj.app,
                    limits=limits,
                )
            )

    def _identity(self, identity: Identity) -> None:
        self.stats.app[f"identity.{identity.source}"] += 1
        self.out.append(identity)

    def _datagram(self, flow: Flow, d: int, seg: Segment) -> None:
        if not seg.payload:
            return
        origin = self._origin(flow, d, seg.ts, seg.index)  # once per datagram: identities, DNS and the scan share it
        if self.identities is not None and (flow.sport in IDENTITY_PORTS or flow.cport in IDENTITY_PORTS):
            self.identities.datagram(flow.cport, flow.sport, seg.payload, origin)
        if self.dns is not None and self._dns(flow, seg.payload, origin):
            return
        obj = ContentObject(origin=origin, data=seg.payload, index=flow.datagrams - 1)  # datagrams count from 0
        self.out.extend(self.det.scan(obj))

    def _dns(self, flow: Flow, payload: bytes, origin: NetworkOrigin) -> bool:
        """A DNS datagram goes to the tunnel tracker (True); on port 53 read leniently, elsewhere only when it
        parses strictly as a query or answer. Anything else is scanned as a datagram."""
        on_53 = flow.sport == 53 or flow.cport == 53
        if not on_53 and not (len(payload) >= 17 and payload[4:6] == b"\x00\x01" and not payload[2] & 0x78):
            return False
        try:
            msg = dns_message.parse(payload, strict=not on_53)
        except dns_message.DnsError:
            if on_53:
                self.stats.app["dns.anomaly.malformed"] += 1
            return False
        assert self.dns is not None
        self.dns.message(msg, origin)  # the tracker names its objects protocol dns itself
        return True
