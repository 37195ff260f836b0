"""WebSocket after an HTTP Upgrade (RFC 6455), with permessage-deflate (RFC 7692): frames to messages.

Each direction's bytes are frames: a client masks its frames (XOR with a per-frame key) and a server does not,
but either may do either (a tool running both ends need not follow the RFC), so the MASK bit of each frame is
honoured. A message is one text or binary frame or several (continuation frames, FIN on the last) with control
frames (ping, pong, close) between them. With permessage-deflate negotiated, RSV1 on a message's first frame
says it is compressed: its payload, with the 00 00 FF FF the sender stripped put back, is raw deflate, and with
context takeover (the default) each message may refer back into the ones before it.

After lost bytes (a gap) the reader takes up again at the next byte when a plausible frame header sits there;
with context takeover every later compressed message is then marked truncated (its history is gone, and
references into it decode as zeros). A compressed message of which nothing inflates is kept as it was sent.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10
DATA_OPCODES = (TEXT, BINARY)
CONTROL_OPCODES = (CLOSE, PING, PONG)
PARAM = re.compile(r"([A-Za-z_]+)\s*(?:=\s*\"?(\d+)\"?)?")


@dataclass(frozen=True, slots=True)
class Deflate:
    """permessage-deflate as the 101 response set it for one direction's sender."""

    enabled: bool = False
    takeover: bool = True  # the sender keeps its window across messages
    window_bits: int = 15


def negotiate(extensions: str | None) -> tuple[Deflate, Deflate]:
    """(client-to-server, server-to-client) compression from the 101 response's Sec-WebSocket-Extensions."""
    for offer in (extensions or "").split(","):
        parts = [p.strip() for p in offer.split(";")]
        if parts[0].lower() != "permessage-deflate":
            continue
        params = {m.group(1).lower(): m.group(2) for p in parts[1:] if (m := PARAM.fullmatch(p))}
        client = Deflate(True, "client_no_context_takeover" not in params, _bits(params, "client_max_window_bits"))
        server = Deflate(True, "server_no_context_takeover" not in params, _bits(params, "server_max_window_bits"))
        return client, server
    return Deflate(), Deflate()


@dataclass(frozen=True, slots=True)
class Message:
    """One reassembled message: its stream offset (first frame), kind, bytes as the receiver reads them."""

    offset: int
    text: bool
    data: bytes
    compressed: bool
    truncated: bool
    frames: int
    anomalies: tuple[str, ...] = ()


def _bits(params: dict[str, str | None], name: str) -> int:
    value = params.get(name)
    return int(value) if value and value.isdigit() and 8 <= int(value) <= 15 else 15


class NotFrames(ValueError):
    """The bytes are not (or no longer) WebSocket frames: the direction is scanned raw from `offset`."""

    def __init__(self, offset: int, why: str) -> None:
        super().__init__(why)
        self.offset = offset
        self.why = why


def _unmask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return payload
    n = len(payload)
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


@dataclass(slots=True)
class Reader:
    """Frames of one direction to messages, bounded by `max_message` bytes a message (more is cut, counted)."""

    deflate: Deflate
    client: bool  # the client's direction (its frames should be masked)
    max_message: int
    max_output: int
    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    start: int = -1  # stream offset of the message being assembled (-1: none)
    text: bool = False
    compressed: bool = False
    frames: int = 0
    cut: bool = False  # the message outgrew max_message
    closed: bool = False
    lost: bool = False  # a gap was crossed: with context takeover, the window's history is gone
    inflater: zlib._Decompress | None = None  # type: ignore[name-defined]
    capped: bool = False  # a message inflated past max_output (a Limit for the caller to count)
    anomalies: list[str] = field(default_factory=list)

    def feed(self, data: bytes | bytearray, base: int, ended: bool) -> tuple[int, list[Message], NotFrames | None]:
        """Parse whole frames from `data` (stream offset `base`): (bytes used, messages completed, and why the
        bytes stopped being frames, if they did; the messages before that point are kept)."""
        out: list[Message] = []
        try:
            pos = self._frames(data, base, out, ended)
        except NotFrames as e:
            if self.start >= 0:
                out.append(self._finish(truncated=True))
            return e.offset - base, out, e
        if ended and self.start >= 0:
            out.append(self._finish(truncated=True))
        return pos, out, None

    def _frames(self, data: bytes | bytearray, base: int, out: list[Message], ended: bool) -> int:
        pos = 0
        n = len(data)
        while pos < n and not self.closed:
            if n - pos < 2:
                break
            b0, b1 = data[pos], data[pos + 1]
            opcode, fin, rsv = b0 & 0x0F, b0 & 0x80, b0 & 0x70
            length, head = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
            masked = b1 & 0x80
            if opcode not in DATA_OPCODES + CONTROL_OPCODES + (CONTINUATION,) or rsv & 0x30:
                raise NotFrames(base + pos, "bad_frame")
            if rsv & 0x40 and not (self.deflate.enabled and opcode in DATA_OPCODES):
                raise NotFrames(base + pos, "bad_frame")
            if opcode in CONTROL_OPCODES and (length > 125 or not fin):
                raise NotFrames(base + pos, "bad_frame")
            if length >= 1 << 62:
                raise NotFrames(base + pos, "bad_frame")
            end = pos + head + (4 if masked else 0) + length
            if end > n:
                if length > self.max_message and opcode != CONTINUATION and self.start < 0:
                    raise NotFrames(base + pos, "frame_too_long")
                if ended and opcode not in CONTROL_OPCODES:
                    self._cut_frame(bytes(data[pos:n]), head, bool(masked), opcode, base + pos, rsv)
                    return n
                break
            if self.client and not masked and "unmasked_client_frame" not in self.anomalies:
                self.anomalies.append("unmasked_client_frame")
            key = bytes(data[pos + head : pos + head + 4]) if masked else b""
            payload = bytes(data[end - length : end])
            if masked:
                payload = _unmask(payload, key)
            if opcode == CLOSE:
                self.closed = True
            elif opcode in DATA_OPCODES:
                if self.start >= 0:
                    self.anomalies.append("unfinished_message")  # a new message before the last one's FIN
                    out.append(self._finish(truncated=True))
                self.start, self.text, self.compressed = base + pos, opcode == TEXT, bool(rsv & 0x40)
                self._add(payload)
                if fin:
                    out.append(self._finish(truncated=False))
            elif opcode == CONTINUATION:
                if self.start < 0:
                    self.anomalies.append("orphan_continuation")
                else:
                    self._add(payload)
                    if fin:
                        out.append(self._finish(truncated=False))
            pos = end
        return pos

    def _cut_frame(self, frame: bytes, head: int, masked: bool, opcode: int, offset: int, rsv: int) -> None:
        """The stream ended inside a data frame: what of its payload came is the (truncated) message's end."""
        key = frame[head : head + 4] if masked else b""
        payload = frame[head + (4 if masked else 0) :]
        if masked and len(key) == 4:
            payload = _unmask(payload, key)
        elif masked:
            payload = b""
        if opcode in DATA_OPCODES and self.start < 0:
            self.start, self.text, self.compressed = offset, opcode == TEXT, bool(rsv & 0x40)
        if self.start >= 0:
            self._add(payload)

    def gap(self) -> Message | None:
        """Bytes were lost: the message being assembled ends truncated; the window's history is gone."""
        self.lost = self.lost or (self.deflate.enabled and self.deflate.takeover)
        # the window's history is gone: references into it come out as zeros (the message is marked truncated)
        # rather than stopping the decode, so what the later messages hold themselves is still read
        self.inflater = zlib.decompressobj(-15, zdict=bytes(32768)) if self.lost else None
        return self._finish(truncated=True) if self.start >= 0 else None

    def _add(self, payload: bytes) -> None:
        self.frames += 1
        room = self.max_message - self.size
        if len(payload) > room:
            self.cut = True
            payload = payload[: max(room, 0)]
        if payload:
            self.parts.append(payload)
            self.size += len(payload)

    def _finish(self, truncated: bool) -> Message:
        data = b"".join(self.parts)
        anomalies = list(self.anomalies)
        compressed = self.compressed
        if compressed:
            inflated, complete = self._inflate(data, truncated or self.cut)
            if inflated or not data:
                data = inflated
            else:
                anomalies.append("inflate_failed")  # nothing came out: the payload is scanned as it was sent
                compressed = False
            truncated = truncated or not complete or self.lost
        if self.cut:
            anomalies.append("message_too_long")
        msg = Message(self.start, self.text, data, compressed, truncated or self.cut, self.frames, tuple(anomalies))
        self.parts, self.size, self.start, self.frames, self.cut, self.anomalies = [], 0, -1, 0, False, []
        return msg

    def _inflate(self, data: bytes, partial: bool) -> tuple[bytes, bool]:
        """The message's raw deflate with its stripped 00 00 FF FF restored; (bytes, decoded whole). Decoded in
        pieces so what comes out before an error (a reference into history lost in a gap) is kept."""
        takeover = self.deflate.takeover
        inflater = self.inflater if takeover and self.inflater is not None else zlib.decompressobj(-15)
        data += b"" if partial else b"\x00\x00\xff\xff"
        out = bytearray()
        complete = True
        try:
            for i in range(0, len(data), 16384):
                out += inflater.decompress(data[i : i + 16384], self.max_output - len(out) + 1)
                if len(out) > self.max_output or inflater.unconsumed_tail:
                    self.capped = True
                    complete = False
                    break
        except zlib.error:
            complete = False
            inflater = None  # a broken stream has no usable window for the next message
        self.inflater = inflater if takeover else None
        return bytes(out[: self.max_output]), complete


__all__ = ["Deflate", "Message", "NotFrames", "Reader", "negotiate"]
