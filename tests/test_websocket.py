"""WebSocket after an HTTP Upgrade (issue "HTTP read the way the other end reads it", item 3): frames are read
in both directions, unmasked, reassembled across fragments and control frames, inflated with permessage-deflate
as the 101 response set it, and each message is an object scanned like an HTTP body. Conversations are crafted
with tests/wsbuild.py, packets by scapy, scanned through the real pipeline."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import sys

from tests import netns
from tests import wsbuild as ws
from tests.builders import gzip_named, sample_text, xz_member
from tests.conftest import need
from tests.netbuild import drop, nth_data, write_pcap
from tests.netbuild import segments as packets_of
from tests.test_http import conv, run_pcap

TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10
MEMBER = gzip_named(sample_text(8000, 11), "ledger.csv")
OTHER = xz_member(sample_text(5000, 12))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _run(tmp_path, rule_cache, sends, extensions=None, deflate=False, path="/ws/upload", dropped=None):
    handshake = [("c2s", ws.upgrade_request(path, deflate=deflate)), ("s2c", ws.upgrade_response(extensions))]
    c = conv([handshake, sends], mss=8000)  # one segment a message: a dropped segment is a lost message
    pkts = packets_of(c)
    if dropped is not None:
        pkts = drop(pkts, nth_data(c, *dropped))
    return run_pcap(rule_cache, write_pcap(tmp_path / "ws.pcap", pkts))


def test_a_masked_binary_message_is_an_object_and_its_member_a_finding(tmp_path, rule_cache):
    run = _run(tmp_path, rule_cache, [("c2s", ws.frame(BINARY, MEMBER, mask=1))])
    f = run.one(MEMBER)
    assert f.kind.value == "alert" and f.encoding == ("websocket",) and f.name == "upload"
    assert f.app is not None and f.app.status == 101 and f.app.url == "/ws/upload"
    assert _sha(MEMBER) in {o.sha256 for o in run.objects if o.layers == ("websocket",)}
    assert run.stats.app["http.websockets"] == 1


def test_a_text_message_fragmented_around_a_ping_is_reassembled(tmp_path, rule_cache):
    text = json.dumps({"op": "put", "blob": base64.b64encode(MEMBER).decode()}).encode()
    a, b, c = text[:500], text[500:1500], text[1500:]
    sends = [
        ("c2s", ws.frame(TEXT, a, fin=False, mask=2)),
        ("c2s", ws.frame(PING, b"are you there", mask=3)),
        ("c2s", ws.frame(0, b, fin=False, mask=4)),
        ("s2c", ws.frame(PONG, b"are you there")),
        ("c2s", ws.frame(0, c, mask=5)),
    ]
    run = _run(tmp_path, rule_cache, sends)
    assert _sha(text) in {o.sha256 for o in run.objects}
    f = run.one(MEMBER)
    assert f.encoding[0] == "websocket" and f.encoding[-1] == "base64" and f.kind.value == "alert"


def test_permessage_deflate_with_context_takeover(tmp_path, rule_cache):
    """Later messages refer back into earlier ones: the member is only whole with the window kept."""
    z = ws.Compressor(takeover=True)
    first = MEMBER[500:1500] + b"padding" * 50  # the member's middle, which its own message then refers back to
    payloads = [z.message(first), z.message(b"hello"), z.message(MEMBER)]
    sends = [("c2s", ws.frame(BINARY, p, rsv1=True, mask=10 + i)) for i, p in enumerate(payloads)]
    run = _run(tmp_path, rule_cache, sends, extensions="permessage-deflate", deflate=True)
    f = run.one(MEMBER)
    assert f.encoding == ("websocket", "permessage-deflate") and not f.member.truncated
    assert {_sha(first), _sha(b"hello"), _sha(MEMBER)} <= {o.sha256 for o in run.objects}


def test_permessage_deflate_without_context_takeover_and_server_to_client(tmp_path, rule_cache):
    ext = "permessage-deflate; client_no_context_takeover; server_no_context_takeover; server_max_window_bits=10"
    zc, zs = ws.Compressor(takeover=False), ws.Compressor(takeover=False, window_bits=10)
    sends = [
        ("c2s", ws.frame(BINARY, zc.message(b"ping " * 100), rsv1=True, mask=20)),
        ("c2s", ws.frame(BINARY, zc.message(MEMBER), rsv1=True, mask=21)),
        ("s2c", ws.frame(BINARY, zs.message(OTHER), rsv1=True)),
    ]
    run = _run(tmp_path, rule_cache, sends, extensions=ext, deflate=True)
    up, down = run.one(MEMBER), run.one(OTHER)
    assert up.kind.value == "alert" and up.encoding == ("websocket", "permessage-deflate")
    assert down.kind.value == "event" and down.origin.direction == "inbound"
    assert down.encoding == ("websocket", "permessage-deflate")


def test_a_gap_under_context_takeover_marks_the_messages_after_it_truncated(tmp_path, rule_cache):
    z = ws.Compressor(takeover=True)
    payloads = [z.message(MEMBER), z.message(sample_text(3000, 13)), z.message(sample_text(3000, 14))]
    sends = [("c2s", ws.frame(BINARY, p, rsv1=True, mask=30 + i)) for i, p in enumerate(payloads)]
    # c2s data segments: the upgrade request (0), then one segment per message: message 2 (index 2) is lost
    run = _run(tmp_path, rule_cache, sends, extensions="permessage-deflate", deflate=True, dropped=("c2s", 2))
    f = run.one(MEMBER)
    assert not f.member.truncated  # before the gap: whole
    after = [o for o in run.objects if o.layers == ("websocket", "permessage-deflate") and o.sha256 != _sha(MEMBER)]
    assert after and all(o.truncated for o in after)  # taken up again past the gap, and marked
    assert run.stats.app["http.websocket.gaps"] == 1


def test_unmasked_client_frames_are_read_and_counted(tmp_path, rule_cache):
    run = _run(tmp_path, rule_cache, [("c2s", ws.frame(BINARY, MEMBER))])
    assert run.one(MEMBER).encoding == ("websocket",)
    assert run.stats.app["http.anomaly.unmasked_client_frame"] == 1


def test_a_refused_upgrade_leaves_http_as_it_was(tmp_path, rule_cache):
    post = b"POST /up/ledger.gz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(MEMBER) + MEMBER
    c = conv(
        [
            [("c2s", ws.upgrade_request()), ("s2c", b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")],
            [("c2s", post), ("s2c", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")],
        ]
    )
    run = run_pcap(rule_cache, write_pcap(tmp_path / "ws.pcap", packets_of(c)))
    f = run.one(MEMBER)
    assert f.name == "ledger.gz" and f.encoding == () and run.stats.app["http.websockets"] == 0


def test_bytes_that_stop_being_frames_are_scanned_raw(tmp_path, rule_cache):
    junk = b"\x0f\xff" + MEMBER  # opcode 15 does not exist: from here the direction is raw
    run = _run(tmp_path, rule_cache, [("c2s", ws.frame(TEXT, b"hi", mask=40)), ("c2s", junk)])
    assert run.one(MEMBER).encoding == ()
    assert run.stats.app["http.anomaly.websocket_bad_frame"] == 1


# -- a real client and server: the `websockets` library, on loopback in a network namespace, tcpdump -----------

PEER = r"""
import asyncio, sys
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

member, other = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()

async def handler(conn):
    async for message in conn:
        await conn.send(other if isinstance(message, bytes) else "got " + message)

async def main():
    async with serve(handler, "203.0.113.80", 8080, compression="deflate"):
        uri = "ws://203.0.113.80:8080/ws/upload"
        async with connect(uri, local_addr=("10.0.0.10", 0), compression="deflate") as c:
            await c.send('{"op": "hello"}')
            await c.recv()
            await c.send(member)
            await c.recv()

asyncio.run(main())
"""


def test_a_real_websocket_client_and_server_with_permessage_deflate(tmp_path, rule_cache):
    """websockets (a complete RFC 6455 and RFC 7692 implementation) on both ends, with its default
    permessage-deflate (context takeover), captured by tcpdump: what a real library sends is read."""
    need(netns.missing() or (None if importlib.util.find_spec("websockets") else "websockets (test extra) missing"))
    (tmp_path / "member").write_bytes(MEMBER)
    (tmp_path / "other").write_bytes(OTHER)
    (tmp_path / "peer.py").write_text(PEER)
    pcap = tmp_path / "ws.pcap"
    with netns.loopback_capture(pcap, "tcp port 8080") as inside:
        peer = [sys.executable, str(tmp_path / "peer.py"), str(tmp_path / "member"), str(tmp_path / "other")]
        done = inside(peer, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    run = run_pcap(rule_cache, pcap)
    up, down = run.one(MEMBER), run.one(OTHER)
    assert up.kind.value == "alert" and up.encoding == ("websocket", "permessage-deflate") and up.name == "upload"
    assert down.kind.value == "event" and down.encoding == ("websocket", "permessage-deflate")
    texts = {o.sha256 for o in run.objects}
    assert _sha(b'{"op": "hello"}') in texts and _sha(b'got {"op": "hello"}') in texts
    assert run.stats.app["http.websockets"] == 1


def test_a_frame_cut_by_lost_bytes_keeps_what_came(tmp_path, rule_cache):
    """One binary frame over three segments, the last one lost: the message is what came, unmasked, truncated
    (it was dropped whole before: the frame never completed)."""
    payload = MEMBER + sample_text(2000, 15)
    handshake = [("c2s", ws.upgrade_request()), ("s2c", ws.upgrade_response())]
    c = conv([handshake, [("c2s", ws.frame(BINARY, payload, mask=50)), ("s2c", ws.frame(TEXT, b"bye"))]], mss=1400)
    pkts = drop(packets_of(c), nth_data(c, "c2s", 3))  # c2s segments: the request (0), then the frame (1, 2, 3)
    run = run_pcap(rule_cache, write_pcap(tmp_path / "ws.pcap", pkts))
    (cut,) = [o for o in run.objects if o.layers == ("websocket",) and o.origin.client_to_server]
    seen = 2 * 1400 - 8  # two segments of the frame, less its 8-byte header (2 + 2 length + 4 key)
    assert cut.truncated and cut.size == seen and cut.sha256 == _sha(payload[:seen])
