"""Craft application-protocol conversations (HTTP/1.x, SMTP, FTP) as :class:`~tests.netbuild.Conv` objects.

This module only writes the application bytes and decides who sends them when; the packets
come from :mod:`tests.netbuild` (:func:`~tests.netbuild.segments`, the mutators,
:func:`~tests.netbuild.write_pcap`). A test therefore builds a conversation here, turns it into
packets there, and can still ask :func:`~tests.netbuild.payload_stream` for the exact bytes of
each direction.

Conventions, kept everywhere in this module:

- Output is deterministic: the same arguments give the same bytes on every run (fixed
  multipart and MIME boundaries, fixed ``Date``, ``Message-ID`` derived from the content,
  seeded pseudo-random bytes for the TLS look-alike records), so written captures are
  byte-identical.
- Header arguments are sequences of ``(name, value)`` pairs, written in the order given. A
  framing header the caller passes itself (``Host``, ``Content-Length``,
  ``Transfer-Encoding``, ``Content-Encoding``, ``Expect``, ``Trailer``, ``Connection``) wins:
  the builder then does not add its own, which is how a test writes a malformed message.
- Bodies are passed already encoded: ``content_encoding`` only writes the header. Use
  :func:`gzip_body`, :func:`deflate_body` (and :func:`brotli_body` / :func:`zstd_body`, defined
  only when the ``brotli`` / ``zstandard`` module is importable: see :data:`HAVE_BROTLI`,
  :data:`HAVE_ZSTD`) to encode them.
- Every application write is one ``(direction, bytes)`` send of the conversation: one request
  head, one reply line, one SMTP ``DATA`` payload. netbuild cuts large sends in MSS segments.
- The default addresses are private IPv4 ones; every builder also takes IPv6 addresses
  (except FTP ``PASV``/``PORT``, which cannot carry them: use ``EPSV``/``EPRT``).
- netbuild's connections always close with the client's FIN first. For a close-delimited HTTP
  response (and for an FTP data connection whose sender is the Conv's server) the end of the
  body is therefore the server's FIN that follows.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import email.utils
import gzip
import hashlib
import ipaddress
import json
import random
import urllib.parse
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage
from http import HTTPStatus
from typing import Any, Literal

from scapy.layers.inet import TCP
from scapy.packet import Packet

from tests.netbuild import BASE_TIME, Conv, Direction, interleave, segments

try:
    import brotli as _brotli
except ImportError:  # pragma: no cover - depends on the environment
    _brotli = None
try:
    import zstandard as _zstd
except ImportError:  # pragma: no cover - depends on the environment
    _zstd = None

__all__ = [
    "HAVE_BROTLI",
    "HAVE_ZSTD",
    "Attachment",
    "Header",
    "Part",
    "Transfer",
    "continue_100",
    "deflate_body",
    "dot_stuff",
    "ftp_packets",
    "ftp_session",
    "gzip_body",
    "http_conversation",
    "http_request",
    "http_response",
    "json_body",
    "multipart",
    "smtp_message",
    "smtp_session",
    "split_head",
    "tls_lookalike",
    "urlencoded",
]

Header = tuple[str, str]
Send = tuple[Direction, bytes]
FtpMode = Literal["pasv", "epsv", "port", "eprt"]
FtpCommand = Literal["STOR", "RETR", "APPE", "STOU"]

#: True when :func:`brotli_body` is defined (the ``brotli`` module is importable).
HAVE_BROTLI = _brotli is not None
#: True when :func:`zstd_body` is defined (the ``zstandard`` module is importable).
HAVE_ZSTD = _zstd is not None

CRLF = b"\r\n"
_BODILESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
_FRAMING = ("content-length", "transfer-encoding")


# --------------------------------------------------------------------------------------------
# Body encodings


def gzip_body(data: bytes) -> bytes:
    """``Content-Encoding: gzip`` body: a gzip member with MTIME 0 (deterministic)."""
    return gzip.compress(data, mtime=0)


def deflate_body(data: bytes, raw: bool = False) -> bytes:
    """``Content-Encoding: deflate`` body: zlib-wrapped (RFC 1950), or raw deflate when ``raw``."""
    if not raw:
        return zlib.compress(data)
    comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush()


if _brotli is not None:
    __all__.append("brotli_body")

    def brotli_body(data: bytes) -> bytes:
        """``Content-Encoding: br`` body (only defined when ``brotli`` is importable)."""
        return _brotli.compress(data)


if _zstd is not None:
    __all__.append("zstd_body")

    def zstd_body(data: bytes) -> bytes:
        """``Content-Encoding: zstd`` body, one frame with its content size (only with ``zstandard``)."""
        return _zstd.ZstdCompressor(level=3, write_content_size=True).compress(data)


def _b64_lines(data: bytes) -> bytes:
    """Base64 in 76-character lines joined by CRLF (no trailing CRLF)."""
    text = base64.b64encode(data)
    return CRLF.join(text[i : i + 76] for i in range(0, len(text), 76))


def _quoted_printable(data: bytes) -> bytes:
    """Lossless quoted-printable (CR and LF of ``data`` escaped), soft line breaks as ``=CRLF``."""
    return binascii.b2a_qp(data, quotetabs=True, istext=False).replace(b"\n", CRLF)


# --------------------------------------------------------------------------------------------
# HTTP messages


def _has(headers: Iterable[Header], name: str) -> bool:
    return any(h.lower() == name.lower() for h, _ in headers)


def _head(start_line: str, headers: Sequence[Header]) -> bytes:
    lines = [start_line, *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunked(body: bytes, chunk_size: int, trailers: Sequence[Header]) -> bytes:
    """``body`` in ``chunk_size`` chunks (hex sizes), the last-chunk and the trailer section."""
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    out = bytearray()
    for i in range(0, len(body), chunk_size):
        chunk = body[i : i + chunk_size]
        out += f"{len(chunk):x}".encode() + CRLF + chunk + CRLF
    out += b"0\r\n"
    for name, value in trailers:
        out += f"{name}: {value}".encode("latin-1") + CRLF
    return bytes(out + CRLF)


def _framed(
    headers: list[Header],
    body: bytes,
    *,
    chunked: bool,
    chunk_size: int,
    trailers: Sequence[Header],
    content_encoding: str | None,
    want_length: bool,
) -> bytes:
    """Add the framing headers to ``headers`` (in place) and return the framed body."""
    if content_encoding is not None and not _has(headers, "Content-Encoding"):
        headers.append(("Content-Encoding", content_encoding))
    if trailers and not chunked:
        raise ValueError("trailers need chunked=True")
    if chunked:
        if trailers and not _has(headers, "Trailer"):
            headers.append(("Trailer", ", ".join(name for name, _ in trailers)))
        if not any(_has(headers, h) for h in _FRAMING):
            headers.append(("Transfer-Encoding", "chunked"))
        return _chunked(body, chunk_size, trailers)
    if want_length and not any(_has(headers, h) for h in _FRAMING):
        headers.append(("Content-Length", str(len(body))))
    return body


def http_request(
    method: str,
    path: str,
    host: str,
    body: bytes = b"",
    headers: Sequence[Header] = (),
    *,
    chunked: bool = False,
    chunk_size: int = 4096,
    trailers: Sequence[Header] = (),
    expect_continue: bool = False,
    content_encoding: str | None = None,
    version: str = "HTTP/1.1",
) -> bytes:
    """One HTTP/1.x request: request line, ``Host``, ``headers``, framing headers, then the body.

    ``Content-Length`` is written unless ``chunked`` (it is left out for an empty body of a
    method that has none, such as GET). ``chunked`` cuts ``body`` in ``chunk_size`` chunks and
    ends with ``trailers`` (announced in a ``Trailer`` header). ``expect_continue`` adds
    ``Expect: 100-continue``: :func:`http_conversation` then sends the head and the body
    apart, with :func:`continue_100` between them (see :func:`split_head`).
    """
    hdrs: list[Header] = [] if _has(headers, "Host") else [("Host", host)]
    hdrs += list(headers)
    if expect_continue and not _has(hdrs, "Expect"):
        hdrs.append(("Expect", "100-continue"))
    want_length = bool(body) or method.upper() not in _BODILESS_METHODS
    framed = _framed(
        hdrs,
        body,
        chunked=chunked,
        chunk_size=chunk_size,
        trailers=trailers,
        content_encoding=content_encoding,
        want_length=want_length,
    )
    return _head(f"{method} {path} {version}", hdrs) + framed


def http_response(
    status: int,
    body: bytes = b"",
    headers: Sequence[Header] = (),
    *,
    chunked: bool = False,
    chunk_size: int = 4096,
    trailers: Sequence[Header] = (),
    close_delimited: bool = False,
    content_encoding: str | None = None,
    reason: str | None = None,
    version: str = "HTTP/1.1",
) -> bytes:
    """One HTTP/1.x response: status line, ``headers``, framing headers, then the body.

    Framing is ``Content-Length`` (not for 1xx, 204 and 304), ``chunked`` (with ``trailers``)
    or, with ``close_delimited``, none: ``Connection: close`` and the body runs to the end of
    the connection, so it must be the last response of its conversation.
    """
    if chunked and close_delimited:
        raise ValueError("a response is either chunked or close-delimited")
    if reason is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
    hdrs = list(headers)
    if close_delimited and not _has(hdrs, "Connection"):
        hdrs.append(("Connection", "close"))
    no_body = 100 <= status < 200 or status in (204, 304)
    framed = _framed(
        hdrs,
        body,
        chunked=chunked,
        chunk_size=chunk_size,
        trailers=trailers,
        content_encoding=content_encoding,
        want_length=not (close_delimited or no_body),
    )
    return _head(f"{version} {status} {reason}", hdrs) + framed


def continue_100() -> bytes:
    """The interim response a server sends to ``Expect: 100-continue``."""
    return b"HTTP/1.1 100 Continue\r\n\r\n"


def split_head(message: bytes) -> tuple[bytes, bytes]:
    """``(head, body)`` of an HTTP message; the head ends with its blank line (CRLF CRLF)."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        raise ValueError("no end of header section (CRLF CRLF) in the message")
    return message[: end + 4], message[end + 4 :]


def _expects_continue(request: bytes) -> bool:
    head, _ = split_head(request)
    lines = head.decode("latin-1").split("\r\n")[1:]
    return any(line.lower().replace(" ", "") == "expect:100-continue" for line in lines)


@dataclass(frozen=True)
class Part:
    """One ``multipart/form-data`` part: a field, or a file when ``filename`` is given.

    ``filename_form`` picks ``filename="..."`` (``plain``), the RFC 2231/5987
    ``filename*=UTF-8''...`` form (``rfc2231``) or both (``both``, plain first).
    ``transfer_encoding`` (``base64``, ``quoted-printable``, ``binary``, ``8bit``, ``7bit``) adds
    a ``Content-Transfer-Encoding`` header and encodes ``data`` with it.
    """

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None
    transfer_encoding: str | None = None
    filename_form: Literal["plain", "rfc2231", "both"] = "plain"


def _quote_param(value: str) -> str:
    """A form-data parameter value in quotes, escaped the way browsers do (HTML spec)."""
    return '"' + value.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22") + '"'


def _disposition(part: Part) -> str:
    fields = ["form-data", f"name={_quote_param(part.name)}"]
    if part.filename is not None:
        if part.filename_form in ("plain", "both"):
            fields.append(f"filename={_quote_param(part.filename)}")
        if part.filename_form in ("rfc2231", "both"):
            fields.append("filename*=UTF-8''" + urllib.parse.quote(part.filename, safe="!#$&+^`|"))
        if part.filename_form not in ("plain", "rfc2231", "both"):
            raise ValueError(f"filename_form must be plain, rfc2231 or both, not {part.filename_form!r}")
    return "; ".join(fields)


def _encode_part(part: Part) -> bytes:
    cte = (part.transfer_encoding or "").lower()
    if cte == "base64":
        return _b64_lines(part.data)
    if cte == "quoted-printable":
        return _quoted_printable(part.data)
    if cte in ("", "binary", "8bit", "7bit"):
        return part.data
    raise ValueError(f"unknown transfer encoding {part.transfer_encoding!r}")


def multipart(parts: Sequence[Part], boundary: str = "----stagewatchFormBoundary7MA4YWxkTrZu0gW") -> tuple[str, bytes]:
    """``(Content-Type value, body)`` of a ``multipart/form-data`` body holding ``parts``."""
    delimiter = b"--" + boundary.encode("ascii")
    out = bytearray()
    for part in parts:
        headers: list[Header] = [("Content-Disposition", _disposition(part))]
        if part.content_type is not None:
            headers.append(("Content-Type", part.content_type))
        elif part.filename is not None:
            headers.append(("Content-Type", "application/octet-stream"))
        if part.transfer_encoding is not None:
            headers.append(("Content-Transfer-Encoding", part.transfer_encoding))
        data = _encode_part(part)
        if delimiter in data:
            raise ValueError(f"part {part.name!r} contains the boundary {boundary!r}")
        out += delimiter + CRLF
        out += "".join(f"{n}: {v}\r\n" for n, v in headers).encode("utf-8") + CRLF
        out += data + CRLF
    out += delimiter + b"--" + CRLF
    return f"multipart/form-data; boundary={boundary}", bytes(out)


def urlencoded(fields: Mapping[str, str | bytes] | Sequence[tuple[str, str | bytes]]) -> bytes:
    """``application/x-www-form-urlencoded`` body of ``fields`` (spaces as ``+``)."""
    items = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    return urllib.parse.urlencode(items).encode("ascii")


def json_body(obj: Any) -> bytes:
    """Compact ``application/json`` body of ``obj`` with sorted keys (UTF-8)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def http_conversation(
    exchanges: Sequence[tuple[bytes, bytes] | Sequence[Send]],
    client: str = "10.0.0.10",
    server: str = "10.0.0.80",
    server_port: int = 80,
    pipelined: bool = False,
    client_port: int = 49152,
    **conv_kwargs: Any,
) -> Conv:
    """One HTTP/1.x connection carrying ``exchanges``.

    An exchange is a ``(request, response)`` pair of whole messages, or an explicit list of
    ``(direction, bytes)`` sends used as is. Keep-alive (default): each request then its
    response; a request with ``Expect: 100-continue`` is sent as head, :func:`continue_100`,
    body, then the response. ``pipelined``: all requests in one client send, then all
    responses in one server send (no interim 100 responses are added). ``conv_kwargs`` go to
    :class:`~tests.netbuild.Conv` (``isn_c``, ``mss``, ``start``, ``gap_us``, ``close`` ...).
    """
    sends: list[Send] = []
    if pipelined:
        pairs = [ex for ex in exchanges if ex and isinstance(ex[0], bytes)]
        if len(pairs) != len(exchanges):
            raise ValueError("pipelined exchanges must be (request, response) pairs")
        requests = b"".join(req for req, _ in pairs)  # type: ignore[misc]
        responses = b"".join(resp for _, resp in pairs)  # type: ignore[misc]
        sends = [("c2s", requests)] + ([("s2c", responses)] if responses else [])
    else:
        for ex in exchanges:
            if ex and isinstance(ex[0], bytes):
                request, response = ex  # type: ignore[misc]
                head, body = split_head(request)
                if body and _expects_continue(request) and not response.startswith(b"HTTP/1.1 100"):
                    sends += [("c2s", head), ("s2c", continue_100()), ("c2s", body)]
                else:
                    sends.append(("c2s", request))
                if response:
                    sends.append(("s2c", response))
            else:
                sends += [(d, data) for d, data in ex if data]  # type: ignore[misc]
    return Conv(client, client_port, server, server_port, sends=sends, **conv_kwargs)


# --------------------------------------------------------------------------------------------
# SMTP


@dataclass(frozen=True)
class Attachment:
    """One e-mail attachment, encoded with ``encoding`` (``base64`` or ``quoted-printable``)."""

    filename: str
    data: bytes
    maintype: str = "application"
    subtype: str = "octet-stream"
    encoding: Literal["base64", "quoted-printable"] = "base64"


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8") if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()


def smtp_message(
    sender: str,
    recipients: Sequence[str],
    subject: str,
    text: str,
    attachments: Sequence[Attachment] = (),
    *,
    date: datetime | None = None,
    message_id: str | None = None,
    boundary: str = "===============stagewatch-mixed==",
) -> bytes:
    """An RFC 5322 message (CRLF lines) built with :class:`email.message.EmailMessage`.

    Text body plus ``attachments`` (then ``multipart/mixed`` with ``boundary``). ``Date``
    defaults to :data:`~tests.netbuild.BASE_TIME` and ``Message-ID`` to one derived from the
    content, so the bytes are identical on every run.
    """
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(date or datetime.fromtimestamp(BASE_TIME, UTC))
    if message_id is None:
        names = [a.filename for a in attachments]
        message_id = f"<{_digest(sender, *recipients, subject, text, *names)[:24]}@stagewatch.test>"
    msg["Message-ID"] = message_id
    msg.set_content(text)
    for att in attachments:
        msg.add_attachment(att.data, att.maintype, att.subtype, filename=att.filename, cte=att.encoding)
    if attachments:
        msg.set_boundary(boundary)
    return msg.as_bytes(policy=email.policy.SMTP)


def dot_stuff(message: bytes) -> bytes:
    """``message`` as sent after ``DATA``: leading dots doubled, CRLF ensured, then ``.CRLF``."""
    if not message.endswith(CRLF):
        message += CRLF
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def tls_lookalike(sizes: Sequence[tuple[Direction, int]], seed: int = 0) -> list[Send]:
    """Sends that look like a TLS 1.2 session (records of random bytes), after STARTTLS.

    A handshake record each way, a ChangeCipherSpec and Finished from each side, then one
    client or server application-data write of about ``size`` bytes per ``sizes`` entry
    (records of at most 16 KiB) and a close_notify-sized alert from the client.
    """
    rng = random.Random(seed)

    def record(ctype: int, n: int, version: bytes = b"\x03\x03") -> bytes:
        return bytes([ctype]) + version + n.to_bytes(2, "big") + rng.randbytes(n)

    def app(n: int) -> bytes:
        out = b""
        while n > 0:
            take = min(n, 16384)
            out += record(0x17, take + 24)  # 8-byte explicit nonce + 16-byte GCM tag
            n -= take
        return out

    hello = b"\x01" + (508).to_bytes(3, "big") + b"\x03\x03" + rng.randbytes(506)
    sends: list[Send] = [
        ("c2s", b"\x16\x03\x01" + len(hello).to_bytes(2, "big") + hello),
        ("s2c", record(0x16, 2900)),
        ("c2s", record(0x16, 70) + b"\x14\x03\x03\x00\x01\x01" + record(0x16, 40)),
        ("s2c", b"\x14\x03\x03\x00\x01\x01" + record(0x16, 40)),
    ]
    sends += [(d, app(n)) for d, n in sizes]
    sends.append(("c2s", record(0x15, 26)))
    return sends


def smtp_session(
    messages: Sequence[tuple[str, Sequence[str], bytes]],
    use_bdat: bool = False,
    bdat_chunk: int = 8192,
    starttls_after_ehlo: bool = False,
    *,
    client: str = "10.0.0.10",
    server: str = "10.0.0.25",
    client_port: int = 49200,
    server_port: int = 25,
    client_name: str = "ws-01.example.test",
    server_name: str = "mx.example.test",
    seed: int = 0,
    **conv_kwargs: Any,
) -> Conv:
    """One SMTP connection delivering ``messages``, each ``(mail_from, rcpts, message_bytes)``.

    220 greeting, EHLO and its multiline 250 (PIPELINING, SIZE, 8BITMIME, STARTTLS,
    ENHANCEDSTATUSCODES, CHUNKING, SMTPUTF8), then per message MAIL FROM, RCPT TO (one per
    recipient), and either DATA/354 with the dot-stuffed message and ``CRLF.CRLF`` or, with
    ``use_bdat``, ``BDAT n`` chunks of ``bdat_chunk`` bytes (the last ``BDAT n LAST``), each
    answered with 250; QUIT/221 at the end. ``starttls_after_ehlo``: STARTTLS/220 right after
    EHLO and from then on only :func:`tls_lookalike` records (sized from the messages).
    """
    if bdat_chunk <= 0:
        raise ValueError("bdat_chunk must be positive")
    ehlo_lines = [
        f"{server_name} Hello {client_name}",
        "PIPELINING",
        "SIZE 52428800",
        "8BITMIME",
        "STARTTLS",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "SMTPUTF8",
    ]
    ehlo_reply = "".join(
        f"250{' ' if i == len(ehlo_lines) - 1 else '-'}{line}\r\n" for i, line in enumerate(ehlo_lines)
    )
    sends: list[Send] = [
        ("s2c", f"220 {server_name} ESMTP Postfix\r\n".encode()),
        ("c2s", f"EHLO {client_name}\r\n".encode()),
        ("s2c", ehlo_reply.encode()),
    ]
    if starttls_after_ehlo:
        sends += [("c2s", b"STARTTLS\r\n"), ("s2c", b"220 2.0.0 Ready to start TLS\r\n")]
        sizes: list[tuple[Direction, int]] = [("c2s", 30), ("s2c", 200)]  # EHLO again and its reply
        for _, rcpts, message in messages:
            sizes += [("c2s", 40), ("s2c", 20)] + [("c2s", 40), ("s2c", 20)] * len(rcpts)
            sizes += [("c2s", 6), ("s2c", 40), ("c2s", len(message) + 3), ("s2c", 50)]
        sizes += [("c2s", 6), ("s2c", 20)]
        return Conv(client, client_port, server, server_port, sends=sends + tls_lookalike(sizes, seed), **conv_kwargs)
    for n, (mail_from, rcpts, message) in enumerate(messages):
        queue_id = _digest(str(n), message)[:10].upper()
        sends += [("c2s", f"MAIL FROM:<{mail_from}>\r\n".encode()), ("s2c", b"250 2.1.0 Ok\r\n")]
        for rcpt in rcpts:
            sends += [("c2s", f"RCPT TO:<{rcpt}>\r\n".encode()), ("s2c", b"250 2.1.5 Ok\r\n")]
        queued = f"250 2.0.0 Ok: queued as {queue_id}\r\n".encode()
        if use_bdat:
            chunks = [message[i : i + bdat_chunk] for i in range(0, len(message), bdat_chunk)] or [b""]
            for k, chunk in enumerate(chunks):
                last = k == len(chunks) - 1
                sends.append(("c2s", f"BDAT {len(chunk)}{' LAST' if last else ''}\r\n".encode() + chunk))
                sends.append(("s2c", queued if last else f"250 2.0.0 {len(chunk)} octets received\r\n".encode()))
        else:
            sends += [("c2s", b"DATA\r\n"), ("s2c", b"354 End data with <CR><LF>.<CR><LF>\r\n")]
            sends += [("c2s", dot_stuff(message)), ("s2c", queued)]
    sends += [("c2s", b"QUIT\r\n"), ("s2c", b"221 2.0.0 Bye\r\n")]
    return Conv(client, client_port, server, server_port, sends=sends, **conv_kwargs)


# --------------------------------------------------------------------------------------------
# FTP


@dataclass(frozen=True)
class Transfer:
    """One FTP file transfer: ``STOR``/``APPE``/``STOU`` upload ``data``, ``RETR`` downloads it."""

    command: FtpCommand
    filename: str
    data: bytes


def _send_end_times(conv: Conv, pkts: Sequence[Packet]) -> list[int]:
    """Capture time (µs) of the last segment of each send of ``conv``, from its packets."""
    ends: list[tuple[Direction, int]] = []
    offset: dict[Direction, int] = {"c2s": 0, "s2c": 0}
    for d, data in conv.sends:
        offset[d] += len(data)
        ends.append((d, offset[d]))
    base = {"c2s": (conv.isn_c + 1) % 2**32, "s2c": (conv.isn_s + 1) % 2**32}
    seen: dict[tuple[Direction, int], int] = {}
    for pkt in pkts:
        tcp = pkt[TCP]
        if not len(tcp.payload):
            continue
        d: Direction = "c2s" if tcp.sport == conv.client_port else "s2c"
        end = (tcp.seq - base[d]) % 2**32 + len(tcp.payload)
        seen.setdefault((d, end), int(Decimal(str(pkt.time)) * 1_000_000))
    return [seen[key] for key in ends]


def _seconds(us: int) -> float:
    """``us`` microseconds as float seconds that netbuild turns back into exactly ``us``."""
    sec = us / 1_000_000
    if int(Decimal(str(sec)) * 1_000_000) != us:
        raise ValueError(f"time {us} µs is not exact as a float")
    return sec


def _announce(mode: FtpMode, host: str, port: int, bad_address: bool) -> tuple[bytes, bytes]:
    """(command, reply) that announce the data connection's ``host:port`` in ``mode``."""
    addr = ipaddress.ip_address(host)
    if mode in ("pasv", "port"):
        if addr.version != 4:
            raise ValueError(f"{mode.upper()} cannot carry the IPv6 address {host}; use EPSV or EPRT")
        octets = ["999", "1", "2", "3"] if bad_address else host.split(".")
        numbers = ",".join([*octets, str(port >> 8), str(port & 0xFF)])
        if mode == "pasv":
            return b"PASV\r\n", f"227 Entering Passive Mode ({numbers}).\r\n".encode()
        return f"PORT {numbers}\r\n".encode(), b"200 PORT command successful. Consider using PASV.\r\n"
    if mode == "epsv":
        shown = 70000 if bad_address else port
        return b"EPSV\r\n", f"229 Entering Extended Passive Mode (|||{shown}|)\r\n".encode()
    if mode == "eprt":
        shown_host = "999.1.2.3" if bad_address else host
        family = 1 if addr.version == 4 else 2  # RFC 2428 address families
        return f"EPRT |{family}|{shown_host}|{port}|\r\n".encode(), b"200 EPRT command successful.\r\n"
    raise ValueError(f"mode must be pasv, epsv, port or eprt, not {mode!r}")


def ftp_session(
    transfers: Sequence[Transfer],
    mode: FtpMode = "pasv",
    *,
    client: str = "10.0.0.10",
    server: str = "10.0.0.21",
    client_port: int = 40100,
    server_port: int = 21,
    data_port: int = 50000,
    user: str = "alice",
    password: str = "secret",
    bad_address: bool = False,
    data_first: bool = False,
    start: float | int = BASE_TIME,
    gap_us: int = 500,
    data_gap_us: int = 20,
    mss: int = 1460,
) -> list[Conv]:
    """An FTP session: ``[control, data_1, ..., data_n]``, one data connection per transfer.

    Control: 220 greeting, USER/331, PASS/230, TYPE I/200, then per transfer the announcing
    command (PASV/227, EPSV/229, PORT/200 or EPRT/200) for data port ``data_port + i``, the
    transfer command and its 150 reply, 226 at the end; QUIT/221. Passive data connections go
    from the client (port ``client_port + 1 + i``) to the server; active ones from the server's
    port ``server_port - 1`` (20) to the client. Uploads flow from the FTP client, RETR from the
    server. Each data connection starts after the 150 reply and ends before the 226 (the
    control's ``gap_us`` is raised as needed to make room) or, with ``data_first``, just before
    the announcing command. ``bad_address`` announces an impossible address (``999.1.2.3``;
    port 70000 for EPSV) while the data connection still uses the real one.
    """
    if mode not in ("pasv", "epsv", "port", "eprt"):
        raise ValueError(f"mode must be pasv, epsv, port or eprt, not {mode!r}")
    passive = mode in ("pasv", "epsv")
    sends: list[Send] = [
        ("s2c", b"220 (vsFTPd 3.0.5)\r\n"),
        ("c2s", f"USER {user}\r\n".encode()),
        ("s2c", b"331 Please specify the password.\r\n"),
        ("c2s", f"PASS {password}\r\n".encode()),
        ("s2c", b"230 Login successful.\r\n"),
        ("c2s", b"TYPE I\r\n"),
        ("s2c", b"200 Switching to Binary mode.\r\n"),
    ]
    datas: list[Conv] = []
    marks: list[tuple[int, int]] = []  # (send index of the announcing command, of the 150 reply)
    for i, tr in enumerate(transfers):
        if tr.command not in ("STOR", "RETR", "APPE", "STOU"):
            raise ValueError(f"unknown transfer command {tr.command!r}")
        port = data_port + i
        command, reply = _announce(mode, server if passive else client, port, bad_address)
        marks.append((len(sends), len(sends) + 3))
        sends += [("c2s", command), ("s2c", reply)]
        if tr.command == "STOU":
            sends += [("c2s", b"STOU\r\n"), ("s2c", f"150 FILE: {tr.filename}\r\n".encode())]
        elif tr.command == "RETR":
            sends.append(("c2s", f"RETR {tr.filename}\r\n".encode()))
            note = f"150 Opening BINARY mode data connection for {tr.filename} ({len(tr.data)} bytes).\r\n"
            sends.append(("s2c", note.encode()))
        else:
            sends += [("c2s", f"{tr.command} {tr.filename}\r\n".encode()), ("s2c", b"150 Ok to send data.\r\n")]
        sends.append(("s2c", b"226 Transfer complete.\r\n"))
        upload = tr.command != "RETR"
        # Conv "client" is whoever opens the data connection; data goes c2s when that side sends it.
        direction: Direction = "c2s" if upload == passive else "s2c"
        data_sends: list[Send] = [(direction, tr.data)] if tr.data else []
        ids = {"isn_c": 2_000_000 + 100_000 * i, "isn_s": 3_500_000_000 + 100_000 * i}
        if passive:
            data = Conv(client, client_port + 1 + i, server, port, sends=data_sends, **ids, mss=mss, gap_us=data_gap_us)
        else:
            macs = {"client_mac": "02:00:00:00:00:02", "server_mac": "02:00:00:00:00:01"}  # the server connects
            data = Conv(
                server, server_port - 1, client, port, sends=data_sends, **ids, **macs, mss=mss, gap_us=data_gap_us
            )
        datas.append(data)
    sends += [("c2s", b"QUIT\r\n"), ("s2c", b"221 Goodbye.\r\n")]
    durations = [(len(segments(d)) - 1) * data_gap_us for d in datas]
    control_gap = max([gap_us] + [dur + 2 * data_gap_us for dur in durations])
    control = Conv(client, client_port, server, server_port, sends=sends, mss=mss, start=start, gap_us=control_gap)
    times = _send_end_times(control, segments(control))
    for data, (announce, reply150) in zip(datas, marks, strict=True):
        if data_first:  # in the quiet gap just before the announcing command
            data.start = _seconds(times[announce] - control_gap + data_gap_us)
        else:  # after the 150 reply; the 226 comes two control gaps later
            data.start = _seconds(times[reply150] + data_gap_us)
    return [control, *datas]


def ftp_packets(convs: Sequence[Conv]) -> list[Packet]:
    """All packets of ``convs`` (control and data connections) merged by capture time."""
    return interleave(*(segments(conv) for conv in convs))
