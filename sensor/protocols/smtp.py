"""SMTP: the client's dialogue through DATA (dot-unstuffed) and BDAT, each message's MIME parts as objects.

Several messages per connection; the envelope (MAIL FROM, RCPT TO) and the Subject go with every
object. A message is parsed with the standard library's `email` package; each leaf part,
attachment or inline, is an object named by its filename, with its transfer encoding undone
(`stagewatch.encoding`: `mime`, then `base64` or `quoted-printable`). The message itself is
recorded (--objects) but not scanned whole: its encoded parts would be found twice. STARTTLS
accepted by the server makes the rest of the session ciphertext: counted, neither parsed nor
scanned (Zeek and Suricata do the same).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

from sensor.content import mail
from sensor.model import AppMeta
from sensor.names import from_bytes
from sensor.protocols.base import Wire, discard_ciphertext, extractors

MAX_LINE = 64 * 1024
GREETING = re.compile(rb"(?i)(EHLO|HELO|LHLO)[ \r\n]")
ADDRESS = re.compile(r"<([^>]*)>")
BDAT = re.compile(rb"(?i)BDAT[ \t]+(\d{1,12})([ \t]+LAST)?[ \t]*\r?$")


@dataclass(slots=True)
class Envelope:
    """The current transaction: who sends, to whom, and where its message began."""

    mail_from: str | None = None
    rcpt_to: list[str] = field(default_factory=list)


def _address(arg: str) -> str | None:
    m = ADDRESS.search(arg)
    if m:
        return m.group(1) or None
    arg = arg.split(":", 1)[-1].strip().split(" ", 1)[0]
    return arg or None


def unstuff(data: bytes) -> bytes:
    """RFC 5321 §4.5.2: a line that starts with a period had one more added by the sender."""
    out = data.replace(b"\r\n..", b"\r\n.")
    return out[1:] if out.startswith(b"..") else out


@extractors.register("smtp")
class Smtp:
    """SMTP from the client's commands; the server's replies only confirm STARTTLS."""

    name: ClassVar[str] = "smtp"
    ports: ClassVar[frozenset[int]] = frozenset({25, 465, 587, 2525})

    @staticmethod
    def sniff(client: bytes, server: bytes) -> bool | None:
        if client:
            if GREETING.match(client):
                return True
            return None if len(client) < 5 and b"\n" not in client else False
        return None if server[:4] in (b"220 ", b"220-") or len(server) < 4 else False

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.env = Envelope()
        self.mode = "command"  # command | data | bdat | tls
        self.msg_start = 0  # stream offset of the message's first byte
        self.msg = bytearray()  # BDAT chunks so far
        self.bdat_left = 0
        self.bdat_last = False
        self.tls_asked = False
        self.stamp: tuple[float, int, str] | None = None

    # -- Extractor ----------------------------------------------------------------------------
    def parse(self, d: int) -> None:
        if d == 1:
            self._replies()
            return
        buf = self.wire.buf(0)
        while self.mode != "tls":
            if self.mode == "data":
                end = buf.data.find(b"\r\n.\r\n")
                if end < 0:
                    if buf.data.startswith(b".\r\n"):  # an empty message
                        end = -2
                    elif buf.ended:
                        self._message(bytes(buf.data), truncated=True)
                        buf.consume(len(buf.data))
                        break
                    else:
                        break
                self._message(bytes(buf.data[: end + 2]) if end >= 0 else b"", truncated=False)
                buf.consume(end + 5)
                self.mode = "command"
                continue
            if self.mode == "bdat":
                take = min(self.bdat_left, len(buf.data))
                if take:
                    self.msg += buf.data[:take]
                    buf.budget.used += take  # type: ignore[attr-defined]
                    buf.consume(take)
                    self.bdat_left -= take
                if self.bdat_left:
                    if buf.ended:
                        self._bdat_done(truncated=True)
                    break
                if self.bdat_last:
                    self._bdat_done(truncated=False)
                self.mode = "command"
                continue
            eol = buf.data.find(b"\n")
            if eol < 0:
                if len(buf.data) > MAX_LINE:
                    self.wire.raw(0, buf.base, "line_too_long")
                break
            line = bytes(buf.data[: eol + 1])
            at = buf.base
            buf.consume(eol + 1)
            self._command(line.rstrip(b"\r\n"), at, buf.base)
        if self.mode == "tls":
            self._discard()

    def gap(self, d: int) -> None:
        if d == 0 and self.mode in ("data", "bdat"):
            buf = self.wire.buf(0)
            data = bytes(self.msg) if self.mode == "bdat" else bytes(buf.data)
            if self.mode == "bdat":
                self._bdat_done(truncated=True)
            else:
                self._message(data, truncated=True)
            self.mode = "command"

    # -- the dialogue -------------------------------------------------------------------------
    def _command(self, line: bytes, at: int, nxt: int) -> None:
        """One command line (without its CRLF) that started at stream offset `at`; `nxt` follows it."""
        verb = line[:4].upper()
        text = from_bytes(line)
        if verb == b"MAIL":
            self.env = Envelope(mail_from=_address(text[4:]))
        elif verb == b"RCPT":
            addr = _address(text[4:])
            if addr:
                self.env.rcpt_to.append(addr)
        elif verb == b"DATA" and len(line.strip()) == 4:
            self.mode = "data"
            self.msg_start = nxt
            self.stamp = None
        elif verb == b"BDAT":
            m = BDAT.match(line)
            if not m:
                self.wire.anomaly("bad_bdat")
                return
            if not self.msg:
                self.msg_start = nxt
                self.stamp = self.wire.stamp(0, at)
            self.bdat_left = int(m.group(1))
            self.bdat_last = bool(m.group(2))
            self.mode = "bdat"
        elif verb == b"STAR" and line.strip().upper() == b"STARTTLS":
            self.tls_asked = True
        elif verb == b"RSET":
            self.env = Envelope()
        self.wire.count("commands")

    def _replies(self) -> None:
        """Server replies: only a 220 after STARTTLS matters; the rest is dropped as it comes."""
        buf = self.wire.buf(1)
        if self.mode == "tls":
            buf.consume(len(buf.data))
            return
        while True:
            eol = buf.data.find(b"\n")
            if eol < 0:
                if len(buf.data) > MAX_LINE:
                    buf.consume(len(buf.data))
                break
            line = bytes(buf.data[:eol])
            buf.consume(eol + 1)
            if self.tls_asked and line[:3] in (b"220", b"454", b"501", b"502"):
                self.tls_asked = False
                if line[:3] == b"220":
                    self.mode = "tls"
                    self.wire.count("starttls")
                    self._discard()
                    return

    def _discard(self) -> None:
        discard_ciphertext(self.wire)

    # -- messages -----------------------------------------------------------------------------
    def _bdat_done(self, truncated: bool) -> None:
        data = bytes(self.msg)
        self.wire.buf(0).budget.used -= len(data)  # type: ignore[attr-defined]
        self.msg = bytearray()
        self._message(data, truncated, stuffed=False)
        self.mode = "command"

    def _message(self, data: bytes, truncated: bool, stuffed: bool = True) -> None:
        if not data:
            return
        body = unstuff(data) if stuffed else data
        stamp = self.stamp or self.wire.stamp(0, self.msg_start)
        app = AppMeta("smtp", mail_from=self.env.mail_from, rcpt_to=tuple(self.env.rcpt_to))
        emit = partial(self.wire.emit, 0, self.msg_start, stamp=stamp)
        mail.emit_message(emit, body, truncated, app, self.wire.count)


__all__ = ["Smtp", "unstuff"]
