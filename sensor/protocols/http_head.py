"""HTTP/1 message heads read the way receivers read them, and the body framings they imply.

RFC 9112 is strict; the programs at the other end are not, and an exfiltration tool runs its own. Heads are
read as browsers and common servers tolerate them (each tolerance counted as an anomaly): bare LF and mixed
line ends, a head ended by LF CRLF, blanks around header names and colons, obsolete line folding (joined to
the previous value, as Chromium and Firefox do), header names with control bytes (not that header: skipped),
status lines in lower case, without a reason, with tabs or odd versions, request lines with several blanks.

Where receivers disagree on a body's framing, `framings` gives every plausible reading, the first being the
one the stream is parsed by (RFC 9112 §6.3, which browsers follow), the others decoded beside it:

- Transfer-Encoding naming `chunked` anywhere in its list is chunked (Chromium, Firefox, libhtp); RFC 9112
  wants it last, else the response runs to the close, and Python's http.client de-chunks only a value that is
  `chunked` alone: those responses are read to the close too. On an HTTP/1.0 response Chromium
  ignores Transfer-Encoding (reads to the close) while Firefox de-chunks: both.
- Transfer-Encoding with Content-Length: chunked (RFC, browsers), and the length (servers that take it:
  the request-smuggling split).
- Content-Length: equal duplicates are one length (RFC 9110 §8.6, browsers); different ones are refused by
  browsers and taken first or last by servers: each value. A value with junk (`+5`, `5;`, `5 x`) is no length
  for Chromium (the response runs to the close) and its leading number for a lenient parser (Python's
  `int`, which http.server uses, takes `+5` and ` 5 `; a parser that stops at the first non-digit takes
  `5;`): both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sensor.names import from_bytes

REQUEST_LINE = re.compile(rb"([A-Z][A-Z0-9_-]{1,23})[ \t]+([^\s]{1,16384})[ \t]+HTTP/(\d{1,3})\.(\d{1,3})[ \t]*\r?")
# Chromium's ParseStatusLine: "http" in any case, blanks allowed, a missing or odd version read as 1.x
STATUS_LINE = re.compile(rb"[Hh][Tt][Tt][Pp][ \t]*/[ \t]*(\d{1,3})(?:\.(\d{1,3}))?[ \t]+(\d{3})(?:[^\r\n]*)\r?")
HEAD_END = re.compile(rb"\n\r?\n")
CHUNK_SIZE = re.compile(rb"[ \t]*0*([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r?")
PLAIN_STATUS = re.compile(rb"HTTP/1\.[01] \d{3}(?: [^\r\n]*)?\r?")
DIGITS = re.compile(r"[ \t]*([0-9]+)[ \t]*")
LEADING = re.compile(r"[ \t]*\+?([0-9]{1,18})")
TOKEN = re.compile(rb"[^\x00-\x20\x7f:]+")  # a header name as receivers take one: no controls, blanks or colon
MAX_NUMBER = 1 << 62


@dataclass(slots=True)
class Head:
    """One message's start line and headers; `offset` is the stream offset of its start line."""

    offset: int
    request: bool
    method: str | None
    target: str | None
    status: int | None
    headers: dict[str, str]
    version: tuple[int, int] = (1, 1)
    anomalies: list[str] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(frozen=True, slots=True)
class Framing:
    """One reading of where a body ends: `mode` "length" (`length` bytes), "chunked", "close" or "none"."""

    mode: str
    length: int = 0
    label: str = ""


def head_end(data: bytes | bytearray, limit: int) -> tuple[int, int] | None:
    """(end of the head, bytes of its terminator) for the first empty line within `limit` bytes, else None."""
    m = HEAD_END.search(data, 0, limit + 3)
    if m is None:
        return None
    return m.start(), m.end() - m.start()


def parse_head(block: bytes, offset: int) -> Head | None:
    """The start line and headers of `block` (a head without its terminator); None when it is not one."""
    lines = block.split(b"\n")
    first = lines[0]
    m = REQUEST_LINE.fullmatch(first)
    anomalies: list[str] = []
    if m:
        head = Head(offset, True, m.group(1).decode(), from_bytes(m.group(2)), None, {}, _version(m, 3, 4))
        if b"\t" in first or b"  " in first:
            anomalies.append("request_line_blanks")
    else:
        m = STATUS_LINE.fullmatch(first)
        if not m:
            return None
        head = Head(offset, False, None, None, int(m.group(3)), {}, _version(m, 1, 2))
        if not PLAIN_STATUS.fullmatch(first):
            anomalies.append("odd_status_line")
    if head.version[0] != 1 or head.version[1] > 1:
        anomalies.append("odd_version")
    bare_lf = crlf = False
    last: str | None = None
    for line in lines[1:]:
        if line.endswith(b"\r"):
            line, crlf = line[:-1], True
        else:
            bare_lf = True
        if not line:
            continue
        if line[:1] in b" \t":
            if last is not None:  # obsolete folding: Chromium and Firefox join it to the previous value
                anomalies.append("folded_header")
                head.headers[last] = f"{head.headers[last]} {from_bytes(line.strip())}".strip()
            else:
                anomalies.append("junk_header_line")  # a continuation of the start line: ignored
            continue
        raw, sep, value = line.partition(b":")
        name = raw.strip(b" \t")
        if not sep or not name:
            anomalies.append("junk_header_line")
            continue
        if not TOKEN.fullmatch(name):
            anomalies.append("bad_header_name")  # not a token: no receiver takes it as the header it resembles
            last = None
            continue
        if len(name) != len(raw):
            anomalies.append("blank_around_header_name")
        key = from_bytes(name).lower()
        text = from_bytes(value.strip(b" \t\r"))  # exact: an attacker's file name or URL keeps its bytes
        head.headers[key] = f"{head.headers[key]}, {text}" if key in head.headers else text
        last = key
    if bare_lf:
        anomalies.append("bare_lf" if not crlf else "mixed_line_ends")
    head.anomalies = anomalies
    return head


def _version(m: re.Match[bytes], major: int, minor: int) -> tuple[int, int]:
    return int(m.group(major)), int(m.group(minor) or 0)


def framings(head: Head, request: Head | None, response: bool, max_readings: int) -> tuple[list[Framing], int]:
    """The readings of a message's body framing, the stream's own first, and how many more were left out."""
    te_value, cl_value = head.get("transfer-encoding"), head.get("content-length")
    if (
        te_value is None
        and (cl_value is None or (cl_value.isascii() and cl_value.isdigit() and len(cl_value) <= 18))
        and not (response and ((request is not None and request.method == "HEAD") or head.status in (204, 304)))
    ):
        # the common message: one plain length, or none (a response then runs to the close)
        if cl_value is not None and int(cl_value):
            return [Framing("length", int(cl_value), f"length {int(cl_value)}")], 0
        return [Framing("close", label="close") if response and cl_value is None else Framing("none")], 0
    out: list[Framing] = []

    def add(f: Framing) -> None:
        if all((f.mode, f.length) != (g.mode, g.length) for g in out):
            out.append(f)

    if response and (
        (request is not None and request.method == "HEAD")
        or head.status in (204, 304)
        or (head.status is not None and head.status < 200)
    ):
        return [Framing("none")], 0
    te = [t.strip(" \t\r\"'").lower() for t in (head.get("transfer-encoding") or "").split(",")]
    te = [t for t in te if t]
    lengths, junk = _lengths(head.get("content-length"))
    if len(set(lengths)) > 1:
        head.anomalies.append("different_content_lengths")
    elif len(lengths) > 1:
        head.anomalies.append("repeated_content_length")
    if junk:
        head.anomalies.append("bad_content_length")
    if "chunked" in te:
        add(Framing("chunked", label="chunked"))
        if te[-1] != "chunked":
            head.anomalies.append("chunked_not_last")
            if response:
                add(Framing("close", label="close (chunked not last)"))
        elif te != ["chunked"] and response:
            # Python's http.client de-chunks only a value that is exactly "chunked" (any case); else to the close
            head.anomalies.append("chunked_in_a_list")
            add(Framing("close", label="close (Transfer-Encoding not just chunked)"))
        if response and head.version < (1, 1):
            head.anomalies.append("chunked_on_http10")
            add(Framing("close", label="close (chunked ignored on HTTP/1.0)"))
        if lengths or junk:
            head.anomalies.append("content_length_with_chunked")
    elif te and te != ["identity"] and response:
        head.anomalies.append("unknown_transfer_encoding")
    for n in lengths:
        add(Framing("length", n, f"length {n}") if n else Framing("none", label="length 0"))
    for n in (n for n in junk if n is not None):
        add(Framing("length", n, f"length {n} (leading digits)") if n else Framing("none", label="length 0"))
    if junk and not lengths and response:
        add(Framing("close", label="close (no valid length)"))
    if not out:
        out.append(Framing("close", label="close") if response else Framing("none"))
    extra = max(0, len(out) - max_readings)
    return out[:max_readings], extra


def _lengths(value: str | None) -> tuple[list[int], list[int | None]]:
    """(valid Content-Length values in order, leading numbers of the values with junk, None where there is
    none) of a joined header."""
    valid: list[int] = []
    junk: list[int | None] = []
    if value is None:
        return valid, junk
    for part in value.split(","):
        m = DIGITS.fullmatch(part)
        if m and int(m.group(1)) < MAX_NUMBER:
            valid.append(int(m.group(1)))
            continue
        lead = LEADING.match(part)
        junk.append(int(lead.group(1)) if lead else None)
    return valid, junk


def chunk_size(line: bytes) -> int | None:
    """The size on a chunk-size line (blanks, leading zeros, extensions and a bare LF tolerated), else None."""
    m = CHUNK_SIZE.fullmatch(line)
    return int(m.group(1), 16) if m else None


__all__ = ["Framing", "Head", "chunk_size", "framings", "head_end", "parse_head"]
