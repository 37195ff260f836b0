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
import hashlib
import quopri
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from sensor.config import Limits
from sensor.content import codings, forms, multipart
from sensor.model import AppMeta, Limit, LimitHit
from sensor.names import to_bytes
from sensor.protocols import websocket
from sensor.protocols.base import Wire, extractors
from sensor.protocols.http_head import Framing, Head, chunk_size, framings, head_end, parse_head
from sensor.protocols.identity import Identities, ntlm

MAX_HEADER = 64 * 1024
MAX_CHUNK_LINE = 1024
MAX_TARGET = 16384
SNIFF_REQUEST = re.compile(rb"[A-Z][A-Z0-9_-]{1,23}[ \t]+[^\s]+[ \t]+HTTP/1\.\d{1,3}[ \t]*\r?\n")
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
DISPOSITION_NAME = re.compile(r"""filename\*?\s*=\s*(?:UTF-8''|"?)([^";]+)""", re.IGNORECASE)
START = re.compile(rb"[A-Z][A-Z0-9_-]{1,23}[ \t]|[Hh][Tt][Tt][Pp][ \t]*/")  # how a request or status line begins
FORM_CHARS = re.compile(rb"[\x21-\x7e]*")  # urlencoded bodies are printable ASCII without spaces
# a Fernet token, or five dot-separated base64url parts (JWE compact; a JWS has three): the head is scanned
TOKEN_HINT = re.compile(rb"gAAAAA|eyJ[\w-]+\.[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+")


@dataclass(slots=True)
class Message:
    """What the readings of one message share: its object index and the bodies already delivered."""

    anomalies: tuple[str, ...]
    readings: bool  # receivers read its framing differently: each body says which reading gave it
    index: int | None = None
    delivered: set[bytes] = field(default_factory=set)  # digests of the bodies emitted (one per distinct body)
    found: set[str] = field(default_factory=set)  # members found in its readings (the detector fills it)


@dataclass(slots=True)
class Held:
    """A length-framed body waiting for the next start line to confirm its length."""

    offset: int
    data: bytes
    head: Head
    request: Head | None
    stamp: tuple[float, int, str]
    message: Message
    label: str


@dataclass(slots=True)
class Body:
    """The body being read in one direction."""

    head: Head
    request: Head | None  # for a response: the request it answers
    mode: str  # "length" | "chunked" | "close"
    offset: int  # stream offset of its first byte
    message: Message
    label: str = ""
    left: int = 0  # length mode: bytes still to come
    data: bytearray | None = None  # chunked: the de-chunked bytes so far
    chunk_left: int = -1  # chunked: bytes left in this chunk (-1: a size line is next)
    trailers: bool = False  # chunked: the last chunk was seen; trailers run to a blank line
    stamp: tuple[float, int, str] | None = None


@dataclass(slots=True)
class Shadow:
    """Another receiver's reading of a body (a length, or to the close), collected beside the stream's own."""

    framing: Framing
    head: Head
    request: Head | None
    offset: int
    message: Message
    data: bytearray = field(default_factory=bytearray)
    stamp: tuple[float, int, str] | None = None


def _http09(data: bytes | bytearray, ended: bool) -> bool | None:
    """Whether a response direction starts without a status line (True), with one (False), or cannot tell yet."""
    head = bytes(data[:4]).lower()
    if b"http"[: len(head)] != head:
        return True
    return None if len(head) < 4 and not ended else False


def _upgrade(head: Head | None) -> bool:
    """The message asks for (or agrees to) a WebSocket: `Upgrade: websocket`, in any case."""
    return head is not None and "websocket" in (head.get("upgrade") or "").lower()


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
        self.shadows: list[list[Shadow]] = [[], []]
        self.tunnel = False
        self.upgrading = False  # a WebSocket Upgrade request waits for its answer: what follows it is not HTTP yet
        self.answered = False  # a final response was seen (only the first may be an HTTP/0.9 one)
        self.ws: tuple[websocket.Reader, websocket.Reader] | None = None
        self.ws_app: AppMeta | None = None
        self.ws_name: str | None = None

    # -- Extractor ----------------------------------------------------------------------------
    def parse(self, d: int) -> None:
        buf = self.wire.buf(d)
        if self.ws is not None:
            self._frames(d)
            return
        while not self.tunnel:
            body = self.bodies[d]
            if body is not None:
                if not self._body(d, body):
                    break
                continue
            if d == 0 and self.upgrading:
                if buf.ended:
                    self._fail(0, "upgrade_unanswered")
                break
            data = buf.data
            skip = len(data) - len(data.lstrip(b"\r\n"))
            if skip:
                # stray CRLFs between messages are skipped (RFC 9112 §2.2), but only before a start
                # line: after a body with a lying length they may be the first bytes of a member
                rest = bytes(data[skip : skip + 32])
                if not rest and not buf.ended:
                    break
                if not rest or START.match(rest):
                    self._take(d, skip)
                    data = buf.data
            if not data:
                if buf.ended:
                    self._release(d)
                break
            if d == 1 and not self.answered and self.requests and self.held[1] is None:
                http09 = _http09(data, buf.ended)
                if http09 is None:
                    break  # too few bytes to tell a status line from a body
                if http09:
                    # no status line: an HTTP/0.9 answer, its body the whole rest (Chromium still takes one on
                    # a default port, and the other end is the attacker's own program anyway)
                    self._start(1, Head(buf.base, False, None, None, 200, {}, (0, 9), ["http09_response"]))
                    continue
            found = head_end(data, MAX_HEADER)
            if found is None:
                if len(data) > MAX_HEADER:
                    self._fail(d, "header_too_long")
                elif buf.ended:
                    self._fail(d, "incomplete_header" if self._plausible(data) else "bad_start_line")
                break
            end, size = found
            block = bytes(data[:end])
            head = parse_head(block, buf.base)
            if head is None or head.request != (d == 0):
                self._fail(d, "bad_start_line")
                break
            if TOKEN_HINT.search(block):
                self._head_object(d, block, head)
            self._release(d)  # the held body's length was right
            self._take(d, end + size)
            self._start(d, head)
        if buf.ended and self.bodies[d] is None:
            self._flush_shadows(d, truncated=False)

    def gap(self, d: int) -> bool | None:
        if self.ws is not None:
            buf = self.wire.buf(d)
            _, messages, _ = self.ws[d].feed(buf.data, buf.base, True)  # what came before the gap, a cut frame too
            for msg in messages:
                self._ws_message(d, msg, self.wire.stamp(d, msg.offset))
            msg = self.ws[d].gap()
            if msg is not None:
                self._ws_message(d, msg)
            self.wire.count("websocket.gaps")
            return True  # frames are taken up again past the gap (websocket.Reader checks they are frames)
        body = self.bodies[d]
        self._release(d)
        self._flush_shadows(d, truncated=True)
        if body is not None:
            self.bodies[d] = None
            buf = self.wire.buf(d)
            data = bytes(body.data or b"") if body.mode == "chunked" else bytes(buf.data)
            self._deliver(
                d, body.head, body.request, body.offset, data, True, body.message, body.label, stamp=body.stamp
            )
            self.wire.count("truncated_bodies")

    # -- messages -----------------------------------------------------------------------------
    def _start(self, d: int, head: Head) -> None:
        buf = self.wire.buf(d)
        request: Head | None = None
        if d == 0:
            self._authorization(head)
            self.requests.append(head)
            if len(self.requests) > 1000:
                self.requests.popleft()
                self.wire.anomaly("unanswered_requests")
            self.wire.count("requests")
            self._query(head)
            self.upgrading = _upgrade(head)
        else:
            if head.status is not None and 100 <= head.status < 200:
                for what in head.anomalies:
                    self.wire.anomaly(what)
                if head.status == 101:
                    request = self.requests[0] if self.requests else None
                    if _upgrade(request) and _upgrade(head):
                        self._websocket(request, head)
                    else:
                        self._tunnel()
                return  # interim response (100 Continue, 102, 103): the request waits for its final one
            request = self.requests.popleft() if self.requests else None
            self.wire.count("responses")
            self.answered = True
            if self.upgrading and not self.requests:
                self.upgrading = False  # refused (not 101): the client's bytes are HTTP again
                if self.wire.buf(0).data or self.wire.buf(0).ended:
                    self.parse(0)
            if request is not None and request.method == "CONNECT" and head.status and 200 <= head.status < 300:
                self._tunnel()
                return
        readings, extra = framings(head, request, d == 1, self.limits.max_readings)
        for what in head.anomalies:
            self.wire.anomaly(what)
        if extra:
            target = (head if head.request else request or head).target or ""
            self.wire.stats.limit(LimitHit(Limit.READINGS, f"{target} framings", len(readings) + extra))
        message = Message(tuple(dict.fromkeys(head.anomalies)), len(readings) > 1)
        first = readings[0]
        if first.mode == "chunked":
            self.bodies[d] = Body(head, request, "chunked", buf.base, message, first.label, data=bytearray())
        elif first.mode == "length":
            self.bodies[d] = Body(head, request, "length", buf.base, message, first.label, left=first.length)
        elif first.mode == "close":
            self.bodies[d] = Body(head, request, "close", buf.base, message, first.label)
        for other in readings[1:]:
            if other.mode in ("length", "close"):
                self.shadows[d].append(Shadow(other, head, request, buf.base, message))
        if len(readings) > 1:
            self.wire.count("readings", len(readings))

    def _take(self, d: int, n: int) -> None:
        """Consume n bytes of direction d, handing them to the other readings still collecting."""
        buf = self.wire.buf(d)
        if self.shadows[d]:
            self._feed(d, buf.data[:n])
        buf.consume(n)

    def _feed(self, d: int, piece: bytes | bytearray) -> None:
        buf = self.wire.buf(d)
        for shadow in list(self.shadows[d]):
            if shadow.stamp is None and piece:
                shadow.stamp = self.wire.stamp(d, shadow.offset)
            want = len(piece)
            if shadow.framing.mode == "length":
                want = min(want, shadow.framing.length - len(shadow.data))
            shadow.data += piece[:want]
            buf.budget.used += want  # type: ignore[attr-defined]
            if shadow.framing.mode == "length" and len(shadow.data) >= shadow.framing.length:
                self.shadows[d].remove(shadow)
                self._deliver_shadow(d, shadow, truncated=False)

    def _flush_shadows(self, d: int, truncated: bool) -> None:
        """The direction ended (or parsing stopped): each other reading gets what is buffered and is delivered;
        `truncated`: the stream goes on beyond the buffer unseen by them (a gap, raw scanning, a tunnel)."""
        if not self.shadows[d]:
            return
        buf = self.wire.buf(d)
        self._feed(d, buf.data)  # real stream bytes: a reading the stream's own one could not follow needs them
        for shadow in self.shadows[d]:
            short = shadow.framing.mode == "length" and len(shadow.data) < shadow.framing.length
            self._deliver_shadow(d, shadow, short or (truncated and shadow.framing.mode == "close"))
        self.shadows[d] = []

    def _deliver_shadow(self, d: int, shadow: Shadow, truncated: bool) -> None:
        data = bytes(shadow.data)
        self.wire.buf(d).budget.used -= len(data)  # type: ignore[attr-defined]
        shadow.data = bytearray()
        label = shadow.framing.label
        self._deliver(
            d, shadow.head, shadow.request, shadow.offset, data, truncated, shadow.message, label, stamp=shadow.stamp
        )

    def _body(self, d: int, body: Body) -> bool:
        """Read as much of the body as is buffered; True when it is done and parsing goes on."""
        buf = self.wire.buf(d)
        if body.stamp is None and buf.data:
            body.stamp = self.wire.stamp(d, buf.base)
        if body.mode == "length":
            if len(buf.data) >= body.left:
                data = bytes(buf.data[: body.left])
                self._take(d, body.left)
                self.bodies[d] = None
                stamp = body.stamp or self.wire.stamp(d, body.offset)
                self.held[d] = Held(body.offset, data, body.head, body.request, stamp, body.message, body.label)
                return True
            if buf.ended:
                data = bytes(buf.data)
                self._take(d, len(data))
                self.bodies[d] = None
                self._deliver(
                    d, body.head, body.request, body.offset, data, True, body.message, body.label, stamp=body.stamp
                )
                self.wire.count("truncated_bodies")
            return False
        if body.mode == "close":
            if buf.ended:
                data = bytes(buf.data)
                self._take(d, len(data))
                self.bodies[d] = None
                self._deliver(
                    d, body.head, body.request, body.offset, data, False, body.message, body.label, stamp=body.stamp
                )
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
                self._take(d, take)
                body.chunk_left -= take
                continue
            eol = buf.data.find(b"\n")
            if eol < 0:
                if len(buf.data) > MAX_CHUNK_LINE:
                    return self._bad_chunk(d, body)
                break
            line = bytes(buf.data[:eol])
            if body.trailers:
                self._take(d, eol + 1)
                if line.rstrip(b"\r"):
                    continue  # a trailer field
                self._finish_chunked(d, body, truncated=False)
                return True
            if body.chunk_left == 0:  # the CRLF after a chunk's data
                body.chunk_left = -1
                if not line.rstrip(b"\r"):
                    self._take(d, eol + 1)
                    continue
                if chunk_size(line) is None:
                    return self._bad_chunk(d, body)
                # no line end after the data, the next size line at once: read on, as lenient receivers do
                self.wire.anomaly("chunk_without_crlf")
                body.message.anomalies += ("chunk_without_crlf",)
            size = chunk_size(line)
            if size is None:
                return self._bad_chunk(d, body)
            self._take(d, eol + 1)
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
        self._deliver(
            d, body.head, body.request, body.offset, data, truncated, body.message, body.label, ("chunked",), body.stamp
        )

    def _release(self, d: int) -> None:
        held = self.held[d]
        if held is not None:
            self.held[d] = None
            self._deliver(
                d, held.head, held.request, held.offset, held.data, False, held.message, held.label, stamp=held.stamp
            )

    def _fail(self, d: int, why: str) -> None:
        """Stop parsing d: a held body is not trusted any more and is rescanned raw with the rest."""
        buf = self.wire.buf(d)
        self._flush_shadows(d, truncated=True)
        held = self.held[d]
        if held is not None:
            self.held[d] = None
            found = held.message.found if held.message.readings else None
            self.wire.raw(d, held.offset, why, replay=held.data, stamp=held.stamp, found_alike=found)
        else:
            self.wire.raw(d, buf.base, why)

    def _websocket(self, request: Head | None, response: Head) -> None:
        """A 101 answer to a WebSocket Upgrade: both directions are frames from here (sensor/protocols/websocket)."""
        self.upgrading = False
        if self.requests:
            self.requests.popleft()  # answered
        for d in (0, 1):
            self._release(d)
            self._flush_shadows(d, truncated=True)
        client, server = websocket.negotiate(response.get("sec-websocket-extensions"))
        lim = self.limits
        self.ws = (
            websocket.Reader(client, True, lim.stream_depth, lim.max_encoded),
            websocket.Reader(server, False, lim.stream_depth, lim.max_encoded),
        )
        self.ws_app = AppMeta(
            "http",
            method=request.method if request else None,
            url=request.target if request else None,
            domain=request.get("host") if request else None,
            user_agent=request.get("user-agent") if request else None,
            status=101,
        )
        self.ws_name = _name(request, None) if request else None
        self.wire.count("websockets")
        for d in (0, 1):
            if self.wire.buf(d).data or self.wire.buf(d).ended:
                self._frames(d)

    def _frames(self, d: int) -> None:
        assert self.ws is not None
        buf = self.wire.buf(d)
        used, messages, stop = self.ws[d].feed(buf.data, buf.base, buf.ended)
        for msg in messages:
            self._ws_message(d, msg, self.wire.stamp(d, msg.offset))
        if stop is not None:
            self.wire.raw(d, stop.offset, f"websocket_{stop.why}")
            return
        buf.consume(used)

    def _ws_message(self, d: int, msg: websocket.Message, stamp: tuple[float, int, str] | None = None) -> None:
        """One WebSocket message, an object scanned like an HTTP body (layers `websocket`, `permessage-deflate`)."""
        app = self.ws_app or AppMeta("http")
        for what in msg.anomalies:
            self.wire.anomaly(what)
        if msg.anomalies:
            app = replace(app, anomalies=msg.anomalies)
        reader = self.ws[d] if self.ws is not None else None
        if reader is not None and reader.capped:
            reader.capped = False
            where = f"{app.url or ''} websocket message"
            self.wire.stats.limit(LimitHit(Limit.OUTPUT_BYTES, where, self.limits.max_encoded))
        if not msg.data:
            return
        layers = ("websocket", "permessage-deflate") if msg.compressed else ("websocket",)
        self.wire.count("websocket.messages")
        index = self.wire.emit(
            d, msg.offset, msg.data, name=self.ws_name, truncated=msg.truncated, layers=layers, app=app, stamp=stamp
        )
        if forms.looks_json(None, msg.data):
            self._inside(
                self.wire.emit, d, msg.offset, index, msg.data, layers, None, self.ws_name, msg.truncated, app, stamp
            )

    def _tunnel(self) -> None:
        """CONNECT or an Upgrade: what follows is another protocol, scanned raw both ways."""
        self.tunnel = True
        for d in (0, 1):
            self._release(d)
            self._flush_shadows(d, truncated=True)
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
        message: Message,
        label: str,
        layers: tuple[str, ...] = (),
        stamp: tuple[float, int, str] | None = None,
    ) -> None:
        if not data:
            return
        if message.readings:
            digest = hashlib.blake2b(data, digest_size=16).digest()
            if digest in message.delivered:
                self.wire.count("readings_alike")  # another reading gave the same bytes: one object
                return
            message.delivered.add(digest)
        req = head if head.request else request
        todo, unknown = codings.parse_codings(head.get("content-encoding"))
        anomalies = message.anomalies
        if unknown:
            self.wire.anomaly("unknown_content_coding")
            anomalies += ("unknown_content_coding",)
        app = AppMeta(
            protocol="http",
            method=req.method if req else None,
            url=req.target if req else None,
            domain=req.get("host") if req else None,
            user_agent=req.get("user-agent") if req else None,
            status=None if head.request else head.status,
            reading=label if message.readings else None,
            anomalies=anomalies,
        )
        name = _name(head, request)
        ctype = head.get("content-type")
        emit = partial(self.wire.emit, found_alike=message.found if message.readings else None)
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
        index = emit(
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
            index=message.index,
        )
        message.index = index
        inner, inner_layers = data, layers
        for n, coding in enumerate(reversed(todo)):  # the last coding listed was applied last
            if n:  # an intermediate layer (gzip inside gzip) is itself a member: scanned too
                undone = codings.undo(coding, inner, lim, where(coding))
                emit(
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
            if undone.anomalies:
                for what in undone.anomalies:
                    wire.anomaly(what)
                app = replace(app, anomalies=tuple(dict.fromkeys(app.anomalies + undone.anomalies)))
            if undone.error and not undone.data:
                wire.anomaly("content_coding")
                return
            inner, inner_layers = undone.data, inner_layers + (coding,)
            truncated = truncated or not undone.complete
        if inner is not data:
            plain = multipart.boundary_of(ctype) is not None or self._is_form(ctype, inner)
            emit(
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
        self._inside(emit, d, offset, index, inner, inner_layers, ctype, name, truncated, app, stamp)

    def _head_object(self, d: int, block: bytes, head: Head) -> None:
        """A head carrying what looks like an encrypted token (a Fernet cookie, a JWE bearer) is scanned as an
        object of its own: tokens travel in headers, and a body-only reading would never see them."""
        app = AppMeta("http", head.method, head.target, head.get("host"), head.get("user-agent"), head.status)
        self.wire.emit(d, head.offset, block, name="headers", layers=("header",), app=app)

    def _authorization(self, head: Head) -> None:
        """`Authorization: NTLM|Negotiate <base64>`: an NTLMSSP AUTHENTICATE names the client's workstation."""
        auth = head.get("authorization")
        identities = self.wire.shared.get("identities")
        if not auth or not isinstance(identities, Identities):
            return
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() not in ("ntlm", "negotiate") or len(token) < 40:
            return
        try:
            blob = base64.b64decode(token.strip() + "=" * (-len(token.strip()) % 4))
        except (ValueError, binascii.Error):
            return
        ts, packet, source = self.wire.stamp(0, head.offset)
        origin = replace(self.wire.origin(0), ts=ts, packet=packet, source=source)
        found = ntlm.identity(blob, origin, "HTTP Authorization")
        if found is not None:
            identities.add(found)

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
        emit: Callable[..., int],
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
                emit(d, offset, data, name=name, truncated=truncated, layers=layers, app=app, index=index)
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
                emit(
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
                emit(d, offset, v.data, name=v.name, layers=form_layers, app=app, layer_offset=n, index=index)
            return
        if forms.looks_json(ctype, data):
            for n, v in enumerate(forms.json_strings(data)):
                emit(d, offset, v.data, name=v.name, layers=layers + ("json",), app=app, layer_offset=n, index=index)


__all__ = ["Http"]
