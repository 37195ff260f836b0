"""Random data full of planted magic numbers yields no verified finding; floods and bombs hit counted limits."""

from __future__ import annotations

import base64
import random
import struct
import zlib

from sensor.config import Limits, Settings
from sensor.detect.detector import Detector
from sensor.model import Format, Limit
from tests import builders as b
from tests.conftest import scan


def _sig7z(r: random.Random) -> bytes:
    tail = struct.pack("<QQI", r.randrange(0, 4000), r.randrange(1, 200), r.getrandbits(32))
    return struct.pack("<I", zlib.crc32(tail)) + tail


def _tar_header(r: random.Random) -> bytes:
    """A tar header that is right in every field; what follows it is random."""
    h = bytearray(512)
    h[0:8] = b"data.csv"
    for a, v in (
        (100, b"0000644"),
        (108, b"0001750"),
        (116, b"0001750"),
        (124, b"%011o" % r.randrange(0, 50_000)),
        (136, b"14712345670"),
    ):
        h[a : a + len(v)] = v
    h[156:157] = b"0"
    h[257:265] = b"ustar\x0000"
    h[148:156] = b" " * 8
    h[148:155] = b"%06o\x00" % sum(h)
    return bytes(h)


def planted_magics(r: random.Random) -> bytes:
    """A bare header of every format, each followed by random bytes: none of them a real member."""
    rb = r.randbytes
    xz_flags = bytes([0, r.choice([0, 1, 4, 10])])
    sig7z_tail = rb(20)
    tar = bytearray(rb(512))
    tar[257:265] = b"ustar\x0000"
    tar[148:156] = b" " * 8
    tar[148:155] = b"%06o\x00" % (sum(tar) & 0o777777)
    return r.choice(
        [
            b"\x1f\x8b\x08" + bytes([r.randrange(0, 32)]) + rb(6),
            b"\x78" + r.choice([b"\x01", b"\x5e", b"\x9c", b"\xda"]),
            b"BZh" + bytes([r.randrange(0x31, 0x3A)]) + r.choice([b"1AY&SY", b"\x17\x72\x45\x38\x50\x90"]),
            b"\xfd7zXZ\x00" + xz_flags + struct.pack("<I", zlib.crc32(xz_flags)),
            b"\x5d\x00\x00\x80\x00" + b"\xff" * 8 + b"\x00",
            b"\x28\xb5\x2f\xfd" + bytes([r.randrange(0, 8)]),
            b"\x04\x22\x4d\x18\x64\x40" + rb(1),
            b"\xff\x06\x00\x00sNaPpY",
            b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + rb(16) + b"\x08\x00\x00\x00" + b"data.csv",
            # ZipCrypto-flagged entry with a modest known size: cannot be decoded, so must chain
            b"PK\x03\x04\x14\x00\x01\x00\x08\x00"
            + rb(8)
            + struct.pack("<II", 3000, 9000)
            + b"\x08\x00\x00\x00"
            + b"data.csv",
            # 7z whose start header is right and points inside the data at a next header with a wrong CRC
            b"7z\xbc\xaf\x27\x1c\x00\x04" + _sig7z(r),
            b"7z\xbc\xaf\x27\x1c\x00\x04" + struct.pack("<I", zlib.crc32(sig7z_tail)) + sig7z_tail,
            b"Rar!\x1a\x07\x00" + rb(7),
            b"Rar!\x1a\x07\x01\x00" + rb(8),
            b"MSCF\x00\x00\x00\x00" + rb(4) + b"\x00" * 4 + rb(4) + b"\x00" * 4 + b"\x03\x01\x01\x00\x01\x00",
            bytes(tar),
            _tar_header(r),
            b"H4sIAAAAAAAA" + rb(20),
            b"\xec\xbd\x07\x60\x1c\x49\x96\x25\x26\x2f\x6d\xca\x7b\x7f\x4a\xf5",
            # encrypted formats' tokens without their structure (issue "Compress or encrypt"); "Salted__" is
            # planted where the rest of the buffer is not whole 16-byte blocks (see the test)
            b"Salted__" + rb(8),
            b"\x85\x01\x0c\x03" + rb(8) + b"\x01" + rb(20),  # a PKESK whose next packet is random
            b"\x8c\x0d\x04\x09\x03" + rb(20),  # an SKESK likewise
            b"-----BEGIN PGP MESSAGE-----\n\n" + base64.b64encode(rb(60)) + b"\n",
            b"age-encryption.org/v1\n" + rb(40),  # the version line without stanzas
            # version, a plausible time, then 50, 70 or 90 bytes: never 57 + 16n in all
            base64.urlsafe_b64encode(
                b"\x80" + r.randrange(1_500_000_000, 2_000_000_000).to_bytes(8, "big") + rb(r.choice([50, 70, 90]))
            ),  # fmt: skip
            b"0\x82\x01\x00\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03" + rb(30),  # CMS's OID, random after
            b"eyJhbGciOiJIUzI1NiJ9." + base64.urlsafe_b64encode(rb(30)) + b"." + base64.urlsafe_b64encode(rb(20)),
        ]
    )


def test_random_data_with_planted_magics_yields_nothing(detector):
    r = random.Random(2026)
    buf = bytearray(r.randbytes(16 << 20))
    planted = 0
    for _ in range(8000):
        m = planted_magics(r)
        # not in the last 64 KiB: a tar header right in every field whose entry runs past the end of the data is
        # what a cut-off tar is, and is reported as one (truncated)
        at = r.randrange(0, len(buf) - len(m) - 65536)
        if m.startswith(b"Salted__") and (len(buf) - at) % 16 == 0:
            at -= 1  # a block-aligned rest after a planted salt would be a ciphertext's shape, not a token's
        buf[at : at + len(m)] = m
        planted += 1
    before = sum(detector.stats.candidates.values())
    findings = scan(detector, bytes(buf), folder="/srv/")
    assert findings == []
    assert sum(detector.stats.candidates.values()) - before > planted // 2  # the candidates were real work


def test_flood_of_zlib_headers_does_not_hide_a_member(default_detector):
    member = b.zlib_member(b.sample_text(50_000, seed=2))
    data = b"\x78\x9c" * 1_200_000 + member  # past libyara's 1,000,000-match cap in one buffer
    limits_before = default_detector.stats.limits[Limit.CANDIDATES]
    findings = scan(default_detector, data)
    assert [(f.member.format, f.member.offset) for f in findings] == [(Format.ZLIB, 2_400_000)]
    assert default_detector.stats.limits[Limit.CANDIDATES] > limits_before


def _bomb_bz2() -> bytes:
    import bz2

    c = bz2.BZ2Compressor(9)
    chunk = bytes(1 << 20)
    out = b"".join(c.compress(chunk) for _ in range(2048))  # 2 GiB of zeros
    return out + c.flush()


def test_decompression_bomb_stops_at_a_cap(tmp_path, rule_cache):
    bomb = _bomb_bz2()
    assert len(bomb) < 4096  # a few KB ...
    det = Detector(Settings(observer="test", cache_dir=rule_cache, limits=Limits(max_ratio=1000)))
    (f,) = scan(det, bomb, "bomb.bz2")  # how long it takes: bench/bench_fp.py
    assert f.member.format is Format.BZIP2
    assert [h.limit for h in f.member.limits] == [Limit.RATIO]
    assert f.member.inner.complete is False
    assert f.member.inner.size < 64 << 20  # ... stopped long before its 2 GiB


def test_output_cap_is_reported(rule_cache):
    member = b.gzip_plain(b.sample_text(3 << 20, seed=4))
    det = Detector(Settings(observer="test", cache_dir=rule_cache, limits=Limits(max_output=2 << 20)))
    (f,) = scan(det, member, "big.gz")
    assert [h.limit for h in f.member.limits] == [Limit.OUTPUT_BYTES]
    assert f.member.proof.value == "output"
    assert det.stats.limits[Limit.OUTPUT_BYTES] == 1


def test_depth_limit_is_counted(rule_cache):
    inner = b.gzip_plain(b.sample_text(10_000, seed=5))
    wrapped = b"data=" + b.b64(b.b64(inner)) + b";"  # base64 twice, as some droppers do
    det = Detector(Settings(observer="test", cache_dir=rule_cache, limits=Limits(max_depth=1)))
    assert scan(det, wrapped) == []
    assert det.stats.limits[Limit.DEPTH] == 1
    det3 = Detector(Settings(observer="test", cache_dir=rule_cache))
    (f,) = scan(det3, wrapped)
    assert f.encoding == ("base64", "base64")
    assert f.encoding_offset == 5


def test_rule_timeout_is_a_counted_limit(tmp_path, detector):
    import shutil

    from sensor.detect.engines import bundled_rules_dir

    rules = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), rules)
    (rules / "slow.yar").write_text(
        'rule slow_loop { meta: role = "flag" condition: for any i in (0..2000000000) : ( uint8(i % 64) == 0x100 ) }\n'
    )
    det = Detector(
        Settings(
            engine=detector.settings.engine,
            observer="t",
            rules_dir=rules,
            cache_dir=tmp_path,
            limits=Limits(yara_timeout=1),
        )
    )
    assert scan(det, b.random_bytes(1000, seed=1)) == []  # how soon it gives up: bench/bench_fp.py
    assert det.stats.limits[Limit.TIME] == 1


def test_incompressible_lz4_and_zstd_frames_are_found(detector):
    data = b.random_bytes(40_000, seed=9)  # already-encrypted data: lz4 and zstd store it as is
    for member, fmt in ((b.lz4_frame(data), Format.LZ4), (b.zstd_member(data), Format.ZSTD)):
        blob, off = b.embed(member, size=len(member) + 50_000, seed=3)
        (f,) = scan(detector, blob)
        assert (f.member.format, f.member.offset, f.member.length) == (fmt, off, len(member))


def test_base64_offset_after_a_text_line(detector):
    member = b.gzip_plain(b.sample_text(20_000, seed=1))
    import base64

    body = base64.encodebytes(member)
    text = b"Content-Type: application/octet-stream\r\nSee the attached sentence\n" + body
    (f,) = scan(detector, text, "mail.eml")
    assert f.encoding_offset == text.index(body[:8])


def test_zip_entry_whose_size_runs_past_the_data_is_truncated(detector):
    member = b.zip_archive({"a.txt": b.sample_text(50_000, seed=3)})
    cut = member[: len(member) // 3]  # csize says more than the data holds
    findings = scan(detector, cut)  # how long it takes: bench/bench_fp.py
    assert [(f.member.format, f.member.offset, f.member.truncated) for f in findings] == [(Format.ZIP, 0, True)]


def test_objects_that_start_like_windows_compression_are_nothing(detector):
    """Windows' formats have no magic and are tried at an object's start only: objects that start with an
    LZNT1-like chunk word, a flag word the Xpress rule lets through, or 256 bytes of plausible (not complete)
    Huffman code lengths, over random, zero-filled or small-integer bytes, give no finding."""
    r = random.Random(20)
    bodies = [
        lambda: r.randbytes(70_000),
        lambda: bytes(9000) + r.randbytes(60_000),
        lambda: b"".join(r.randrange(0, 64).to_bytes(4, "little") for _ in range(16_000)),
    ]
    heads = [
        lambda: (0xB000 | r.randrange(0, 0x1000)).to_bytes(2, "little"),  # LZNT1 compressed chunk word
        lambda: b"\xff\x3f",  # a stored LZNT1 chunk
        lambda: r.randbytes(3) + bytes([r.randrange(0, 16)]),  # four literal flags first: passes xpress_start
        lambda: bytes(r.randrange(5, 16) | r.randrange(5, 16) << 4 for _ in range(256)),  # Kraft sum far over 1
    ]
    before = sum(detector.stats.candidates.values())
    for _ in range(60):
        data = r.choice(heads)() + r.choice(bodies)()
        assert scan(detector, data, name="blob.bin", folder="/tmp/") == []
    assert sum(detector.stats.candidates.values()) - before >= 50  # the anchored rules fired: real work
