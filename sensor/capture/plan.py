"""The planner: captures grouped into per-sensor chains, ordered by first packet, cut into segments.

As Arkime's `--sorted` and Suricata's directory mode do, the rotated files of one sensor are one
stream of packets; a segment of them can be scanned on its own (another process, another machine)
without losing the flows that cross its edges:

- it owns the flows whose first packet falls inside it, and follows them into the next
  `read_ahead` files for those flows only (no flow starts there);
- it first reads back the previous segment's last file, without scanning, to learn which flows
  were already open (owned by the previous segment) rather than picked up mid-stream;
- a flow still open at the end of the read-ahead is cut (end reason `segment`), never scanned twice.

Segments are whole files: a gzip-compressed capture cannot be entered in the middle anyway.
`group_by="file"` makes every file its own chain (no read-back or read-ahead): flows crossing a file
edge are then split, which is what per-file tools do.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

from sensor.capture.pcapfile import HEAD_BYTES, is_capture, read_packets
from sensor.errors import InputError
from sensor.stats import RunStats

DEFAULT_SEGMENT = 2_000_000_000


@dataclass(frozen=True, slots=True)
class CaptureFile:
    """A capture and what ordering needs of it."""

    path: str
    size: int
    first_ts: float | None  # the first record's time (None: an empty or unreadable capture)


@dataclass(frozen=True, slots=True)
class Segment:
    """A unit of work: files it owns, the file it reads back, the files it reads ahead into."""

    chain: str
    index: int
    files: tuple[str, ...]
    read_back: tuple[str, ...]
    read_ahead: tuple[str, ...]
    start_ts: float | None  # first packet of the segment's first file
    size: int

    @property
    def key(self) -> str:
        """The segment's identity across runs: its files (with their sizes), read-back and read-ahead."""
        parts = [*self.read_back, "|", *self.files, "|", *self.read_ahead, "|", str(self.size)]
        return hashlib.sha1("\x1f".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def first_timestamp(path: str) -> float | None:
    """The first record's time, reading only that record."""
    try:
        for pkt in read_packets(path, RunStats()):
            return pkt.ts
    except InputError:
        return None
    return None


def captures(paths: list[str]) -> list[str]:
    """Capture files under the paths (recognised by their magic, like scan), sorted by path."""
    out = set()
    for root in paths:
        walked = (os.path.join(d, n) for d, _, names in os.walk(root) for n in names)
        found = [root] if os.path.isfile(root) else walked
        for p in found:
            try:
                with open(p, "rb") as f:
                    if is_capture(f.read(HEAD_BYTES)):
                        out.add(p)
            except OSError:
                continue
    return sorted(out)


def chain_of(path: str, group_by: str) -> str:
    """The chain (sensor) a file belongs to: its folder, itself, or a regex group of its path."""
    if group_by == "file":
        return path
    if group_by == "dir":
        return os.path.dirname(path)
    if group_by.startswith("sensor:"):
        m = re.search(group_by[len("sensor:") :], path)
        return m.group(1) if m and m.groups() else (m.group(0) if m else os.path.dirname(path))
    raise ValueError(f"--group-by {group_by!r}: sensor:REGEX, dir or file")


def plan(
    paths: list[str], group_by: str = "dir", segment_size: int = DEFAULT_SEGMENT, read_ahead: int = 1
) -> list[Segment]:
    """Every segment of the captures under `paths`, chains in name order, segments in time order."""
    if group_by.startswith("sensor:"):
        try:
            re.compile(group_by[len("sensor:") :])
        except re.error as e:
            raise ValueError(f"--group-by {group_by!r}: {e}") from None
    chains: dict[str, list[CaptureFile]] = {}
    for p in captures(paths):
        chains.setdefault(chain_of(p, group_by), []).append(CaptureFile(p, os.path.getsize(p), first_timestamp(p)))
    out: list[Segment] = []
    for name in sorted(chains):
        files = sorted(chains[name], key=lambda c: (c.first_ts is None, c.first_ts or 0.0, c.path))
        cuts: list[list[CaptureFile]] = [[]]
        size = 0
        for c in files:
            if cuts[-1] and size >= segment_size:
                cuts.append([])
                size = 0
            cuts[-1].append(c)
            size += c.size
        start = 0
        for i, cut in enumerate(cuts):
            end = start + len(cut)
            single = group_by == "file"
            out.append(
                Segment(
                    chain=name,
                    index=i,
                    files=tuple(c.path for c in cut),
                    read_back=() if single or start == 0 else (files[start - 1].path,),
                    read_ahead=() if single else tuple(c.path for c in files[end : end + read_ahead]),
                    start_ts=cut[0].first_ts,
                    size=sum(c.size for c in cut),
                )
            )
            start = end
    return out


def parse_size(text: str) -> int:
    """2G, 500M, 64K or bytes (decimal units, as disk sizes are quoted)."""
    t = text.strip().upper().removesuffix("B")
    units = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    try:
        return int(float(t[:-1]) * units[t[-1]]) if t and t[-1] in units else int(t)
    except ValueError:
        raise ValueError(f"--segment-size {text!r}: expected 2G, 500M or bytes") from None


__all__ = ["DEFAULT_SEGMENT", "CaptureFile", "Segment", "captures", "chain_of", "first_timestamp", "parse_size", "plan"]
