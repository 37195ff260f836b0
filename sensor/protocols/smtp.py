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

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import Message
from typing import ClassVar

from sensor.model import AppMeta
from sensor.names import from_bytes
from sensor.protocols.base import Wire, extractors

MAX_LINE = 64 * 1024
MAX_PARTS = 500
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
        for d in (0, 1):
            buf = self.wire.buf(d)
            self.wire.count("encrypted_bytes", len(buf.data))
            buf.consume(len(buf.data))

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
        wire = self.wire
        body = unstuff(data) if stuffed else data
        stamp = self.stamp or wire.stamp(0, self.msg_start)
        env = self.env
        try:
            msg = email.message_from_bytes(body, policy=email.policy.default)
            subject = str(msg.get("Subject", "") or "") or None
        except Exception:  # noqa: BLE001 - the email package's errors are many; the message goes raw
            msg, subject = None, None
        app = AppMeta("smtp", mail_from=env.mail_from, rcpt_to=tuple(env.rcpt_to), subject=subject)
        wire.count("messages")
        name = f"{subject}.eml" if subject else None
        index = wire.emit(0, self.msg_start, body, name=name, truncated=truncated, app=app, stamp=stamp, scan=False)
        if msg is None:
            wire.anomaly("mime")
            wire.emit(0, self.msg_start, body, name=name, truncated=truncated, app=app, index=index, stamp=stamp)
            return
        parts = 0
        for n, part in enumerate(msg.walk()):
            if part.is_multipart():
                continue
            parts += 1
            if parts > MAX_PARTS:
                wire.anomaly("too_many_parts")
                break
            data, layers = _payload(part)
            if data:
                filename = _filename(part)
                wire.emit(
                    0,
                    self.msg_start,
                    data,
                    name=filename,
                    truncated=truncated,
                    layers=layers,
                    app=app,
                    layer_offset=n,
                    index=index,
                    stamp=stamp,
                )
        if getattr(msg, "defects", None):
            wire.count("mime_defects", len(msg.defects))


def _filename(part: Message) -> str | None:
    try:
        return part.get_filename()
    except (ValueError, LookupError, TypeError):
        return None


def _payload(part: Message) -> tuple[bytes, tuple[str, ...]]:
    """The part's bytes with its transfer encoding undone, and the layers that took."""
    cte = str(part.get("Content-Transfer-Encoding", "") or "").strip().lower()
    try:
        data = part.get_payload(decode=True)
    except (ValueError, LookupError, TypeError, AssertionError):
        data = None
    if not isinstance(data, bytes):
        raw = part.get_payload()
        data = raw.encode("latin-1", "replace") if isinstance(raw, str) else b""
        return data, ("mime",)
    if cte in ("base64", "quoted-printable"):
        return data, ("mime", cte)
    return data, ("mime",)


__all__ = ["Smtp", "unstuff"]
