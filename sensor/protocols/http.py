"""HTTP/1.x: requests and responses out of both directions, their bodies as objects, unwrapped.

Framing follows RFC 9112 §6: chunked wins over Content-Length; a request without either has no
body; a response without either runs to the close; HEAD, 1xx, 204 and 304 responses have none.
Requests and responses pair in order (pipelining), 1xx responses are interim (100-continue).
A length-framed body is held until the next message's start line shows the length was right:
if it does not (a lying Content-Length), the body and everything after it go to raw scanning,
so a member is never cut at a false boundary.

Wrappings peeled, in order, each one a layer in `stagewatch.encoding`: chunked, the content
codings, then multipart parts (named by filename), urlencoded values, JSON strings whose
escapes hid a run. Query-string values of the request line are objects too.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections import deque
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from sensor.config import Limits
from sensor.content import codings, forms, multipart
from sensor.model import AppMeta, Limit, LimitHit
from sensor.names import from_bytes, to_bytes
from sensor.protocols.base import Wire, extractors

MAX_HEADER = 64 * 1024
MAX_CHUNK_LINE = 1024
MAX_TARGET = 16384
REQUEST_LINE = re.compile(rb"([A-Z][A-Z0-9_-]{1,23}) ([^\s]{1,16384}) HTTP/(\d)\.(\d)\r?$")
STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?:[ \t][^\r\n]*)?\r?$")
SNIFF_REQUEST = re.compile(rb"[A-Z][A-Z0-9_-]{1,23} [^\s]+ HTTP/1\.[01]\r?\n")
# what a request line cut anywhere before its end can look like after a known method: the target, then any
# prefix of " HTTP/1.0" (a sender chooses where its segments end)
PARTIAL_TARGET = re.compile(rb"[^\s]*(?: (?:H(?:T(?:T(?:P(?:/(?:1(?:\.[01]?)?)?)?)?)?)?)?\r?)?")
METHODS = (
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"PROPFIND ",
    b"MKCOL ",
    b"COPY ",
    b"MOVE ",
)
CHUNK_SIZE = re.compile(rb"[ \t]*([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r?$")
DISPOSITION_NAME = re.compile(r"""filename\*?\s*=\s*(?:UTF-8''|"?)([^";]+)""", re.IGNORECASE)
START = re.compile(rb"[A-Z][A-Z0-9_-]{1,23} |HTTP/")  # how a request or status line begins
FORM_CHARS = re.compile(rb"[\x21-\x7e]*")  # urlencoded bodies are printable ASCII without spaces


@dataclass(slots=True)
class Head:
    """One message's start line and headers; `offset` is the stream offset of its start line."""

    offset: int
    request: bool
    method: str | None
    target: str | None
    status: int | None
    headers: dict[str, str]

    def get(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(slots=True)
class Held:
    """A length-framed body waiting for the next start line to confirm its length."""

    offset: int
    data: bytes
    head: Head
    request: Head | None
    stamp: tuple[float, int, str]


@dataclass(slots=True)
class Body:
    """The body being read in one direction."""

    head: Head
    request: Head | None  # for a response: the request it answers
    mode: str  # "length" | "chunked" | "close"
    offset: int  # stream offset of its first byte
    left: int = 0  # length mode: bytes still to come
    data: bytearray | None = None  # chunked: the de-chunked bytes so far
    chunk_left: int = -1  # chunked: bytes left in this chunk (-1: a size line is next)
    trailers: bool = False  # chunked: the last chunk was seen; trailers run to a blank line
    stamp: tuple[float, int, str] | None = None


def _parse_head(block: bytes, offset: int) -> Head | None:
    lines = block.split(b"\n")
    first = lines[0]
    m = REQUEST_LINE.fullmatch(first)
    if m:
        head = Head(offset, True, m.group(1).decode(), from_bytes(m.group(2)), None, {})
    else:
        m = STATUS_LINE.fullmatch(first)
        if not m:
            return None
        head = Head(offset, False, None, None, int(m.group(3)), {})
    for line in lines[1:]:
        line = line.rstrip(b"\r")
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name or name[:1] in b" \t":
            continue  # obsolete folding or junk: skipped, as most servers do
        key = from_bytes(name.strip()).lower()
        text = from_bytes(value.strip())  # exact: an attacker's file name or URL keeps its bytes
        head.headers[key] = f"{head.headers[key]}, {text}" if key in head.headers else text
    return head


def _partial(client: bytes, method: bytes) -> bool:
    """`client` can still become a request line of `method` (it stops anywhere before the line end)."""
    if method.startswith(client):
        return True
    return client.startswith(method) and PARTIAL_TARGET.fullmatch(client, len(method)) is not None


def _name(head: Head, request: Head | None) -> str | None:
    """`file.name`: Content-Disposition's filename, else the URL path's last segment."""
    disp = head.get("content-disposition")
    if disp:
        m = DISPOSITION_NAME.search(disp)
        if m:
            return unquote(m.group(1).strip(), errors="surrogateescape")  # %xx kept as the bytes they are
    target = head.target if head.request else (request.target if request else None)
    if target:
        path = urlsplit(target).path
        last = unquote(path.rsplit("/", 1)[-1], errors="surrogateescape")
        return last or None
    return None


@extractors.register("http")
class Http:
    """HTTP/1.x in both directions; requests and responses paired in order."""

    name: ClassVar[str] = "http"
    ports: ClassVar[frozenset[int]] = frozenset({80, 81, 591, 3128, 8000, 8008, 8080, 8081, 8443, 8888})

    @staticmethod
    def sniff(client: bytes, server: bytes) -> bool | None:
        if client:
            line = client.split(b"\n", 1)
            if SNIFF_REQUEST.match(client):
                return True
            cut = len(line) == 1 and len(client) <= MAX_TARGET + 64  # a request line cut before its end
            if cut and any(_partial(client, m) for m in METHODS):
                return None
            return False
        if server.startswith(b"HTTP/1."):
            return True
        return None if len(server) < 8 and b"HTTP/1."[: len(server)] == server else False

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.limits: Limits = wire.limits
        self.requests: deque[Head] = deque()  # requests waiting for their response
        self.bodies: list[Body | None] = [None, None]
        self.held: list[Held | None] = [None, None]
        self.tunnel = False

    # -- Extractor ----------------------------------------------------------------------------
    def parse(self, d: int) -> None:
        buf = self.wire.buf(d)
        while not self.tunnel:
            body = self.bodies[d]
            if body is not None:
                if not self._body(d, body):
                    break
                continue
            data = buf.data
            skip = len(data) - len(data.lstrip(b"\r\n"))
            if skip:
                # stray CRLFs between messages are skipped (RFC 9112 §2.2), but only before a start
                # line: after a body with a lying length they may be the first bytes of a member
                rest = bytes(data[skip : skip + 32])
                if not rest and not buf.ended:
                    break
                if not rest or START.match(rest):
                    buf.consume(skip)
                    data = buf.data
            if not data:
                if buf.ended:
                    self._release(d)
                break
            end = data.find(b"\r\n\r\n")
            size = 4
            lf = data.find(b"\n\n")
            if lf >= 0 and (end < 0 or lf < end):
                end, size = lf, 2
            if end < 0:
                if len(data) > MAX_HEADER:
                    self._fail(d, "header_too_long")
                elif buf.ended:
                    self._fail(d, "incomplete_header" if self._plausible(data) else "bad_start_line")
                break
            if end > MAX_HEADER:
                self._fail(d, "header_too_long")
                break
            head = _parse_head(bytes(data[:end]), buf.base)
            if head is None or head.request != (d == 0):
                self._fail(d, "bad_start_line")
                break
            self._release(d)  # the held body's length was right
            buf.consume(end + size)
            self._start(d, head)

    def gap(self, d: int) -> None:
        body = self.bodies[d]
        self._release(d)
        if body is not None:
            self.bodies[d] = None
            buf = self.wire.buf(d)
            data = bytes(body.data or b"") if body.mode == "chunked" else bytes(buf.data)
            self._deliver(d, body.head, body.request, body.offset, data, truncated=True, stamp=body.stamp)
            self.wire.count("truncated_bodies")

    # -- messages -----------------------------------------------------------------------------
    def _start(self, d: int, head: Head) -> None:
        buf = self.wire.buf(d)
        request: Head | None = None
        if d == 0:
            self.requests.append(head)
            if len(self.requests) > 1000:
                self.requests.popleft()
                self.wire.anomaly("unanswered_requests")
            self.wire.count("requests")
            self._query(head)
        else:
            if head.status is not None and 100 <= head.status < 200:
                if head.status == 101:
                    self._tunnel()
                return  # interim response (100 Continue): the request waits for its final one
            request = self.requests.popleft() if self.requests else None
            self.wire.count("responses")
            if request is not None and request.method == "CONNECT" and head.status and 200 <= head.status < 300:
                self._tunnel()
                return
        te = (head.get("transfer-encoding") or "").lower()
        length = head.get("content-length")
        no_body = d == 1 and ((request is not None and request.method == "HEAD") or head.status in (204, 304))
        if no_body:
            return
        if "chunked" in te:
            self.bodies[d] = Body(head, request, "chunked", buf.base, data=bytearray())
        elif length is not None:
            try:
                n = int(length.split(",")[0].strip())
                if n < 0:
                    raise ValueError(length)
            except ValueError:
                self.wire.anomaly("bad_content_length")
                n = -1
            if n > 0:
                self.bodies[d] = Body(head, request, "length", buf.base, left=n)
            elif n < 0 and d == 1:
                self.bodies[d] = Body(head, request, "close", buf.base)
            elif n < 0:
                self._fail(d, "bad_content_length")
        elif d == 1:
            self.bodies[d] = Body(head, request, "close", buf.base)

    def _body(self, d: int, body: Body) -> bool:
        """Read as much of the body as is buffered; True when it is done and parsing goes on."""
        buf = self.wire.buf(d)
        if body.stamp is None and buf.data:
            body.stamp = self.wire.stamp(d, buf.base)
        if body.mode == "length":
            if len(buf.data) >= body.left:
                data = bytes(buf.data[: body.left])
                buf.consume(body.left)
                self.bodies[d] = None
                stamp = body.stamp or self.wire.stamp(d, body.offset)
                self.held[d] = Held(body.offset, data, body.head, body.request, stamp)
                return True
            if buf.ended:
                data = bytes(buf.data)
                buf.consume(len(data))
                self.bodies[d] = None
                self._deliver(d, body.head, body.request, body.offset, data, truncated=True, stamp=body.stamp)
                self.wire.count("truncated_bodies")
            return False
        if body.mode == "close":
            if buf.ended:
                data = bytes(buf.data)
                buf.consume(len(data))
                self.bodies[d] = None
                self._deliver(d, body.head, body.request, body.offset, data, truncated=False, stamp=body.stamp)
            return False
        return self._chunked(d, body)

    def _chunked(self, d: int, body: Body) -> bool:
        buf = self.wire.buf(d)
        out = body.data
        assert out is not None
        while True:
            if body.chunk_left > 0:
                take = min(body.chunk_left, len(buf.data))
                if not take:
                    break
                out += buf.data[:take]
                buf.budget.used += take  # type: ignore[attr-defined]
                buf.consume(take)
                body.chunk_left -= take
                continue
            eol = buf.data.find(b"\n")
            if eol < 0:
                if len(buf.data) > MAX_CHUNK_LINE:
                    return self._bad_chunk(d, body)
                break
            line = bytes(buf.data[:eol])
            if body.trailers:
                buf.consume(eol + 1)
                if line.rstrip(b"\r"):
                    continue  # a trailer field
                self._finish_chunked(d, body, truncated=False)
                return True
            if body.chunk_left == 0:  # the CRLF after a chunk's data
                if line.rstrip(b"\r"):
                    return self._bad_chunk(d, body)
                buf.consume(eol + 1)
                body.chunk_left = -1
                continue
            m = CHUNK_SIZE.fullmatch(line)
            if not m:
                return self._bad_chunk(d, body)
            buf.consume(eol + 1)
            size = int(m.group(1), 16)
            if size == 0:
                body.trailers = True
            else:
                body.chunk_left = size
        if buf.ended:
            self._finish_chunked(d, body, truncated=True)
            self.wire.count("truncated_bodies")
        return False

    def _bad_chunk(self, d: int, body: Body) -> bool:
        """A broken chunk size: deliver what was de-chunked, scan the rest of the direction raw."""
        self._finish_chunked(d, body, truncated=True)
        self._fail(d, "bad_chunk_size")
        return False

    def _finish_chunked(self, d: int, body: Body, truncated: bool) -> None:
        data = bytes(body.data or b"")
        buf = self.wire.buf(d)
        buf.budget.used -= len(data)  # type: ignore[attr-defined]
        body.data = None
        self.bodies[d] = None
        self._deliver(d, body.head, body.request, body.offset, data, truncated, ("chunked",), body.stamp)

    def _release(self, d: int) -> None:
        held = self.held[d]
        if held is not None:
            self.held[d] = None
            self._deliver(d, held.head, held.request, held.offset, held.data, False, stamp=held.stamp)

    def _fail(self, d: int, why: str) -> None:
        """Stop parsing d: a held body is not trusted any more and is rescanned raw with the rest."""
        buf = self.wire.buf(d)
        held = self.held[d]
        if held is not None:
            self.held[d] = None
            self.wire.raw(d, held.offset, why, replay=held.data, stamp=held.stamp)
        else:
            self.wire.raw(d, buf.base, why)

    def _tunnel(self) -> None:
        """CONNECT or an Upgrade: what follows is another protocol, scanned raw both ways."""
        self.tunnel = True
        for d in (0, 1):
            self._release(d)
            self.wire.raw(d, self.wire.buf(d).base, None)

    @staticmethod
    def _plausible(data: bytes | bytearray) -> bool:
        return bool(SNIFF_REQUEST.match(data) or data.startswith(b"HTTP/1."))

    # -- objects ------------------------------------------------------------------------------
    def _deliver(
        self,
        d: int,
        head: Head,
        request: Head | None,
        offset: int,
        data: bytes,
        truncated: bool,
        layers: tuple[str, ...] = (),
        stamp: tuple[float, int, str] | None = None,
    ) -> None:
        if not data:
            return
        req = head if head.request else request
        app = AppMeta(
            protocol="http",
            method=req.method if req else None,
            url=req.target if req else None,
            domain=req.get("host") if req else None,
            user_agent=req.get("user-agent") if req else None,
            status=None if head.request else head.status,
        )
        name = _name(head, request)
        ctype = head.get("content-type")
        todo = codings.parse_codings(head.get("content-encoding"))
        declared = codings.CODINGS.get(todo[-1]) if todo else None
        wire = self.wire
        lim = self.limits
        plain = not todo and (multipart.boundary_of(ctype) is not None or self._is_form(ctype, data))
        if len(todo) > lim.max_depth:  # "gzip, gzip, gzip, ..." : a decoding bomb in layers
            wire.stats.limit(LimitHit(Limit.DEPTH, f"{req.target if req else ''} content codings", len(todo)))
            todo = todo[-lim.max_depth :]
        target = req.target if req else ""

        def where(coding: str) -> str:
            return f"{target} {coding} body"

        # each layer is decoded once, before its object is emitted: the verifier proves the member from that decode
        undone = codings.undo(todo[-1], data, lim, where(todo[-1])) if todo else None
        index = wire.emit(
            d,
            offset,
            data,
            name=name,
            truncated=truncated,
            layers=layers,
            app=app,
            declared=declared,
            decoded=undone.member if undone is not None else None,
            stamp=stamp,
            scan=not plain,
        )
        inner, inner_layers = data, layers
        for n, coding in enumerate(reversed(todo)):  # the last coding listed was applied last
            if n:  # an intermediate layer (gzip inside gzip) is itself a member: scanned too
                undone = codings.undo(coding, inner, lim, where(coding))
                wire.emit(
                    d,
                    offset,
                    inner,
                    name=name,
                    truncated=truncated,
                    layers=inner_layers,
                    app=app,
                    layer_offset=0,
                    index=index,
                    stamp=stamp,
                    decoded=undone.member,
                )
            assert undone is not None
            if undone.limit is not None:
                wire.stats.limit(undone.limit)
            if undone.error and not undone.data:
                wire.anomaly("content_coding")
                return
            inner, inner_layers = undone.data, inner_layers + (coding,)
            truncated = truncated or not undone.complete
        if inner is not data:
            plain = multipart.boundary_of(ctype) is not None or self._is_form(ctype, inner)
            wire.emit(
                d,
                offset,
                inner,
                name=name,
                truncated=truncated,
                layers=inner_layers,
                app=app,
                layer_offset=0,
                index=index,
                stamp=stamp,
                scan=not plain,
            )
        self._inside(d, offset, index, inner, inner_layers, ctype, name, truncated, app, stamp)

    def _query(self, head: Head) -> None:
        """Query-string values of a request line are objects of their own (index: the request's)."""
        query = to_bytes(head.target.split("?", 1)[1]) if head.target and "?" in head.target else b""
        values = list(forms.urlencoded(query)) if query else []
        if not values:
            return
        app = AppMeta("http", head.method, head.target, head.get("host"), head.get("user-agent"))
        index = self.wire.next_index(0)
        for n, v in enumerate(values):
            self.wire.emit(0, head.offset, v.data, name=v.name, layers=("query",), app=app, layer_offset=n, index=index)

    @staticmethod
    def _is_form(ctype: str | None, data: bytes) -> bool:
        return bool(
            ctype
            and "x-www-form-urlencoded" in ctype.lower()
            and FORM_CHARS.fullmatch(data[:65536])
            and b"=" in data[:4096]
        )

    def _inside(
        self,
        d: int,
        offset: int,
        index: int,
        data: bytes,
        layers: tuple[str, ...],
        ctype: str | None,
        name: str | None,
        truncated: bool,
        app: AppMeta,
        stamp: tuple[float, int, str] | None,
    ) -> None:
        """Multipart parts, form values and JSON strings of a (decoded) body, each an object."""
        wire = self.wire
        boundary = multipart.boundary_of(ctype)
        if boundary:
            split = multipart.split(data, boundary)
            if split.anomaly:
                wire.anomaly("multipart")
            if not split.parts:
                # nothing parsed: the body was not scanned whole, so it is scanned now
                wire.emit(d, offset, data, name=name, truncated=truncated, layers=layers, app=app, index=index)
                return
            for part in split.parts:
                piece = data[part.start : part.end]
                part_layers = layers + ("multipart",)
                cte = part.transfer_encoding
                if cte == "base64":
                    try:
                        piece = base64.b64decode(re.sub(rb"\s+", b"", piece) + b"==")
                        part_layers += ("base64",)
                    except (binascii.Error, ValueError):
                        wire.anomaly("part_base64")
                elif cte == "quoted-printable":
                    piece = quopri.decodestring(piece)
                    part_layers += ("quoted-printable",)
                wire.emit(
                    d,
                    offset,
                    piece,
                    name=part.filename or name,
                    truncated=truncated or not part.complete,
                    layers=part_layers,
                    app=app,
                    layer_offset=part.start,
                    index=index,
                    stamp=stamp,
                )
            return
        if self._is_form(ctype, data):
            for n, v in enumerate(forms.urlencoded(data)):
                form_layers = layers + ("urlencoded",)
                wire.emit(d, offset, v.data, name=v.name, layers=form_layers, app=app, layer_offset=n, index=index)
            return
        if forms.looks_json(ctype, data):
            for n, v in enumerate(forms.json_strings(data)):
                wire.emit(
                    d, offset, v.data, name=v.name, layers=layers + ("json",), app=app, layer_offset=n, index=index
                )


__all__ = ["Http"]
