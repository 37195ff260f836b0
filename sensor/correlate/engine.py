"""The join: outbound transfers, staged files and host-rule hits on one host, close in time, into incidents.

Anchors are the strong facts: a verified member leaving home_net (or copied by SMB between inside hosts:
lateral tool transfer, T1570), a compressed file staged on
disk, an encrypted upload whose size fits a staged file. Each anchor gathers what links to it,
strongest first (DESIGN.md, issue 6): the staged file's SHA-256 equals the member's; a Sysmon 3
connection is the very flow (the process is then known); the staged file's name is the transfer's;
an encrypted flow's byte count fits a staged file's size; host-rule hits on the host before the
transfer. Anchors that share evidence merge. An incident needs two independent kinds of evidence
(host rule, staged file, network); anything less stays a finding.
"""

from __future__ import annotations

import bisect
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from sensor.correlate.hosts import HostMap, short
from sensor.correlate.inputs import FlowIn, RuleHit, Seen, Staged, Transfer, event_ref
from sensor.flow.direction import endpoint_text
from sensor.model import Evidence, HostEvent, Incident
from sensor.names import stable_id

INCIDENT_NS = uuid.UUID("9e2c7b14-6a3d-5f80-b1c2-4d5e6f7a8b9c")
WINDOW = 15 * 60.0
TLS_PORTS = frozenset({443, 465, 563, 636, 853, 990, 992, 993, 995, 8443})
# An encrypted upload is the file plus framing: TLS adds 5-byte headers and a 16-byte AEAD tag (up to
# 29 bytes with TLS 1.2's explicit nonce) per 16 KiB record (<= 0.2%), the handshake and an HTTP
# request head add a few KiB. So: size <= bytes_out <= size * 1.005 + 16 KiB. A tighter bound misses
# multipart wrappers; a looser one matches unrelated uploads of similar size.
TLS_RATIO, TLS_SLACK = 1.005, 16 * 1024
POINTS = {
    "same_sha256": 40,
    "process_connection": 30,
    "same_name": 20,
    "created_by_process": 20,
    "size_fits_encrypted_flow": 15,
    "host_rule_compress": 20,
    "host_rule_unknown": 5,
    "staged_alert": 10,
    "outbound_member": 10,
    "lateral_member": 10,
}
EXFIL = {"ftp": "T1048", "ftp-data": "T1048", "smtp": "T1048", "smb": "T1048", "dns": "T1048.003", "http": "T1567",
         None: "T1041"}  # fmt: skip
CAMPAIGN_MAX_HOSTS = 5  # a hash staged on more hosts than this is a public file, not one campaign's
LATERAL = frozenset({"smb"})  # protocols whose member moving between inside hosts is lateral tool transfer (T1570)


def _base(path: str | None) -> str:
    return (path or "").replace("\\", "/").rsplit("/", 1)[-1].lower()


@dataclass
class Group:
    """An incident being built."""

    host: str | None
    anchors: set[str] = field(default_factory=set)  # the alerts (or encrypted flows) the incident was built from
    evidence: dict[str, Evidence] = field(default_factory=dict)
    kinds: set[str] = field(default_factory=set)
    reasons: dict[str, int] = field(default_factory=dict)
    process: tuple[int, str | None, str | None, int | None, str | None] = (0, None, None, None, None)
    files: set[str] = field(default_factory=set)
    dests: set[str] = field(default_factory=set)
    techniques: set[str] = field(default_factory=lambda: {"T1560.002"})
    ips: set[str] = field(default_factory=set)
    named_by: str | None = None  # what tied the host's address to its name (host map, telemetry, DHCP...)

    def add(self, ev: Evidence, kind: str | None, reason: str) -> None:
        self.evidence.setdefault(ev.ref, ev)
        if kind:
            self.kinds.add(kind)
        self.reasons[reason] = POINTS[reason]

    def attribute(self, rank: int, image: str | None, cmd: str | None, pid: int | None, user: str | None) -> None:
        """Keep the process named by the strongest link (connection > file creation > rule hit)."""
        if image and rank > self.process[0]:
            self.process = (rank, image, cmd, pid, user)

    def merge(self, other: Group) -> None:
        self.anchors |= other.anchors
        self.evidence.update(other.evidence)
        self.kinds |= other.kinds
        self.reasons.update(other.reasons)
        self.attribute(*other.process)
        self.files |= other.files
        self.dests |= other.dests
        self.techniques |= other.techniques
        self.ips |= other.ips
        self.named_by = self.named_by or other.named_by


class Correlator:
    """Joins one store's evidence; `window` seconds either side of an anchor."""

    def __init__(self, hosts: HostMap, window: float = WINDOW, hash_link_min_size: int = 512) -> None:
        self.hosts = hosts
        self.window = window
        self.hash_link_min_size = hash_link_min_size
        self.inbound: set[str] = set()  # member hashes seen coming in: public files, joined only within the window

    def run(
        self,
        transfers: Iterable[Transfer],
        staged: Iterable[Staged],
        hits: Iterable[RuleHit],
        events: Iterable[HostEvent],
        flows: Iterable[FlowIn] = (),
        seen: Iterable[Seen] = (),
    ) -> list[Incident]:
        transfers, staged, hits = list(transfers), list(staged), list(hits)
        seen_sha: dict[str, list[Seen]] = defaultdict(list)
        seen_name: dict[tuple[str, int], list[Seen]] = defaultdict(list)
        for x in seen:
            if x.direction == "outbound":
                if x.sha256:
                    seen_sha[x.sha256].append(x)
                if x.name:
                    seen_name[(_base(x.name), x.size)].append(x)
        self.inbound = {t.sha256 for t in transfers if t.direction == "inbound"}
        conns: dict[tuple[str, int, str, int], list[HostEvent]] = defaultdict(list)
        creates: dict[tuple[str | None, str], list[HostEvent]] = defaultdict(list)
        for e in events:
            if e.action == "network" and e.net is not None:
                n = e.net
                conns[(n.src, n.sport, n.dst, n.dport)].append(e)
            elif e.action == "file_create" and e.target_file:
                creates[(short(e.host), _base(e.target_file))].append(e)
        by_sha: dict[str, list[Staged]] = defaultdict(list)
        by_host: dict[str | None, list[Staged]] = defaultdict(list)
        for s in staged:
            by_sha[s.sha256].append(s)
            by_host[short(s.host)].append(s)
        hits_by_host: dict[str | None, list[RuleHit]] = defaultdict(list)
        for h in hits:
            hits_by_host[self.hosts.host_of(h.host, h.ips[0] if h.ips else None, h.ts)].append(h)
        for lst in hits_by_host.values():
            lst.sort(key=lambda h: h.ts)

        groups: list[Group] = []
        for t in transfers:
            if (t.direction == "outbound" and t.kind == "alert") or (
                t.direction == "internal" and t.protocol in LATERAL
            ):
                groups.append(self._transfer(t, conns, creates, by_sha, by_host, hits_by_host))
        used = {ref for g in groups for ref in g.evidence}
        for s in staged:
            if s.kind == "alert" and s.ref not in used:
                g = self._staged(s, creates, hits_by_host)
                self._seen(g, s, seen_sha, seen_name)
                groups.append(g)
        for f in flows:
            if f.direction == "outbound" and (f.sni or f.dport in TLS_PORTS):
                g = self._encrypted(f, by_host, hits_by_host)
                if g is not None:
                    groups.append(g)
        return self._related([self._incident(g) for g in _merged(groups) if len(g.kinds) >= 2], staged)

    def _related(self, incidents: list[Incident], staged: list[Staged]) -> list[Incident]:
        """Incidents on different hosts that share a member's SHA-256 (staged on one, copied to another, sent
        out from there) are one campaign. A hash seen coming in, or staged on many hosts, is a public file:
        it links nothing."""
        holders: dict[str, set[str | None]] = defaultdict(set)
        for s in staged:
            holders[s.sha256].add(short(s.host))
        by_sha: dict[str, set[int]] = defaultdict(set)
        for n, inc in enumerate(incidents):
            for e in inc.evidence:
                if e.sha256 and e.kind in ("network", "staged_file"):
                    by_sha[e.sha256].add(n)
        parent = list(range(len(incidents)))

        def root(n: int) -> int:
            while parent[n] != n:
                parent[n] = parent[parent[n]]
                n = parent[n]
            return n

        links: dict[int, set[str]] = defaultdict(set)
        for sha, members in by_sha.items():
            hosts = {short(incidents[n].host) for n in members}
            if len(hosts) < 2 or sha in self.inbound or len(holders[sha]) > CAMPAIGN_MAX_HOSTS:
                continue
            first, *rest = sorted(members)
            for n in rest:
                parent[root(n)] = root(first)
            for n in members:
                links[n].add(sha)
        campaigns: dict[int, list[int]] = defaultdict(list)
        for n in range(len(incidents)):
            campaigns[root(n)].append(n)
        out = []
        for n, inc in enumerate(incidents):
            others = [incidents[m].incident_id for m in campaigns[root(n)] if m != n]
            if others:
                inc = replace(inc, related=tuple(sorted(others)), related_sha256=tuple(sorted(links[n])))
            out.append(inc)
        return out

    # -- anchors ------------------------------------------------------------------------------
    def _transfer(self, t, conns, creates, by_sha, by_host, hits_by_host) -> Group:  # type: ignore[no-untyped-def]
        host = self.hosts.host_of(None, t.src, t.ts)
        g = Group(host, {t.ref})
        g.named_by = self.hosts.named_by(t.src, t.ts)
        g.ips.add(t.src)
        g.dests.add(endpoint_text(t.dst, t.dport))
        lateral = t.direction == "internal"
        g.techniques.add("T1570" if lateral else EXFIL.get(t.protocol, "T1048"))
        label = f"{t.protocol or 'tcp'} {endpoint_text(t.src, t.sport)} > {endpoint_text(t.dst, t.dport)}"
        g.add(
            Evidence("network", t.ref, t.ts, f"{label}: {t.size}-byte member", t.sha256, t.source),
            "network",
            "lateral_member" if lateral else "outbound_member",
        )
        if t.name:
            g.files.add(t.name)
        for c in conns.get((t.src, t.sport, t.dst, t.dport), ()):
            if abs(c.ts - t.ts) <= self.window:
                g.add(_event_evidence(c, "connection to the flow that carried the member"), None, "process_connection")
                g.attribute(3, c.image, c.command_line, c.pid, c.user)
                g.host = g.host if g.host and g.host != t.src else short(c.host) or g.host
        host = g.host
        # a large member's hash names one file: joined at any distance in time (files are collected later)
        anytime = t.size >= self.hash_link_min_size and t.sha256 not in self.inbound
        for s in by_sha.get(t.sha256, ()):
            if anytime or abs(s.ts - t.ts) <= self.window:
                g.add(_staged_evidence(s, t.ts), "staged_file", "same_sha256")
                g.files.add(s.path)
        name = _base(t.name)
        if name:
            for s in by_host.get(host, ()):
                if _base(s.path) == name and abs(s.ts - t.ts) <= self.window:
                    g.add(_staged_evidence(s), "staged_file", "same_name")
                    g.files.add(s.path)
            for c in creates.get((host, name), ()):
                if t.ts - self.window <= c.ts <= t.ts + 60:
                    g.add(_event_evidence(c, f"created {c.target_file}"), "staged_file", "created_by_process")
                    g.attribute(2, c.image, c.command_line, c.pid, c.user)
                    g.files.add(c.target_file or name)
        self._hits(g, host, t.ts, hits_by_host)
        return g

    def _staged(self, s: Staged, creates, hits_by_host) -> Group:  # type: ignore[no-untyped-def]
        g = Group(short(s.host), {s.ref})
        g.add(_staged_evidence(s), "staged_file", "staged_alert")
        g.files.add(s.path)
        for c in creates.get((g.host, _base(s.path)), ()):
            if abs(c.ts - s.ts) <= self.window:
                g.add(_event_evidence(c, f"created {c.target_file}"), None, "created_by_process")
                g.attribute(2, c.image, c.command_line, c.pid, c.user)
        self._hits(g, g.host, s.ts, hits_by_host)
        return g

    def _seen(
        self, g: Group, s: Staged, by_sha: dict[str, list[Seen]], by_name: dict[tuple[str, int], list[Seen]]
    ) -> None:
        """Files Zeek or Suricata saw leave without keeping their bytes: the staged file's SHA-256 (at any distance
        in time, for a file large enough to name one), or its name and size from the same host within the window."""
        links = [(x, "same_sha256") for x in by_sha.get(s.sha256, ()) if s.size >= self.hash_link_min_size
                 or abs(x.ts - s.ts) <= self.window]  # fmt: skip
        links += [
            (x, "same_name")
            for x in by_name.get((_base(s.path), s.size), ())
            if abs(x.ts - s.ts) <= self.window and self.hosts.host_of(None, x.src, x.ts) == g.host
        ]
        for x, reason in links:
            what = f"{x.sensor} saw {x.protocol or 'a transfer'} {x.src} > {endpoint_text(x.dst, x.dport)}: "
            what += f"{x.name or 'a file'} ({x.size} bytes, not kept)"
            g.add(Evidence("network", x.ref, x.ts, what, x.sha256, x.source), "network", reason)
            g.dests.add(endpoint_text(x.dst, x.dport))
            g.techniques.add(EXFIL.get(x.protocol, "T1048"))

    def _encrypted(self, f: FlowIn, by_host, hits_by_host) -> Group | None:  # type: ignore[no-untyped-def]
        host = self.hosts.host_of(None, f.src, f.start)
        fits = [
            s
            for s in by_host.get(host, ())
            if s.size <= f.bytes_out <= s.size * TLS_RATIO + TLS_SLACK and abs(s.ts - f.start) <= self.window
        ]
        if not fits:
            return None
        g = Group(host, {f.ref})
        g.ips.add(f.src)
        g.dests.add(endpoint_text(f.dst, f.dport))
        g.techniques.add("T1567" if f.dport == 443 else "T1048")
        flow = f"{endpoint_text(f.src, f.sport)} > {endpoint_text(f.dst, f.dport)}"
        what = f"encrypted flow {flow} ({f.sni or 'no SNI'}), {f.bytes_out} bytes out"
        g.add(Evidence("flow", f.ref, f.start, what), "network", "size_fits_encrypted_flow")
        for s in fits:
            g.add(_staged_evidence(s), "staged_file", "staged_alert")
            g.files.add(s.path)
        self._hits(g, host, f.start, hits_by_host)
        return g

    def _hits(self, g: Group, host: str | None, ts: float, hits_by_host: dict[str | None, list[RuleHit]]) -> None:
        """Host-rule hits on the host from `window` before the anchor to a minute after it."""
        hits = hits_by_host.get(host, [])
        lo = bisect.bisect_left([h.ts for h in hits], ts - self.window)
        for h in hits[lo:]:
            if h.ts > ts + 60:
                break
            if h.operation == "decompress":
                continue  # unpacking a loader is not staging data (it is still a host finding)
            kind = "host_rule" if h.operation == "compress" else None
            what = f"{h.label} ({h.operation}): {h.image or ''} {(h.command_line or h.target_file or '')[:200]}"
            g.add(Evidence("host_rule", h.ref, h.ts, what.strip(), source=h.source), kind, f"host_rule_{h.operation}")
            g.attribute(1, h.image, h.command_line, h.pid, h.user)
            g.ips |= set(h.ips)

    # -- output -------------------------------------------------------------------------------
    def _incident(self, g: Group) -> Incident:
        ev = sorted(g.evidence.values(), key=lambda e: (e.ts, e.ref))
        host = g.host
        display = self.hosts.display.get(host or "", host)
        ips = set(g.ips) | self.hosts.ips_of.get(host or "", set())
        _, image, cmd, pid, user = g.process
        return Incident(
            # From the first anchor, not the whole evidence list: correlating again with another window (more
            # or fewer host events joined) re-derives the same incident, which replaces it in the store.
            incident_id=stable_id(INCIDENT_NS, min(g.anchors)),
            host=display,
            host_ips=tuple(sorted(ips)),
            start=ev[0].ts,
            end=ev[-1].ts,
            kinds=tuple(sorted(g.kinds)),
            score=min(100, sum(g.reasons.values())),
            reasons=tuple(sorted(g.reasons, key=lambda r: -POINTS[r])),
            techniques=tuple(sorted(g.techniques)),
            process_image=image,
            process_command_line=cmd,
            process_pid=pid,
            user=user,
            files=tuple(sorted(g.files)),
            destinations=tuple(sorted(g.dests)),
            evidence=tuple(ev),
            host_named_by=g.named_by,
        )


def _staged_evidence(s: Staged, transfer_ts: float | None = None) -> Evidence:
    """A staged file as evidence; beside a transfer, how long before (or after) it the file's time was."""
    when = "" if transfer_ts is None else f", {_apart(transfer_ts - s.ts)}"
    return Evidence("staged_file", s.ref, s.ts, f"staged {s.path} ({s.size} bytes){when}", s.sha256, s.path)


def _apart(seconds: float) -> str:
    """'3 d 4 h before the transfer', '12 min after the transfer'."""
    side = "before" if seconds >= 0 else "after"
    left = abs(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if left >= size and len(parts) < 2:
            parts.append(f"{int(left // size)} {unit}")
            left %= size
    return f"{' '.join(parts) or f'{int(left)} s'} {side} the transfer"


def _event_evidence(e: HostEvent, what: str) -> Evidence:
    proc = f"{e.image or '?'} (pid {e.pid})" if e.image else "a process"
    return Evidence("host_event", event_ref(e), e.ts, f"{proc}: {what}", source=f"{e.source}#{e.record_id}")


def _merged(groups: list[Group]) -> list[Group]:
    """Groups on the same host that share a piece of evidence are one incident."""
    owner: dict[tuple[str | None, str], int] = {}
    parent = list(range(len(groups)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, g in enumerate(groups):
        for ref in g.evidence:
            j = owner.setdefault((g.host, ref), i)
            if j != i:
                parent[find(i)] = find(j)
    out: dict[int, Group] = {}
    for i, g in enumerate(groups):
        root = find(i)
        if root in out:
            out[root].merge(g)
        else:
            out[root] = g
    return list(out.values())


__all__ = ["TLS_RATIO", "TLS_SLACK", "WINDOW", "Correlator"]
