"""multipart/form-data (RFC 7578) and other multipart bodies split into parts, with their offsets.

Parts are located by byte offsets, not re-serialised, so a member inside a part hashes exactly as
it was sent. The disposition parameters go through the standard library's `email` parser, which
knows RFC 2231 continuations (`filename*0*=...`).
"""

from __future__ import annotations

import email.message
import email.utils
from dataclasses import dataclass

from sensor.model import Buffer
from sensor.names import from_bytes, to_bytes

MAX_PARTS = 1000
MAX_PART_HEADER = 16 * 1024


@dataclass(frozen=True, slots=True)
class Part:
    """One part: where its content sits in the body, its form-field name and filename."""

    start: int
    end: int
    field: str | None
    filename: str | None
    content_type: str | None
    transfer_encoding: str | None
    complete: bool  # its closing boundary was seen


@dataclass(frozen=True, slots=True)
class Split:
    """The parts of a body, and what was wrong with its framing (None when well-formed)."""

    parts: tuple[Part, ...]
    anomaly: str | None


def boundary_of(content_type: str | None) -> str | None:
    """The boundary parameter of a multipart Content-Type, or None."""
    if not content_type or not content_type.lower().lstrip().startswith("multipart/"):
        return None
    m = email.message.Message()
    m["Content-Type"] = to_bytes(content_type).decode("latin-1")  # one char per byte, as _params does
    b = _param(m, "content-type", "boundary")
    return b or None


def _param(m: email.message.Message, header: str, param: str) -> str | None:
    """A header parameter as the sender meant it: an RFC 2231 value (`filename*=UTF-8''...`) decoded by its
    charset, a plain one as its exact bytes (the email package was given them one char per byte)."""
    value = m.get_param(param, None, header)
    if isinstance(value, tuple):
        return email.utils.collapse_rfc2231_value(value).strip()
    if isinstance(value, str):
        return from_bytes(email.utils.unquote(value).strip().encode("latin-1"))
    return None


def _params(headers: bytes) -> tuple[str | None, str | None, str | None, str | None]:
    m = email.message.Message()
    # the email package is given one char per byte (Latin-1: it would turn escaped bytes into U+FFFD), and the
    # values it returns are turned back into exact names
    for line in headers.decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep and name.strip():
            m[name.strip()] = value.strip()
    filename = _param(m, "content-disposition", "filename")
    if filename is None:
        filename = _param(m, "content-type", "name")  # where get_filename() looks next
    cte = m.get("Content-Transfer-Encoding")
    return (
        _param(m, "content-disposition", "name"),
        filename,
        m.get("Content-Type"),
        cte.strip().lower() if isinstance(cte, str) else None,
    )


def split(body: Buffer, boundary: str) -> Split:
    """Every part of `body`; a missing closing boundary leaves the last part running to the end."""
    data = bytes(body)
    delim = b"--" + to_bytes(boundary)
    if data.startswith(delim):
        pos = 0
    else:
        pos = data.find(b"\r\n" + delim)
        if pos < 0:
            return Split((), "no boundary")
        pos += 2
    parts: list[Part] = []
    anomaly: str | None = None
    while len(parts) < MAX_PARTS:
        pos += len(delim)
        if data[pos : pos + 2] == b"--":
            break  # closing delimiter
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            anomaly = "unterminated boundary line"
            break
        head_end = data.find(b"\r\n\r\n", eol)
        if eol + 2 <= len(data) and data[eol : eol + 4] == b"\r\n\r\n":
            head_end = eol  # a part with no headers at all
        if head_end < 0 or head_end - eol > MAX_PART_HEADER:
            anomaly = "unterminated part headers"
            break
        field, filename, ctype, cte = _params(data[eol + 2 : head_end])
        start = head_end + 4
        nxt = data.find(b"\r\n" + delim, start)
        if nxt < 0:
            parts.append(Part(start, len(data), field, filename, ctype, cte, False))
            anomaly = "unterminated multipart: no closing boundary"
            break
        parts.append(Part(start, nxt, field, filename, ctype, cte, True))
        pos = nxt + 2
    else:
        anomaly = f"more than {MAX_PARTS} parts"
    return Split(tuple(parts), anomaly)


__all__ = ["MAX_PARTS", "Part", "Split", "boundary_of", "split"]
