"""Community ID v1 (corelight/community-id-spec): the flow hash Zeek and Suricata print."""

from __future__ import annotations

import base64
import hashlib
import struct


def community_id(src: bytes, dst: bytes, sport: int, dport: int, proto: int, seed: int = 0) -> str:
    """`1:` + base64(sha1(seed, ordered addresses, proto, 0, ordered ports)), as the spec orders them."""
    if (src, sport) > (dst, dport):
        src, dst, sport, dport = dst, src, dport, sport
    data = struct.pack("!H", seed) + src + dst + struct.pack("!BBHH", proto, 0, sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()
