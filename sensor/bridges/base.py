"""What every bridge gives the pipeline: files another sensor saw (with or without their bytes) and flows it
logged; and the rules they share for addresses, direction and community IDs."""

from __future__ import annotations

import gzip
import ipaddress
import json
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sensor.flow.community_id import community_id
from sensor.flow.direction import HomeNet
from sensor.model import AppMeta, Buffer, FlowRecord, NetworkOrigin

PROTO = {"tcp": 6, "udp": 17, "icmp": 1, "sctp": 132}


@dataclass(frozen=True, slots=True)
class SeenFile:
    """A file another sensor logged on a connection: where it went, what its logs say, where its bytes are."""

    origin: NetworkOrigin
    name: str | None
    size: int | None  # bytes the sensor saw (total where it knew it)
    truncated: bool  # the sensor cut it or missed bytes of it
    app: AppMeta  # protocol fields and app.sensor (the sensor's ids, hashes and extracted file)


Bridged = SeenFile | FlowRecord


def packed(ip: str) -> bytes | None:
    """An address's bytes; None for what is not one (Zeek writes '-' or '(empty)' for unknowns)."""
    try:
        return ipaddress.ip_address(ip).packed
    except ValueError:
        return None


def cid(src: str, sport: int, dst: str, dport: int, transport: str) -> str:
    """The connection's community ID, computed where the sensor did not log one."""
    a, b = packed(src), packed(dst)
    if a is None or b is None or len(a) != len(b):
        return ""
    return community_id(a, b, sport, dport, PROTO.get(transport, 0))


def direction(home: HomeNet, sender: str, receiver: str, local: tuple[bool | None, bool | None]) -> str:
    """ECS network.direction of bytes from `sender` to `receiver`: from the sensor's own local flags (Zeek's
    local_orig/local_resp, in sender, receiver order) where it logged them, else from home_net."""
    s_in, r_in = local
    if s_in is None or r_in is None:
        a, b = packed(sender), packed(receiver)
        if a is None or b is None:
            return "unknown"
        return home.direction(a, b)
    return {(True, False): "outbound", (False, True): "inbound", (True, True): "internal"}.get((s_in, r_in), "external")


def lines(path: str) -> Iterator[bytes]:
    """A log's lines, gzip-compressed (rotated) or not."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if gz else open(path, "rb") as f:  # type: ignore[call-overload]
        yield from f


def json_objects(path: str) -> Iterator[dict[str, Any] | None]:
    """A JSON-lines log's objects; None for a line that is not a JSON object (blank lines skipped)."""
    for raw in lines(path):
        line = raw.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            yield None
            continue
        yield rec if isinstance(rec, dict) else None


def read_extracted(path: str) -> Buffer:
    """An extracted file's bytes (mapped, not read, when large)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if size >= 1 << 20:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return f.read()


def address(text: object) -> str | None:
    """A mail address as the envelope gives it, without the angle brackets sensors keep (`<bob@x>`)."""
    if text is None:
        return None
    value = str(text).strip().strip("<>").strip()
    return value or None


def first(values: object) -> str | None:
    """The first of a Zeek set/vector value (or the value itself)."""
    if isinstance(values, tuple):
        return str(values[0]) if values else None
    return None if values is None else str(values)


__all__ = [
    "PROTO",
    "Bridged",
    "SeenFile",
    "address",
    "cid",
    "direction",
    "first",
    "json_objects",
    "lines",
    "packed",
    "read_extracted",
]
