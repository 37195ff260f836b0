"""Windows' own compression (issue "Compress or encrypt", item 2): LZNT1 as RtlCompressBuffer writes it, which
malware calls from ntdll instead of shipping zlib. The decoder (dissect.util) is checked against [MS-XCA]'s own
example; members made by a test-only compressor written from the specification are found staged and sent over
HTTP with their sha256; LZNT1-looking words over random bytes are nothing."""

from __future__ import annotations

import hashlib
import random

from sensor.model import Format, Kind
from tests import appbuild as ab
from tests.builders import sample_text
from tests.conftest import scan
from tests.mscompress import SPEC_LZNT1, SPEC_LZNT1_TEXT, lznt1
from tests.netbuild import segments, write_pcap
from tests.test_http import run_pcap

TEXT = sample_text(60_000, 91)


def test_the_decoder_reads_the_specifications_example_and_our_compressor():
    from dissect.util.compression import lznt1 as reference

    assert reference.decompress(SPEC_LZNT1) == SPEC_LZNT1_TEXT  # [MS-XCA] 3.3: 59 bytes to the 142-byte text
    for data in (SPEC_LZNT1_TEXT, TEXT, random.Random(1).randbytes(9000)):
        assert reference.decompress(lznt1(data)) == data


def test_a_staged_lznt1_buffer_is_an_alert_with_its_sha256(detector):
    member = lznt1(TEXT)
    (f,) = scan(detector, member, name="cache.bin", folder="/tmp/")
    assert (f.member.format, f.member.offset, f.member.sha256) == (Format.LZNT1, 0, hashlib.sha256(member).hexdigest())
    assert f.kind == Kind.ALERT and f.member.inner is not None and f.member.inner.size == len(TEXT)
    assert f.member.writer == "RtlCompressBuffer (LZNT1)"


def test_an_lznt1_buffer_posted_over_http(tmp_path, rule_cache):
    member = lznt1(TEXT)
    req = ab.http_request("POST", "/sync", "cdn.example", member, [("Content-Type", "application/octet-stream")])
    conv = ab.http_conversation([(req, ab.http_response(200, b"ok"))], client="10.0.0.10", server="203.0.113.80")
    f = run_pcap(rule_cache, write_pcap(tmp_path / "lznt1.pcap", segments(conv))).one(member)
    assert f.member.format == Format.LZNT1 and f.origin.direction == "outbound" and f.kind == Kind.ALERT


def test_lznt1_looking_words_over_random_bytes_are_nothing(detector):
    rnd = random.Random(2026)
    for word in (b"\x10\xb0", b"\xff\xbf", b"\xff\x3f", b"\x00\xb8"):
        data = word + rnd.randbytes(100_000)
        assert [f for f in scan(detector, data, folder="/tmp/") if f.member.format == Format.LZNT1] == []
    stored = lznt1(rnd.randbytes(50_000))  # chunks kept raw: the output is no smaller than the input
    assert [f for f in scan(detector, stored, folder="/tmp/") if f.member.format == Format.LZNT1] == []
