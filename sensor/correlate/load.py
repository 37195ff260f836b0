"""Everything the correlator needs, read from one store."""

from __future__ import annotations

from dataclasses import dataclass

from sensor.correlate.hosts import HostMap
from sensor.correlate.identities import Claims
from sensor.correlate.inputs import (
    FlowIn,
    RuleHit,
    Seen,
    Staged,
    Transfer,
    flow_of,
    hit_of,
    identity_of,
    seen_of,
    staged_of,
    transfer_of,
)
from sensor.model import HostEvent
from sensor.store.db import FindingStore


@dataclass
class Loaded:
    """The store's evidence, typed for the join."""

    transfers: list[Transfer]
    staged: list[Staged]
    hits: list[RuleHit]
    events: list[HostEvent]  # connections and file creations: what ties a process to a flow or a file
    flows: list[FlowIn]
    seen: list[Seen]  # files Zeek or Suricata logged without keeping their bytes


def load(store: FindingStore, hosts: HostMap) -> Loaded:
    """Read findings, host findings, the joining host events and flows; teach `hosts` the name/IP pairs."""
    transfers: list[Transfer] = []
    staged: list[Staged] = []
    for rec in store.findings():
        if "suppressed" in rec.get("stagewatch", {}):
            continue  # an analyst's suppression entry covers it: it must not build an incident either
        t = transfer_of(rec)
        if t is not None:
            transfers.append(t)
            continue
        s = staged_of(rec)
        if s is not None:
            staged.append(s)
    hits = [hit_of(r) for r in store.host_finding_records() if "suppressed" not in r.get("stagewatch", {})]
    events = store.host_events("network") + store.host_events("file_create")
    hosts.learn(events)
    for h in hits:
        hosts.add(h.host, h.ips, "host telemetry")
    hosts.claims = Claims(identity_of(r) for r in store.identity_records())
    flows = [flow_of(rec, ref) for ref, rec in store.flow_records()]
    seen = [seen_of(rec) for rec in store.seen_object_records()]
    return Loaded(transfers, staged, hits, events, flows, seen)


__all__ = ["Loaded", "load"]
