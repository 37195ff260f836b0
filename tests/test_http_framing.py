"""HTTP/1 framing read the way the other end reads it (issue "HTTP read the way the other end reads it").

Each case is one message bending HTTP/1 the way browsers and common servers still accept, carrying a gzip
member, sent as a request (outbound, an upload) and as a response (inbound, a download), followed on the same
connection by an ordinary exchange. Each checks the body the receiver would decode (its sha256 among the
objects), the member's one finding with its name and layers, that the stream parsed on after it, and the
anomaly counted. Where receivers read the framing differently, each reading is an object labelled with it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zlib

import pytest

from sensor.output.ecs import finding_record, object_record
from tests import netns
from tests.builders import gzip_named, sample_text, zip_archive
from tests.conftest import need
from tests.test_http import capture, ok, run_pcap
from tests.test_http import conv as _conv


def conv(exchanges):
    """A connection of (request, response) pairs sent as they are (odd heads included)."""
    return _conv([[("c2s", req), ("s2c", resp)] for req, resp in exchanges])


MEMBER = gzip_named(sample_text(6000, 5), "ledger.csv")
N = len(MEMBER)
AFTER = b"second body, after the odd one"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _chunks(
    data: bytes, size: int, line: bytes = b"%x\r\n", after: bytes = b"\r\n", last: bytes = b"0\r\n\r\n"
) -> bytes:
    return (
        b"".join(line % len(data[i : i + size]) + data[i : i + size] + after for i in range(0, len(data), size)) + last
    )


# (case, head lines after the start line, body, the anomaly counted, the readings labelled (None: one reading))
HEADS: list[tuple[str, bytes, bytes, str | None, tuple[str, ...] | None]] = [
    ("bare LF", b"Host: x.example\nContent-Length: %d\n\n" % N, MEMBER, "bare_lf", None),
    ("mixed line ends", b"Host: x.example\r\nContent-Length: %d\n\r\n" % N, MEMBER, "mixed_line_ends", None),
    (
        "blank before colon",
        b"Host: x.example\r\nContent-Length : %d\r\n\r\n" % N,
        MEMBER,
        "blank_around_header_name",
        None,
    ),
    (
        "blank before name",
        b"Host: x.example\r\nContent-Length\t:\t%d\r\n\r\n" % N,
        MEMBER,
        "blank_around_header_name",
        None,
    ),
    (
        "folded header",
        b"Host: x.example\r\nContent-Length:\r\n %d\r\n\r\n" % N,
        MEMBER,
        "folded_header",
        None,
    ),
    (
        "control byte in a name",
        b"Host: x.example\r\nContent-Length\x01: 3\r\nContent-Length: %d\r\n\r\n" % N,
        MEMBER,
        "bad_header_name",
        None,
    ),
    (
        "equal lengths",
        b"Host: x.example\r\nContent-Length: %d\r\nContent-Length: %d\r\n\r\n" % (N, N),
        MEMBER,
        "repeated_content_length",
        None,
    ),
    (
        "equal lengths in a list",
        b"Host: x.example\r\nContent-Length: %d, %d\r\n\r\n" % (N, N),
        MEMBER,
        "repeated_content_length",
        None,
    ),
    (
        "different lengths",
        b"Host: x.example\r\nContent-Length: %d\r\nContent-Length: %d\r\n\r\n" % (N, N + 7),
        MEMBER,
        "different_content_lengths",
        (f"length {N}", f"length {N + 7}"),
    ),
    ("plus sign", b"Host: x.example\r\nContent-Length: +%d\r\n\r\n" % N, MEMBER, "bad_content_length", None),
    ("semicolon", b"Host: x.example\r\nContent-Length: %d;\r\n\r\n" % N, MEMBER, "bad_content_length", None),
    ("trailing text", b"Host: x.example\r\nContent-Length: %d bytes\r\n\r\n" % N, MEMBER, "bad_content_length", None),
    (
        "chunked in capitals",
        b"Host: x.example\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
        _chunks(MEMBER, 1000),
        None,
        None,
    ),
    (
        "chunked after a junk token",
        b"Host: x.example\r\nTransfer-Encoding: foo, chunked\r\n\r\n",
        _chunks(MEMBER, 1000),
        None,
        None,
    ),
    (
        "chunked with a length",
        b"Host: x.example\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n",
        _chunks(MEMBER, 1000),
        "content_length_with_chunked",
        ("chunked", "length 40"),
    ),
    (
        "chunk sizes with blanks, zeros and extensions",
        b"Host: x.example\r\nTransfer-Encoding: chunked\r\n\r\n",
        _chunks(MEMBER, 999, line=b" 000%x \t; name=value \r\n", last=b"000 ;x\r\n\r\n"),
        None,
        None,
    ),
    (
        "chunk lines ended by LF",
        b"Host: x.example\r\nTransfer-Encoding: chunked\r\n\r\n",
        _chunks(MEMBER, 1000, line=b"%x\n", after=b"\n", last=b"0\n\n"),
        None,
        None,
    ),
    (
        "no line end after chunk data",
        b"Host: x.example\r\nTransfer-Encoding: chunked\r\n\r\n",
        _chunks(MEMBER, 1000, after=b""),
        "chunk_without_crlf",
        None,
    ),
]


@pytest.mark.parametrize(("case", "lines", "body", "anomaly", "readings"), HEADS, ids=[h[0] for h in HEADS])
@pytest.mark.parametrize("direction", ["request", "response"])
def test_framing_tricks_decode_as_the_receiver_does(
    tmp_path, rule_cache, case, lines, body, anomaly, readings, direction
):
    if direction == "request":
        message = b"POST /up/stage.gz HTTP/1.1\r\n" + lines + body
        exchanges = [
            (message, ok()),
            (b"POST /next HTTP/1.1\r\nHost: x.example\r\nContent-Length: %d\r\n\r\n" % len(AFTER) + AFTER, ok()),
        ]
        kind = "alert"
    else:
        message = b"HTTP/1.1 200 OK\r\n" + lines + body
        get = b"GET /dl/stage.gz HTTP/1.1\r\nHost: x.example\r\n\r\n"
        exchanges = [(get, message), (b"GET /next HTTP/1.1\r\nHost: x.example\r\n\r\n", ok(AFTER))]
        kind = None
    run = run_pcap(rule_cache, capture(tmp_path, conv(exchanges)))
    f = run.one(MEMBER)
    assert f.name == "stage.gz" and not f.member.truncated
    assert f.encoding == (("chunked",) if b"chunked" in lines.lower() else ())
    if kind:
        assert f.kind.value == kind
    objects = {o.sha256: o for o in run.objects}
    assert _sha(MEMBER) in objects, case  # the body as the receiver decodes it
    assert _sha(AFTER) in objects  # and the stream went on after it
    if anomaly:
        assert run.stats.app[f"http.anomaly.{anomaly}"] >= 1
        assert anomaly in finding_record(f)["stagewatch"]["http"]["anomalies"]
    if direction == "response" and anomaly == "bad_content_length":
        # Chromium: no valid length, the body runs to the close; lenient parsers: its leading digits
        readings = (f"length {N} (leading digits)", "close (no valid length)")
    if direction == "response" and b"foo, chunked" in lines:
        # browsers de-chunk; Python's http.client only de-chunks "chunked" alone, else reads to the close
        readings = ("chunked", "close (Transfer-Encoding not just chunked)")
    if readings:
        labelled = {o.app.reading for o in run.objects if o.app and o.app.reading}
        assert labelled == set(readings)
        assert object_record(objects[_sha(MEMBER)])["stagewatch"]["http"]["reading"] in readings
    else:
        assert all(o.app is None or o.app.reading is None for o in run.objects)


STATUS_LINES = [
    (b"HTTP/1.1 200\r\n", None),
    (b"HTTP/1.1\t200\tOK\r\n", "odd_status_line"),
    (b"http/1.1 200 ok\r\n", "odd_status_line"),
    (b"HTTP/1.2 200 OK\r\n", "odd_version"),
    (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\n",
        None,
    ),
]


@pytest.mark.parametrize(
    ("status", "anomaly"), STATUS_LINES, ids=["no reason", "tabs", "lower case", "HTTP/1.2", "interim 1xx"]
)
def test_status_lines_as_browsers_take_them(tmp_path, rule_cache, status, anomaly):
    response = status + b"Content-Length: %d\r\n\r\n" % N + MEMBER
    get = b"GET /dl/stage.gz HTTP/1.1\r\nHost: x.example\r\n\r\n"
    exchanges = [(get, response), (b"GET /next HTTP/1.1\r\nHost: x.example\r\n\r\n", ok(AFTER))]
    run = run_pcap(rule_cache, capture(tmp_path, conv(exchanges)))
    f = run.one(MEMBER)
    assert f.name == "stage.gz" and f.app is not None and f.app.status == 200
    assert {_sha(MEMBER), _sha(AFTER)} <= {o.sha256 for o in run.objects}
    if anomaly:
        assert run.stats.app[f"http.anomaly.{anomaly}"] == 1


@pytest.mark.parametrize(
    ("version", "te", "readings"),
    [
        ("HTTP/1.0", "chunked", {"chunked", "close (chunked ignored on HTTP/1.0)"}),
        ("HTTP/1.1", "chunked, foo", {"chunked", "close (chunked not last)"}),
    ],
)
def test_responses_that_browsers_frame_differently_are_read_both_ways(tmp_path, rule_cache, version, te, readings):
    """Chromium reads an HTTP/1.0 response to the close whatever its Transfer-Encoding; Firefox de-chunks it.
    A body of one chunk: both readings hold the member, found once."""
    body = _chunks(MEMBER, N)
    response = f"{version} 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n".encode() + body
    get = b"GET /dl/stage.gz HTTP/1.1\r\nHost: x.example\r\n\r\n"
    run = run_pcap(rule_cache, capture(tmp_path, conv([(get, response)])))
    f = run.one(MEMBER)
    assert f.name == "stage.gz"
    by_reading = {o.app.reading: o.sha256 for o in run.objects if o.app and o.app.reading}
    assert set(by_reading) == readings
    assert by_reading["chunked"] == _sha(MEMBER) and _sha(body) in by_reading.values()


def test_a_body_that_runs_to_the_close(tmp_path, rule_cache):
    response = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" + MEMBER
    get = b"GET /dl/stage.gz HTTP/1.1\r\nHost: x.example\r\n\r\n"
    run = run_pcap(rule_cache, capture(tmp_path, conv([(get, response)])))
    assert run.one(MEMBER).name == "stage.gz"
    assert _sha(MEMBER) in {o.sha256 for o in run.objects}


def test_readings_past_max_readings_are_counted(tmp_path, rule_cache):
    lengths = ", ".join(str(N + k) for k in range(6)).encode()
    request = b"POST /up/stage.gz HTTP/1.1\r\nHost: x.example\r\nContent-Length: " + lengths + b"\r\n\r\n" + MEMBER
    after = b"POST /next HTTP/1.1\r\nHost: x.example\r\nContent-Length: %d\r\n\r\n" % len(AFTER) + AFTER
    run = run_pcap(rule_cache, capture(tmp_path, conv([(request, ok()), (after, ok())])))
    assert run.one(MEMBER).name == "stage.gz"
    assert len({o.app.reading for o in run.objects if o.app and o.app.reading}) == 4
    assert run.stats.limits["readings"] == 1


# -- content codings as browsers apply them --------------------------------------------------------

PAYLOAD = zip_archive({"q3/ledger.csv": sample_text(20_000, 9)})  # what the codings wrap: a zip, found inside


def _gzip(data: bytes, flags: int = 0, extra: bytes = b"", crc: int | None = None, size: int | None = None) -> bytes:
    """A gzip member with the header fields `flags` names (FEXTRA, FNAME, FCOMMENT, FHCRC, reserved bits)."""
    head = b"\x1f\x8b\x08" + bytes([flags]) + b"\0\0\0\0\0\xff"
    if flags & 4:
        head += len(extra).to_bytes(2, "little") + extra
    if flags & 8:
        head += b"ledger.zip\0"
    if flags & 16:
        head += b"a comment\0"
    if flags & 2:
        head += (zlib.crc32(head) & 0xFFFF).to_bytes(2, "little")
    body = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = body.compress(data) + body.flush()
    crc = zlib.crc32(data) if crc is None else crc
    size = len(data) if size is None else size
    return head + deflated + crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


CODED: list[tuple[str, list[str], bytes, tuple[str, ...], str | None]] = [
    # (case, Content-Encoding header values, body, layers of the payload's finding, anomaly)
    ("two headers", ["gzip", "deflate"], zlib.compress(_gzip(PAYLOAD)), ("deflate", "gzip"), None),
    ("a list", ["deflate, gzip"], _gzip(zlib.compress(PAYLOAD)), ("gzip", "deflate"), None),
    ("unknown token beside gzip", ["gzip, foo"], _gzip(PAYLOAD), ("gzip",), "unknown_content_coding"),
    ("x-gzip", ["x-gzip"], _gzip(PAYLOAD), ("x-gzip",), None),
    ("x-deflate as raw deflate", ["x-deflate"], _raw_deflate(PAYLOAD), ("x-deflate",), None),
    ("identity and junk", ['identity, "gzip";q=1'], _gzip(PAYLOAD), ("gzip",), None),
    ("a CR inside the value", ["gzip\rjunk"], _gzip(PAYLOAD), ("gzip",), None),
    ("FEXTRA FNAME FCOMMENT FHCRC", ["gzip"], _gzip(PAYLOAD, 4 | 8 | 16 | 2, b"AB\x02\x00hi"), ("gzip",), None),
    ("reserved flag bits", ["gzip"], _gzip(PAYLOAD, 0x20 | 8), ("gzip",), "gzip_header_flags"),
    ("two members", ["gzip"], _gzip(PAYLOAD[:5000]) + _gzip(PAYLOAD[5000:]), ("gzip",), "gzip_members"),
    ("wrong CRC", ["gzip"], _gzip(PAYLOAD, crc=0x12345678), ("gzip",), "bad_checksum"),
    ("wrong ISIZE", ["gzip"], _gzip(PAYLOAD, size=7), ("gzip",), "bad_checksum"),
]


@pytest.mark.parametrize(("case", "values", "body", "layers", "anomaly"), CODED, ids=[c[0] for c in CODED])
@pytest.mark.parametrize("direction", ["request", "response"])
def test_content_codings_are_undone_as_browsers_apply_them(
    tmp_path, rule_cache, case, values, body, layers, anomaly, direction
):
    codings = b"".join(b"Content-Encoding: " + v.encode() + b"\r\n" for v in values)
    lines = b"Host: x.example\r\n" + codings + b"Content-Length: %d\r\n\r\n" % len(body)
    if direction == "request":
        exchanges = [(b"POST /up/ledger.zip HTTP/1.1\r\n" + lines + body, ok())]
    else:
        exchanges = [(b"GET /dl/ledger.zip HTTP/1.1\r\nHost: x.example\r\n\r\n", b"HTTP/1.1 200 OK\r\n" + lines + body)]
    run = run_pcap(rule_cache, capture(tmp_path, conv(exchanges)))
    assert _sha(PAYLOAD) in {o.sha256 for o in run.objects}, case  # decoded as the receiver does
    f = run.one(PAYLOAD)
    assert f.name == "ledger.zip" and f.encoding == layers and not f.member.truncated
    if anomaly:
        assert run.stats.app[f"http.anomaly.{anomaly}"] >= 1
        assert anomaly in finding_record(f)["stagewatch"]["http"]["anomalies"]
    if anomaly == "bad_checksum":
        (outer,) = [g for g in run.findings if g.member.format.value == "gzip"]
        assert finding_record(outer)["stagewatch"]["checksum"] == "bad"


def test_a_coded_body_cut_short_is_decoded_as_far_as_it_goes(tmp_path, rule_cache):
    body = _gzip(PAYLOAD)
    cut = body[: len(body) * 2 // 3]
    response = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body) + cut
    run = run_pcap(rule_cache, capture(tmp_path, conv([(b"GET /dl/ledger.zip HTTP/1.1\r\nHost: x\r\n\r\n", response)])))
    decoded = [o for o in run.objects if o.layers == ("gzip",)]
    assert len(decoded) == 1 and decoded[0].truncated and PAYLOAD.startswith(b"PK")
    assert decoded[0].size > 0 and decoded[0].sha256 == _sha(zlib.decompressobj(31).decompress(cut))


def test_when_the_stream_follows_the_wrong_length_the_other_reading_still_holds_the_body(tmp_path, rule_cache):
    """Content-Length: N-100 and N. The stream is parsed by the first; the next "request line" is member bytes,
    so parsing stops there (raw scanning) and the reading by the second length, fed what was buffered, is the
    whole body: the member keeps its name."""
    request = b"POST /up/stage.gz HTTP/1.1\r\nHost: x.example\r\nContent-Length: %d, %d\r\n\r\n" % (N - 100, N)
    run = run_pcap(rule_cache, capture(tmp_path, conv([(request + MEMBER, ok())])))
    f = run.one(MEMBER)
    assert f.name == "stage.gz" and f.app is not None and f.app.reading == f"length {N}"
    assert run.stats.app["http.anomaly.bad_start_line"] == 1


# -- real receivers: Python's http.server (a request's receiver) and http.client (a response's) ------------------

RECEIVERS = r"""
import http.client, http.server, json, socket, sys, threading
from pathlib import Path

work = Path(sys.argv[1])
cases = json.loads((work / "cases.json").read_text())
CLIENT, SERVER = "10.0.0.10", "203.0.113.80"

class Keep(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # the body as http.server's own framing reads it
        body = self.rfile.read(int(self.headers["Content-Length"]))
        (work / (self.path.strip("/") + ".got")).write_bytes(body)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass

srv = http.server.HTTPServer((SERVER, 8082), Keep)
threading.Thread(target=srv.serve_forever, daemon=True).start()
raw = socket.create_server((SERVER, 8081))

def answer():  # sends each canned response as it is, then closes
    for case in cases:
        if case["kind"] == "response":
            conn, _ = raw.accept()
            conn.recv(65536)
            conn.sendall(bytes.fromhex(case["bytes"]))
            conn.close()

threading.Thread(target=answer, daemon=True).start()
for case in cases:
    if case["kind"] == "response":  # the body as http.client's own framing reads it
        c = http.client.HTTPConnection(SERVER, 8081, source_address=(CLIENT, 0), timeout=10)
        c.request("GET", "/dl/stage.gz")
        (work / (case["name"] + ".got")).write_bytes(c.getresponse().read())
        c.close()
    else:
        s = socket.create_connection((SERVER, 8082), source_address=(CLIENT, 0), timeout=10)
        s.sendall(bytes.fromhex(case["bytes"]))
        while s.recv(65536):
            pass
        s.close()
srv.shutdown()
"""


def test_what_real_receivers_decode_is_among_the_objects(tmp_path, rule_cache):
    """Python's http.server and http.client receive odd messages over loopback (captured by tcpdump); the body
    each one decoded must be one of stagewatch's objects (its reading of the other end)."""
    need(netns.missing())
    body = _chunks(MEMBER, 700)
    cases = {
        "r-http10-chunked": ("response", b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body),
        "r-chunked-in-a-list": ("response", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: foo, chunked\r\n\r\n" + body),
        "r-plus-length": ("response", b"HTTP/1.1 200 OK\r\nContent-Length: +%d\r\n\r\n" % N + MEMBER),
        "r-bare-lf": ("response", b"HTTP/1.1 200\nContent-Length: %d\n\n" % N + MEMBER),
        "q-plus-length": ("request", b"Host: x\r\nContent-Length: +%d\r\n\r\n" % N + MEMBER),
        "q-folded-length": ("request", b"Host: x\r\nContent-Length:\r\n %d\r\n\r\n" % N + MEMBER),
        "q-bare-lf": ("request", b"Host: x\nContent-Length: %d\n\n" % N + MEMBER),
    }
    listed = []
    for name, (kind, data) in cases.items():
        if kind == "request":
            data = f"POST /{name} HTTP/1.1\r\n".encode() + data
        listed.append({"name": name, "kind": kind, "bytes": data.hex()})
    (tmp_path / "cases.json").write_text(json.dumps(listed))
    (tmp_path / "receivers.py").write_text(RECEIVERS)
    pcap = tmp_path / "odd.pcap"
    with netns.loopback_capture(pcap, "tcp port 8081 or tcp port 8082") as inside:
        done = inside([sys.executable, str(tmp_path / "receivers.py"), str(tmp_path)], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
    run = run_pcap(rule_cache, pcap)
    objects = {o.sha256 for o in run.objects}
    for name in cases:
        got = (tmp_path / f"{name}.got").read_bytes()
        assert got, name
        assert _sha(got) in objects, f"{name}: the receiver decoded {len(got)} bytes that no reading gave"
    assert _sha(body) in objects and _sha(MEMBER) in objects


@pytest.mark.parametrize("first", [True, False])
def test_a_response_without_a_status_line_is_an_http09_body(tmp_path, rule_cache, first):
    """No status line: the first answer of a connection is HTTP/0.9, its body the rest of the connection,
    named by its request. After a real response it is not (a lying length is suspected: raw scanning)."""
    get = b"GET /dl/stage.gz HTTP/1.1\r\nHost: x.example\r\n\r\n"
    exchanges = [(get, MEMBER)] if first else [(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", ok()), (get, MEMBER)]
    run = run_pcap(rule_cache, capture(tmp_path, conv(exchanges)))
    f = run.one(MEMBER)
    if first:
        assert f.name == "stage.gz" and run.stats.app["http.anomaly.http09_response"] == 1
        assert "http09_response" in finding_record(f)["stagewatch"]["http"]["anomalies"]
    else:
        assert f.name is None and run.stats.app["http.anomaly.bad_start_line"] == 1


def test_a_request_line_with_tabs_and_blanks_is_http_on_any_port(tmp_path, rule_cache):
    request = b"POST\t/up/stage.gz  HTTP/1.1\r\nHost: x.example\r\nContent-Length: %d\r\n\r\n" % N + MEMBER
    c = _conv([[("c2s", request), ("s2c", ok())]], port=4444)
    run = run_pcap(rule_cache, capture(tmp_path, c))
    f = run.one(MEMBER)
    assert f.name == "stage.gz" and f.origin.protocol == "http"
    assert run.stats.app["http.anomaly.request_line_blanks"] == 1


@pytest.mark.parametrize("value", ["\u00b2", "1" * 30])
def test_a_length_of_unicode_digits_or_thirty_digits_is_no_plain_length(tmp_path, rule_cache, value):
    """str.isdigit() is true for '\u00b2' (which int() refuses) and for any count of digits: neither may take
    the plain-length fast path."""
    head = f"POST /up/stage.gz HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\n".encode()
    run = run_pcap(rule_cache, capture(tmp_path, conv([(head + MEMBER, ok())])))
    assert run.one(MEMBER).member.sha256 and run.stats.app["http.anomaly.bad_content_length"] == 1
