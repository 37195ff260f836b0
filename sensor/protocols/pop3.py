"""POP3 (RFC 1939, 2449): messages read down by RETR (and TOP), parsed as mail.

The client's commands are queued (PIPELINING lets a client send several before the answers); each server
answer belongs to the oldest one. A "+OK" to RETR or TOP is followed by the message, dot-stuffed, up to a line
holding a single period; it is parsed by sensor/content/mail.py (one object per MIME part, named by its
filename). The other multi-line answers (CAPA, LIST and UIDL without an argument) are read past. STLS accepted
makes the rest ciphertext: counted, neither parsed nor scanned.
"""

from __future__ import annotations

import re
from collections import deque
from functools import partial
from typing import ClassVar

from sensor.content import mail
from sensor.model import AppMeta
from sensor.protocols.base import Wire, discard_ciphertext, extractors
from sensor.protocols.smtp import unstuff

MAX_LINE = 64 * 1024
COMMAND = re.compile(
    rb"(?i)(USER|APOP|CAPA|STLS|AUTH|STAT|LIST|RETR|TOP|UIDL|QUIT|NOOP|DELE|RSET)(?:[ \t][^\r\n]*)?\r?\n"
)
MULTILINE = (b"CAPA", b"RETR", b"TOP")  # and LIST or UIDL without an argument
END = re.compile(rb"\n\.\r?\n")  # a line holding a single period ends a multi-line answer
FIRST_END = re.compile(rb"\.\r?\n")


@extractors.register("pop3")
class Pop3:
    """POP3: the client's commands and the server's answers, RETR/TOP messages as objects."""

    name: ClassVar[str] = "pop3"
    ports: ClassVar[frozenset[int]] = frozenset({110})

    @staticmethod
    def sniff(client: bytes, server: bytes) -> bool | None:
        if client:
            if COMMAND.match(client) and (not server or server.startswith((b"+OK", b"-ERR"))):
                return True
            return None if b"\n" not in client and len(client) < 16 else False
        return None if len(server) < 3 else False

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.commands: deque[tuple[bytes, bool]] = deque()  # (verb, has an argument), oldest first
        self.body: tuple[bytes, int, tuple[float, int, str]] | None = None  # (verb, offset, stamp) being read
        self.tls = False
        self.greeted = False  # the server speaks first: its first line answers no command

    # -- Extractor ----------------------------------------------------------------------------
    def parse(self, d: int) -> None:
        buf = self.wire.buf(d)
        while not self.tls:
            if d == 1 and self.body is not None:
                if not self._multiline(buf.ended):
                    break
                continue
            eol = buf.data.find(b"\n")
            if eol < 0:
                if len(buf.data) > MAX_LINE:
                    self.wire.raw(d, buf.base, "line_too_long")
                break
            line = bytes(buf.data[:eol]).rstrip(b"\r")
            at = buf.base
            buf.consume(eol + 1)
            if d == 0:
                verb, _, arg = line.partition(b" ")
                self.commands.append((verb.upper(), bool(arg.strip())))
                if len(self.commands) > 1000:
                    self.commands.popleft()
                    self.wire.anomaly("unanswered_commands")
                self.wire.count("commands")
            else:
                self._answer(line, at + eol + 1)
        if self.tls:
            discard_ciphertext(self.wire)

    def gap(self, d: int) -> None:
        if d == 1 and self.body is not None:
            buf = self.wire.buf(1)
            self._message(bytes(buf.data), truncated=True)

    # -- answers ------------------------------------------------------------------------------
    def _answer(self, line: bytes, nxt: int) -> None:
        if not self.greeted:
            self.greeted = True
            return
        if not self.commands:
            return  # an answer whose command was not seen
        verb, has_arg = self.commands.popleft()
        if not line.startswith(b"+OK"):
            return
        if verb == b"STLS":
            self.tls = True
            self.wire.count("starttls")
        elif verb in MULTILINE or (verb in (b"LIST", b"UIDL") and not has_arg):
            self.body = (verb, nxt, self.wire.stamp(1, nxt))

    def _multiline(self, ended: bool) -> bool:
        """Read the multi-line answer being received; True when it is complete and parsing goes on."""
        buf = self.wire.buf(1)
        first = FIRST_END.match(buf.data)
        if first is not None:  # nothing but the terminating line
            self._message(b"", truncated=False)
            buf.consume(first.end())
            return True
        m = END.search(buf.data)
        if m is None:
            if ended:
                self._message(bytes(buf.data), truncated=True)
                buf.consume(len(buf.data))
            return False
        self._message(bytes(buf.data[: m.start() + 1]), truncated=False)
        buf.consume(m.end())
        return True

    def _message(self, data: bytes, truncated: bool) -> None:
        assert self.body is not None
        verb, offset, stamp = self.body
        self.body = None
        if verb not in (b"RETR", b"TOP") or not data:
            return
        app = AppMeta("pop3", command=verb.decode())
        emit = partial(self.wire.emit, 1, offset, stamp=stamp)
        mail.emit_message(emit, unstuff(data), truncated, app, self.wire.count)


__all__ = ["Pop3"]
