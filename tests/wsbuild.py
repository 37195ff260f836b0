"""Craft WebSocket conversations (RFC 6455, RFC 7692) for the tests: the Upgrade handshake, frames as a client
(masked) or a server writes them, and permessage-deflate messages compressed as zlib-based endpoints do (a raw
deflate stream flushed with Z_SYNC_FLUSH per message, its trailing 00 00 FF FF removed; with context takeover
one compressor for the whole connection, without it a new one per message)."""

from __future__ import annotations

import base64
import hashlib
import random
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B65"
KEY = base64.b64encode(b"stagewatch-key-1")


def upgrade_request(path: str = "/ws", host: str = "x.example", deflate: bool = False) -> bytes:
    ext = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if deflate else b""
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n".encode()
        + b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n" + ext + b"\r\n"
    )  # fmt: skip


def upgrade_response(extensions: str | None = None) -> bytes:
    accept = base64.b64encode(hashlib.sha1(KEY + GUID).digest())
    ext = f"Sec-WebSocket-Extensions: {extensions}\r\n".encode() if extensions else b""
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + b"Sec-WebSocket-Accept: " + accept + b"\r\n" + ext + b"\r\n"
    )  # fmt: skip


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False, mask: int | None = None) -> bytes:
    """One frame; `mask` seeds the masking key (a client's frames), None for an unmasked (server) frame."""
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    n = len(payload)
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    key = random.Random(mask).randbytes(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class Compressor:
    """permessage-deflate's sender side: `message(data)` gives the payload of one compressed message."""

    def __init__(self, takeover: bool = True, window_bits: int = 15) -> None:
        self.takeover, self.window_bits = takeover, window_bits
        self.z = zlib.compressobj(6, zlib.DEFLATED, -window_bits)

    def message(self, data: bytes) -> bytes:
        if not self.takeover:
            self.z = zlib.compressobj(6, zlib.DEFLATED, -self.window_bits)
        out = self.z.compress(data) + self.z.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]
