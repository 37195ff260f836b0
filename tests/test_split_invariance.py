"""Any split of the same bytes gives the same objects and findings (issue "Hostile input"): an attacker chooses
where segments end, so HTTP, SMTP and FTP must not depend on it. Hypothesis cuts every send of a connection
at random points and hands the layers above chunks as small as one byte; the objects (hash, name, layers,
index) and the findings (event.id) must be those of the same connection sent whole.

Reassembly's own split invariance (reordering, overlaps, duplicates) is tests/test_flow_diff.py's."""

from __future__ import annotations

import base64
import bz2
import dataclasses
import gzip
import io
import lzma
import random
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensor.config import Limits, Settings
from sensor.model import Finding, ObjectRecord, Segment
from sensor.netscan import NetScanner
from sensor.stats import RunStats
from tests import appbuild as ab
from tests import wsbuild as ws

CLIENT, SERVER = bytes([10, 0, 0, 5]), bytes([203, 0, 113, 80])
ROWS = b"".join(b"%d,customer %d,%d.00\n" % (i, i, i * 37 % 1000) for i in range(300))
RNG = random.Random(3)
Sends = list[tuple[int, bytes]]  # (direction, bytes) in sending order


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("export/rows.csv", ROWS + RNG.randbytes(500))
    return buf.getvalue()


def _http() -> list[tuple[int, bytes]]:
    ctype, body = ab.multipart([ab.Part("note", b"hi"), ab.Part("file", _zip(), filename="q3.zip")])
    up = ab.http_request("POST", "/upload", "files.example.net", body, [("Content-Type", ctype)], chunked=True)
    js = ab.json_body({"d": base64.b64encode(gzip.compress(ROWS + RNG.randbytes(300))).decode()})
    api = ab.http_request("POST", "/api", "api.example.net", js, [("Content-Type", "application/json")])
    down = ab.http_response(200, gzip.compress(ROWS), [("Content-Encoding", "gzip")], chunked=True, chunk_size=700)
    return [(0, up), (1, ab.http_response(200, b"ok")), (0, api), (1, down)]


def _http_odd() -> list[tuple[int, bytes]]:
    """Framings read two ways (chunked with a Content-Length; a chunked HTTP/1.0 response), then a WebSocket with
    permessage-deflate (context takeover), a message fragmented around a ping, and the server's frames."""
    member = gzip.compress(ROWS + RNG.randbytes(300))
    chunked = b"".join(
        b"%x\r\n" % len(member[i : i + 500]) + member[i : i + 500] + b"\r\n" for i in range(0, len(member), 500)
    )
    up = b"POST /up/x.gz HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    up += b"0\r\n\r\n"
    down = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n" + chunked + b"0\r\n\r\n"
    z = ws.Compressor()
    text = b'{"d": "' + base64.b64encode(lzma.compress(ROWS)) + b'"}'
    frames = [
        (0, ws.frame(2, z.message(member), rsv1=True, mask=1)),
        (0, ws.frame(1, z.message(text[:300]), rsv1=True, fin=False, mask=2)),
        (0, ws.frame(9, b"ping", mask=3)),
        (0, ws.frame(0, z.message(text[300:]), mask=4)),
        (1, ws.frame(2, bz2.compress(ROWS))),
    ]
    return [
        (0, up), (1, ab.http_response(200, b"ok")), (0, b"GET /d HTTP/1.1\r\nHost: x\r\n\r\n"), (1, down),
        (0, ws.upgrade_request(deflate=True)), (1, ws.upgrade_response("permessage-deflate")), *frames,
    ]  # fmt: skip


def _smtp() -> list[tuple[int, bytes]]:
    attachments = [ab.Attachment("rows.xz", lzma.compress(ROWS + RNG.randbytes(200)))]
    msg = ab.smtp_message("a@example.org", ["b@example.net"], "rows", "see attached", attachments)
    return [(1, b"220 mx ESMTP\r\n"), (0, b"EHLO ws\r\n"), (1, b"250-mx\r\n250 CHUNKING\r\n"),
            (0, b"MAIL FROM:<a@example.org>\r\n"), (1, b"250 ok\r\n"), (0, b"RCPT TO:<b@example.net>\r\n"),
            (1, b"250 ok\r\n"), (0, b"DATA\r\n"), (1, b"354 go\r\n"), (0, ab.dot_stuff(msg) + b"\r\n.\r\n"),
            (1, b"250 queued\r\n"), (0, b"QUIT\r\n"), (1, b"221 bye\r\n")]  # fmt: skip


def _ftp() -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]:
    control = [(1, b"220 ftp\r\n"), (0, b"USER u\r\n"), (1, b"331 pw\r\n"), (0, b"PASS p\r\n"), (1, b"230 in\r\n"),
               (0, b"PASV\r\n"), (1, b"227 Entering Passive Mode (203,0,113,80,195,80)\r\n"),
               (0, b"STOR stage_df00.bz2\r\n"), (1, b"150 ok\r\n"), (1, b"226 done\r\n"), (0, b"QUIT\r\n")]  # fmt: skip
    return control, [(0, bz2.compress(ROWS + RNG.randbytes(400)))]


def _segments(sends: Sends, ports: tuple[int, int], cuts: list[list[int]], t0: float, step: float) -> list[Segment]:
    """A connection: handshake at `t0`, send k at `t0 + (k + 1) * step` cut where `cuts` says (its pieces a
    microsecond apart, so other connections interleave the same whatever the cuts), then FIN both ways."""
    isn = [1000, 5000]
    nxt = [1, 1]
    out: list[Segment] = []

    def seg(ts: float, d: int, flags: int, payload: bytes = b"", seq_add: int = 0) -> None:
        src, dst, sp, dp = (CLIENT, SERVER, *ports) if d == 0 else (SERVER, CLIENT, ports[1], ports[0])
        seq = (isn[d] + nxt[d] + seq_add) & 0xFFFFFFFF
        out.append(Segment(ts, len(out) + 1, src, dst, sp, dp, 6, seq, flags, payload))

    seg(t0, 0, 0x02, seq_add=-1)
    seg(t0 + 1e-7, 1, 0x12, seq_add=-1)
    for k, ((d, data), points) in enumerate(zip(sends, cuts, strict=True)):
        edges = [0, *sorted({p for p in points if 0 < p < len(data)}), len(data)]
        for n, (a, b) in enumerate(zip(edges, edges[1:], strict=False)):
            seg(t0 + (k + 1) * step + n * 1e-7, d, 0x18, data[a:b])
            nxt[d] += b - a
    end = t0 + (len(sends) + 1) * step
    seg(end, 0, 0x11)
    seg(end + 1e-7, 1, 0x11)
    return out


def _run(detector: object, conns: list[list[Segment]], chunk_size: int) -> tuple[list, list]:
    limits = dataclasses.replace(Limits(), chunk_size=chunk_size)
    net = NetScanner(Settings(limits=limits, objects=True, home_net=("10.0.0.0/8",)), detector, RunStats())
    net.table.source = "split.pcap"
    results = []
    for seg in sorted((s for c in conns for s in c), key=lambda s: s.ts):  # stable: a connection keeps its order
        net.table.process(seg)
        results += net.out
        net.out.clear()
    results += list(net.finish())
    objects = sorted((r.sha256, r.name, r.layers, r.index, r.origin.client_to_server) for r in results
                     if isinstance(r, ObjectRecord))  # fmt: skip
    findings = sorted(r.event_id for r in results if isinstance(r, Finding))
    return objects, findings


def _cuts(data: st.DataObject, sends: list[tuple[int, bytes]]) -> list[list[int]]:
    return [data.draw(st.lists(st.integers(1, max(1, len(b) - 1)), max_size=12)) for _, b in sends]


Conv = tuple[Sends, tuple[int, int], float, float]  # sends, ports, start, seconds between sends


def _check(default_detector: object, data: st.DataObject, convs: list[Conv]) -> None:
    whole = [_segments(s, p, [[] for _ in s], t0, step) for s, p, t0, step in convs]
    want = _run(default_detector, whole, 64 * 1024)
    assert want[0] and want[1], "the connection carries objects and members"
    split = [_segments(s, p, _cuts(data, s), t0, step) for s, p, t0, step in convs]
    chunk = data.draw(st.sampled_from([1, 2, 3, 7, 64, 1460, 64 * 1024]))
    assert _run(default_detector, split, chunk) == want


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HTTP, HTTP_ODD, SMTP, FTP = _http(), _http_odd(), _smtp(), _ftp()


@SETTINGS
@given(data=st.data())
def test_http_objects_do_not_depend_on_where_segments_end(default_detector, data):
    _check(default_detector, data, [(HTTP, (40000, 80), 100.0, 0.001)])


@SETTINGS
@given(data=st.data())
def test_http_readings_and_websocket_messages_do_not_depend_on_where_segments_end(default_detector, data):
    _check(default_detector, data, [(HTTP_ODD, (40004, 80), 100.0, 0.001)])


@SETTINGS
@given(data=st.data())
def test_smtp_objects_do_not_depend_on_where_segments_end(default_detector, data):
    _check(default_detector, data, [(SMTP, (40001, 25), 100.0, 0.001)])


@SETTINGS
@given(data=st.data())
def test_ftp_objects_do_not_depend_on_where_segments_end(default_detector, data):
    control, transfer = FTP
    # the data connection opens after STOR (send 7, at 100.008) and closes before 150 (send 8)
    _check(default_detector, data, [(control, (40002, 21), 100.0, 0.001), (transfer, (40003, 50000), 100.0085, 1e-5)])
