"""Windows' own compression (issue "Compress or encrypt", item 2): LZNT1, Xpress and Xpress Huffman as
RtlCompressBuffer writes them, which malware calls from ntdll instead of shipping zlib. The test-only compressors
are checked against [MS-XCA]'s own examples and dissect.util's decoders; their members are found staged and
sent over HTTP with their sha256; look-alike heads over random bytes, zero-filled and table-like files are
nothing."""

from __future__ import annotations

import hashlib
import random

import pytest

from sensor.detect.verifiers import xpress as xpress_verifier
from sensor.detect.verifiers import xpress_huffman as huffman_verifier
from sensor.model import Format, Kind
from tests import appbuild as ab
from tests.builders import sample_text
from tests.conftest import scan
from tests.mscompress import SPEC_LZNT1, SPEC_LZNT1_TEXT, SPEC_XPRESS, lznt1, xpress, xpress_huffman
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


COMPRESSORS = {Format.LZNT1: lznt1, Format.XPRESS: xpress, Format.XPRESS_HUFFMAN: xpress_huffman}


def test_plain_lz77_matches_the_specifications_examples_and_both_decoders_agree():
    from dissect.util.compression import lzxpress

    for text, packed in SPEC_XPRESS:  # [MS-XCA] 3.1, 3.2: the alphabet, and "abc" 100 times
        assert xpress(text) == packed and lzxpress.decompress(packed) == text
        assert xpress_verifier.decode(packed, 0, 1 << 20).output == text
    for data in (TEXT, random.Random(3).randbytes(9000), bytes(70_000) + TEXT):
        packed = xpress(data)
        assert lzxpress.decompress(packed) == data
        assert xpress_verifier.decode(packed, 0, 1 << 24)[:3] == (data, len(packed), "end")


def test_lz77_huffman_reads_back_through_both_decoders():
    from dissect.util.compression import lzxpress_huffman

    for data in (TEXT, TEXT * 3, random.Random(4).randbytes(9000), bytes(65536)):
        packed = xpress_huffman(data)
        # dissect reads to the input's end: the end symbol comes out as its copy (3 bytes) or is never reached
        assert lzxpress_huffman.decompress(packed)[: len(data)] == data
        assert huffman_verifier.decode(packed, 0, 1 << 24)[:3] == (data, len(packed), "end")
    capped = huffman_verifier.decode(xpress_huffman(TEXT * 3), 0, 50_000)
    assert (capped.output, capped.status) == ((TEXT * 3)[:50_000], "cap")


@pytest.mark.parametrize("fmt", [Format.XPRESS, Format.XPRESS_HUFFMAN])
def test_a_staged_xpress_buffer_is_an_alert_with_its_sha256(detector, fmt):
    member = COMPRESSORS[fmt](TEXT)
    (f,) = scan(detector, member, name="cache.bin", folder="/tmp/")
    assert (f.member.format, f.member.offset, f.member.sha256) == (fmt, 0, hashlib.sha256(member).hexdigest())
    assert f.kind == Kind.ALERT and f.member.inner is not None and f.member.inner.size == len(TEXT)
    assert f.member.proof == "stream_end" and not f.member.truncated


@pytest.mark.parametrize("fmt", [Format.XPRESS, Format.XPRESS_HUFFMAN])
def test_an_xpress_buffer_posted_over_http(tmp_path, rule_cache, fmt):
    member = COMPRESSORS[fmt](TEXT)
    req = ab.http_request("POST", "/sync", "cdn.example", member, [("Content-Type", "application/octet-stream")])
    conv = ab.http_conversation([(req, ab.http_response(200, b"ok"))], client="10.0.0.10", server="203.0.113.80")
    f = run_pcap(rule_cache, write_pcap(tmp_path / f"{fmt}.pcap", segments(conv))).one(member)
    assert f.member.format == fmt and f.origin.direction == "outbound" and f.kind == Kind.ALERT


def test_a_cut_xpress_huffman_stream_is_truncated(detector):
    member = xpress_huffman(TEXT * 4)
    (f,) = scan(detector, member[: len(member) * 2 // 3], name="part.bin", folder="/tmp/")
    assert f.member.format == Format.XPRESS_HUFFMAN and f.member.truncated


def test_bytes_that_merely_decode_as_lz77_are_nothing(detector):
    rnd = random.Random(7)
    table = b"".join(rnd.randrange(0, 40).to_bytes(4, "little") for _ in range(30_000))  # small integers
    cases = [
        bytes(40_000) + rnd.randbytes(20_000),  # a zero-filled head: all literals, then anything decodes
        table,
        bytes(4) + rnd.randbytes(100_000),
        b"\x00\x00\x00\x0f" + TEXT,  # a flag word of literals before text
        xpress(rnd.randbytes(60_000)),  # real tokens, but no smaller than what they came from
    ]
    for data in cases:
        found = [f.member.format for f in scan(detector, data, folder="/tmp/")]
        assert not {Format.XPRESS, Format.XPRESS_HUFFMAN} & set(found), found


def test_a_huffman_table_is_a_complete_code_or_nothing():
    assert huffman_verifier.complete_code(xpress_huffman(TEXT)[:256])
    assert huffman_verifier.complete_code(xpress_huffman(b"")[:256])  # the end symbol alone, one bit
    rnd = random.Random(8)
    assert not any(huffman_verifier.complete_code(rnd.randbytes(256)) for _ in range(2000))
    lengths = bytearray(xpress_huffman(TEXT)[:256])
    lengths[10] = (lengths[10] & 0xF0) | 1 if lengths[10] & 0x0F != 1 else lengths[10] & 0xF0 | 2
    assert not huffman_verifier.complete_code(bytes(lengths))
