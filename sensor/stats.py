"""Run statistics: everything counted rather than written as a finding."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sensor.model import LimitHit

INPUT_ERRORS = ("missing", "permission", "error")  # skip reasons that are the input's fault, not a policy


@dataclass
class RunStats:
    """Counters for one scan run; shown in the summary table and stored with the run."""

    files: int = 0
    bytes: int = 0
    opaque: int = 0  # staged files of no known type and near-uniform bytes (stagewatch.opaque records)
    objects: int = 0
    findings: int = 0
    alerts: int = 0
    candidates: Counter[str] = field(default_factory=Counter)  # by format
    rejected: Counter[str] = field(default_factory=Counter)  # candidates that did not verify
    verified: Counter[str] = field(default_factory=Counter)
    limits: Counter[str] = field(default_factory=Counter)  # by Limit name
    skipped: Counter[str] = field(default_factory=Counter)  # inputs skipped, by reason
    errors: Counter[str] = field(default_factory=Counter)  # by error kind
    # network input: what an analyst checks before trusting a result
    captures: int = 0
    packets: int = 0
    packet_bytes: int = 0
    truncated_records: int = 0  # captures cut off mid-record
    snapped: int = 0  # frames shorter on disk than on the wire (snaplen)
    undecoded: Counter[str] = field(default_factory=Counter)  # frames not decoded, by reason
    net: Counter[str] = field(default_factory=Counter)  # flows, streams, gaps, overlaps, evictions...
    app: Counter[str] = field(default_factory=Counter)  # per protocol: sessions, objects, anomalies
    host: Counter[str] = field(default_factory=Counter)  # host telemetry: files, records, bad records
    tuning: Counter[str] = field(default_factory=Counter)  # per suppression entry / threshold; content rules
    bridge: Counter[str] = field(default_factory=Counter)  # Zeek and Suricata outputs: logs, rows, files, flows

    def input_errors(self) -> int:
        """Inputs that could not be read whole: errors, inputs missing or unreadable, captures cut off."""
        return sum(self.errors.values()) + sum(self.skipped[r] for r in INPUT_ERRORS) + self.truncated_records

    def limit(self, hit: LimitHit) -> None:
        self.limits[str(hit.limit)] += 1

    def merge(self, other: RunStats) -> None:
        """Add another process's counts to these."""
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(value, Counter):
                mine.update(value)
            else:
                setattr(self, name, mine + value)

    def as_dict(self) -> dict[str, object]:
        """Plain form for the store and --jsonl run records."""
        return {
            "files": self.files,
            "bytes": self.bytes,
            "opaque": self.opaque,
            "objects": self.objects,
            "findings": self.findings,
            "alerts": self.alerts,
            "candidates": dict(self.candidates),
            "rejected": dict(self.rejected),
            "verified": dict(self.verified),
            "limits": dict(self.limits),
            "skipped": dict(self.skipped),
            "errors": dict(self.errors),
            "captures": self.captures,
            "packets": self.packets,
            "packet_bytes": self.packet_bytes,
            "truncated_records": self.truncated_records,
            "snapped": self.snapped,
            "undecoded": dict(self.undecoded),
            "net": dict(self.net),
            "app": dict(self.app),
            "host": dict(self.host),
            "tuning": dict(self.tuning),
        }
