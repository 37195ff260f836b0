"""multipart/form-data (RFC 7578) and other multipart bodies split into parts, with their offsets.

Parts are located by byte offsets, not re-serialised, so a member inside a part hashes exactly as
it was sent. The disposition parameters go through the standard library's `email` parser, which
knows RFC 2231 continuations (`filename*0*=...`).
"""

from __future__ import annotations

import email.message
from dataclasses import dataclass

from sensor.model import Buffer

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
    m["Content-Type"] = content_type
    b = m.get_param("boundary")
    return b if isinstance(b, str) and b else None


def _params(headers: bytes) -> tuple[str | None, str | None, str | None, str | None]:
    m = email.message.Message()
    for line in headers.decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep and name.strip():
            m[name.strip()] = value.strip()
    field = m.get_param("name", header="content-disposition")
    filename = m.get_filename()
    cte = m.get("Content-Transfer-Encoding")
    return (
        field if isinstance(field, str) else None,
        filename,
        m.get("Content-Type"),
        cte.strip().lower() if isinstance(cte, str) else None,
    )


def split(body: Buffer, boundary: str) -> Split:
    """Every part of `body`; a missing closing boundary leaves the last part running to the end."""
    data = bytes(body)
    delim = b"--" + boundary.encode("latin-1")
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
