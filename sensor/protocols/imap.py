"""IMAP (RFC 9051, 3501): messages saved by APPEND (a draft the attacker reads elsewhere) and read down by FETCH.

Both directions are lines, any of which may end in a literal announcing N bytes that follow: `{N}` (the
client waits for the server's "+" before sending them), `{N+}` (LITERAL+, sent at once) or `~{N}` (BINARY).
An APPEND's literal is a whole message, parsed by sensor/content/mail.py (one object per MIME part, named by
its filename); so is a FETCH response's BODY[], BODY.PEEK[], BINARY[] or RFC822 literal. Another FETCH
literal (a section: BODY[2], BODY[TEXT]) is an object as it is. Other literals (a LOGIN password, a search
string) are read past. STARTTLS accepted by the server makes the rest ciphertext: counted, not parsed; so is
COMPRESS DEFLATE (RFC 4978), whose streams are counted and scanned raw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

from sensor.content import mail
from sensor.model import AppMeta
from sensor.protocols.base import Wire, discard_ciphertext, extractors

MAX_LINE = 64 * 1024
LITERAL = re.compile(rb"~?\{(\d{1,12})(\+|-)?\}$")
COMMAND = re.compile(
    rb"[!#$&'*+,.0-9:;<=>?@A-Z^_`a-z|}~-]{1,64} (?i:CAPABILITY|LOGIN|AUTHENTICATE|STARTTLS|ID|NOOP|SELECT|EXAMINE"
    rb"|APPEND|LIST|LSUB|STATUS|ENABLE|LOGOUT|CREATE|FETCH|UID|SEARCH)[ \r\n]"
)
MESSAGE_ITEM = re.compile(rb"(?i)(?:BODY(?:\.PEEK)?\[\]|BINARY(?:\.PEEK)?\[\]|RFC822)(?:<\d+>)?[ \t]*$")
SECTION_ITEM = re.compile(rb"(?i)(?:BODY|BINARY)(?:\.PEEK)?\[[^\]]*\](?:<\d+>)?[ \t]*$")


@dataclass(slots=True)
class Literal:
    """The bytes a line announced, being read: what they are (`message`, `part` or `skip`) and where they began."""

    left: int
    kind: str
    offset: int
    command: str
    data: bytearray = field(default_factory=bytearray)
    stamp: tuple[float, int, str] | None = None


@extractors.register("imap")
class Imap:
    """IMAP in both directions: APPEND literals (client), FETCH literals (server)."""

    name: ClassVar[str] = "imap"
    ports: ClassVar[frozenset[int]] = frozenset({143})

    @staticmethod
    def sniff(client: bytes, server: bytes) -> bool | None:
        if server.startswith((b"* OK", b"* PREAUTH")):
            return True
        if client:
            if COMMAND.match(client):
                return True
            return None if b"\n" not in client and len(client) < 64 else False
        return None if len(server) < 4 else False

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.literal: list[Literal | None] = [None, None]
        self.waiting: dict[bytes, str] = {}  # tag -> STARTTLS or COMPRESS, until the server answers it
        self.stopped: str | None = None  # "STARTTLS" (ciphertext: counted) or "COMPRESS" (scanned raw)

    # -- Extractor ----------------------------------------------------------------------------
    def parse(self, d: int) -> None:
        buf = self.wire.buf(d)
        while not self.stopped:
            lit = self.literal[d]
            if lit is not None:
                take = min(lit.left, len(buf.data))
                if take:
                    if lit.kind != "skip":
                        lit.data += buf.data[:take]
                        buf.budget.used += take  # type: ignore[attr-defined]
                    buf.consume(take)
                    lit.left -= take
                if lit.left:
                    if buf.ended:
                        self._finish(d, truncated=True)
                    break
                self._finish(d, truncated=False)
                continue
            eol = buf.data.find(b"\n")
            if eol < 0:
                if len(buf.data) > MAX_LINE:
                    self.wire.raw(d, buf.base, "line_too_long")
                break
            line = bytes(buf.data[:eol]).rstrip(b"\r")
            at = buf.base
            buf.consume(eol + 1)
            self._line(d, line, at)
        if self.stopped:
            self._discard()

    def gap(self, d: int) -> None:
        if self.literal[d] is not None:
            self._finish(d, truncated=True)

    # -- lines and literals -------------------------------------------------------------------
    def _line(self, d: int, line: bytes, at: int) -> None:
        tag, _, rest = line.partition(b" ")
        verb = rest.split(b" ", 1)[0].upper()
        m = LITERAL.search(line)
        if m:
            before = line[: m.start()]
            if d == 0:
                command = (before.split(b" ", 2) + [b""])[1].upper()
                if command == b"UID":
                    command = (before.split(b" ", 3) + [b"", b""])[2].upper()
                kind = "message" if command == b"APPEND" else "skip"
            else:
                command = b"FETCH"
                kind = "message" if MESSAGE_ITEM.search(before) else "part" if SECTION_ITEM.search(before) else "skip"
            nxt = at + len(line) + 2
            stamp = self.wire.stamp(d, nxt) if kind != "skip" else None
            self.literal[d] = Literal(int(m.group(1)), kind, nxt, command.decode("ascii", "replace"), stamp=stamp)
            return
        if d == 0:
            if verb in (b"STARTTLS", b"COMPRESS"):
                self.waiting[tag] = verb.decode()
            self.wire.count("commands")
        elif tag in self.waiting and verb in (b"OK", b"NO", b"BAD"):
            what = self.waiting.pop(tag)
            if verb == b"OK":
                self.wire.count(what.lower())
                self.stopped = what

    def _finish(self, d: int, truncated: bool) -> None:
        lit = self.literal[d]
        assert lit is not None
        self.literal[d] = None
        if lit.kind == "skip":
            return
        data = bytes(lit.data)
        self.wire.buf(d).budget.used -= len(data)  # type: ignore[attr-defined]
        if not data:
            return
        app = AppMeta("imap", command=lit.command)
        emit = partial(self.wire.emit, d, lit.offset, stamp=lit.stamp)
        if lit.kind == "message":
            mail.emit_message(emit, data, truncated, app, self.wire.count)
        else:
            self.wire.count("sections")
            emit(data, truncated=truncated, app=app)

    def _discard(self) -> None:
        """After STARTTLS, what follows is ciphertext: counted, neither parsed nor scanned (as SMTP's); after
        COMPRESS DEFLATE, each direction is one raw deflate stream: scanned raw."""
        if self.stopped == "STARTTLS":
            discard_ciphertext(self.wire)
            return
        for d in (0, 1):
            self.wire.raw(d, self.wire.buf(d).base, None)


__all__ = ["Imap"]
