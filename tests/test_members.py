"""Members made by the real libraries: whole, embedded, base64-wrapped, truncated, behind fake headers."""

from __future__ import annotations

import hashlib
import lzma
import zipfile

import pytest

from sensor.model import Checksum, Format, Kind, Proof
from tests import builders as b
from tests.conftest import scan

TEXT = b.sample_text(60_000, seed=7)

# (case, builder, expected format)
MEMBERS = [
    ("gzip", lambda: b.gzip_plain(TEXT), Format.GZIP),
    ("gzip_named", lambda: b.gzip_named(TEXT, "customers.csv"), Format.GZIP),
    ("gzip_mtime0", lambda: b.gzip_mtime0(TEXT), Format.GZIP),
    ("gzip_dotnet", lambda: b.gzip_dotnet(TEXT), Format.GZIP),
    ("zlib_1", lambda: b.zlib_member(TEXT, 1), Format.ZLIB),
    ("zlib_5", lambda: b.zlib_member(TEXT, 5), Format.ZLIB),
    ("zlib_6", lambda: b.zlib_member(TEXT, 6), Format.ZLIB),
    ("zlib_9", lambda: b.zlib_member(TEXT, 9), Format.ZLIB),
    ("bzip2", lambda: b.bzip2_member(TEXT), Format.BZIP2),
    ("xz_crc64", lambda: b.xz_member(TEXT), Format.XZ),
    ("xz_crc32", lambda: b.xz_member(TEXT, lzma.CHECK_CRC32), Format.XZ),
    ("xz_sha256", lambda: b.xz_member(TEXT, lzma.CHECK_SHA256), Format.XZ),
    ("lzma_alone", lambda: b.lzma_alone(TEXT), Format.LZMA),
    ("zstd", lambda: b.zstd_member(TEXT), Format.ZSTD),
    ("zstd_checksum", lambda: b.zstd_member(TEXT, checksum=True), Format.ZSTD),
    ("lz4", lambda: b.lz4_frame(TEXT), Format.LZ4),
    ("snappy", lambda: b.snappy_framed(TEXT), Format.SNAPPY),
    ("zip_deflate", lambda: b.zip_archive({"a.csv": TEXT, "b/c.txt": TEXT[:999]}), Format.ZIP),
    ("zip_bzip2", lambda: b.zip_archive({"a.csv": TEXT}, zipfile.ZIP_BZIP2), Format.ZIP),
    ("zip_stored", lambda: b.zip_stored({"a.csv": TEXT}), Format.ZIP),
    ("tar", lambda: b.tar_archive({"a.csv": TEXT, "hosts": b"127.0.0.1 localhost\n"}), Format.TAR),
    ("tar_gz", lambda: b.tar_archive({"a.csv": TEXT}, "gz"), Format.GZIP),
    ("tar_bz2", lambda: b.tar_archive({"a.csv": TEXT}, "bz2"), Format.BZIP2),
    ("tar_xz", lambda: b.tar_archive({"a.csv": TEXT}, "xz"), Format.XZ),
    ("7z", lambda: b.sevenzip_archive({"a.csv": TEXT}), Format.SEVENZIP),
    ("cab", lambda: b.cab_archive({"a.csv": TEXT}), Format.CAB),
    ("rar4", lambda: b.rar4_stored({"a.csv": TEXT, "sub/b.txt": b"hello"}), Format.RAR),
    ("rar5", lambda: b.rar5_stored({"a.csv": TEXT, "sub/b.txt": b"hello"}), Format.RAR),
]
IDS = [m[0] for m in MEMBERS]


def _one(findings, fmt):
    assert [f.member.format for f in findings] == [fmt], [(f.member.format, f.member.offset) for f in findings]
    return findings[0]


@pytest.mark.parametrize("case,build,fmt", MEMBERS, ids=IDS)
def test_whole_member_at_offset_0(detector, case, build, fmt):
    member = build()
    f = _one(scan(detector, member, "x.bin"), fmt)
    assert (f.member.offset, f.member.length) == (0, len(member))
    assert f.member.sha256 == hashlib.sha256(member).hexdigest()
    assert f.member.truncated is False
    assert f.container.sha256 == f.member.sha256
    assert f.kind is Kind.ALERT  # a staging folder


@pytest.mark.parametrize("case,build,fmt", MEMBERS, ids=IDS)
def test_member_embedded_at_random_offset(detector, case, build, fmt):
    member = build()
    data, off = b.embed(member, size=len(member) + 300_000, seed=len(case))
    f = _one(scan(detector, data), fmt)
    assert (f.member.offset, f.member.length) == (off, len(member))
    assert f.member.sha256 == hashlib.sha256(member).hexdigest()
    assert f.container.size == len(data)


@pytest.mark.parametrize("case,build,fmt", MEMBERS, ids=IDS)
def test_member_wrapped_in_base64(detector, case, build, fmt):
    member = build()
    text = b'POST /api/v1/upload\r\n\r\n{"blob": "' + b.b64(member) + b'", "id": 7}\n'
    f = _one(scan(detector, text, "req.json"), fmt)
    assert f.encoding == ("base64",)
    assert f.encoding_offset == text.index(b.b64(member)[:8])
    assert (f.member.offset, f.member.sha256) == (0, hashlib.sha256(member).hexdigest())


STREAMS = [
    m
    for m in MEMBERS
    if m[2] in (Format.GZIP, Format.ZLIB, Format.BZIP2, Format.XZ, Format.LZMA, Format.LZ4, Format.SNAPPY)
]


@pytest.mark.parametrize("case,build,fmt", STREAMS, ids=[m[0] for m in STREAMS])
def test_truncated_member_is_reported_truncated(detector, case, build, fmt):
    whole = b.sample_text(400_000, seed=3)
    member = {
        Format.GZIP: b.gzip_plain,
        Format.ZLIB: b.zlib_member,
        Format.BZIP2: b.bzip2_member,
        Format.XZ: b.xz_member,
        Format.LZMA: b.lzma_alone,
        Format.LZ4: b.lz4_frame,
        Format.SNAPPY: b.snappy_framed,
    }[fmt](whole)
    cut = b.truncate(member, 0.6)
    data = b.random_bytes(5000, seed=1) + cut
    f = _one(scan(detector, data), fmt)
    assert f.member.offset == 5000
    assert f.member.truncated is True
    assert f.member.checksum is not Checksum.BAD
    assert f.member.length <= len(cut)


@pytest.mark.parametrize(
    "case,build,fmt",
    [m for m in MEMBERS if m[2] is not Format.DEFLATE],
    ids=IDS,
)
def test_fake_header_before_does_not_move_the_start(detector, case, build, fmt):
    member = build()
    data, off = b.fake_header_before(member, str(fmt), seed=5)
    findings = scan(detector, data)
    f = _one(findings, fmt)
    assert f.member.offset == off
    assert f.member.sha256 == hashlib.sha256(member).hexdigest()


def test_gzip_header_fields_and_writer(detector):
    f = _one(scan(detector, b.gzip_named(TEXT, "customers.csv"), "c.gz"), Format.GZIP)
    assert f.member.stored_name == "customers.csv"
    assert f.member.checksum is Checksum.OK and f.member.proof is Proof.CHECKSUM
    assert f.member.inner.size == len(TEXT) and f.member.inner.complete
    assert f.member.inner.mime_type == "text/csv"
    dotnet = _one(scan(detector, b.gzip_dotnet(TEXT)), Format.GZIP)
    assert dotnet.member.writer == ".NET Framework GZipStream"


def test_corrupted_gzip_crc_is_bad(detector):
    member = bytearray(b.gzip_plain(TEXT))
    member[-8] ^= 0xFF  # CRC-32 in the trailer
    f = _one(scan(detector, bytes(member)), Format.GZIP)
    assert f.member.checksum is Checksum.BAD


@pytest.mark.parametrize("delta", [1, -1, 1 << 31], ids=["plus_1", "minus_1", "high_bit"])
def test_gzip_wrong_isize_with_right_crc_is_bad(detector, delta):
    member = bytearray(b.gzip_plain(TEXT))
    assert int.from_bytes(member[-4:], "little") == len(TEXT)
    member[-4:] = ((len(TEXT) + delta) & 0xFFFFFFFF).to_bytes(4, "little")  # ISIZE only: CRC-32 still right
    f = _one(scan(detector, bytes(member)), Format.GZIP)
    assert f.member.checksum is Checksum.BAD and f.member.proof is Proof.OBJECT_END  # proven by volume only
    assert (f.member.offset, f.member.length, f.member.truncated) == (0, len(member), False)  # trailer included
    # too small to be proven by volume: a wrong ISIZE leaves nothing to prove it, so no finding
    small = bytearray(b.gzip_plain(TEXT[:2000]))
    small[-4:] = (2001).to_bytes(4, "little")
    assert scan(detector, bytes(small)) == []


def test_tar_gz_lists_member_names(detector):
    data = b.tar_archive({"etc/passwd": b"root:x:0:0\n", "notes.txt": TEXT}, "gz")
    f = _one(scan(detector, data, "t.tgz"), Format.GZIP)
    assert f.member.inner.names == ("etc/passwd", "notes.txt")
    assert f.member.inner.mime_type == "application/x-tar"
    assert f.sensitive == ("etc/passwd",)


def test_zip_with_passwd_is_sensitive(detector):
    f = _one(
        scan(detector, b.zip_archive({"etc/passwd": b"root:x:0:0\n" * 50, "a.txt": b"x"}), "z.zip", "/srv/share/"),
        Format.ZIP,
    )
    assert f.member.inner.names == ("etc/passwd", "a.txt")
    assert f.sensitive == ("etc/passwd",)
    assert f.kind is Kind.ALERT and "sensitive_name" in f.reasons
    assert f.member.encrypted is False and f.member.checksum is Checksum.OK


@pytest.mark.parametrize("kind", ["aes", "zipcrypto"])
def test_encrypted_zip_is_flagged(detector, kind):
    files = {"passwd": b"root:x:0:0:root:/root:/bin/bash\n" * 100}
    data = b.zip_aes(files) if kind == "aes" else b.zip_zipcrypto(files)
    f = _one(scan(detector, data, "e.zip", "/srv/share/"), Format.ZIP)
    assert f.member.encrypted is True
    assert f.member.length == len(data)
    assert f.kind is Kind.ALERT
    assert set(f.reasons) >= {"encrypted", "sensitive_name"}
    assert ("AES-256" in f.member.detail) == (kind == "aes")


def test_encrypted_7z_headers(detector):
    data = b.sevenzip_archive({"secret.csv": TEXT}, password="pw")
    f = _one(scan(detector, data), Format.SEVENZIP)
    assert f.member.encrypted is True and f.member.inner.names == ()


@pytest.mark.parametrize("version", ["rar4", "rar5"])
def test_rar_lists_and_checks_stored_entries(detector, version):
    build = b.rar4_stored if version == "rar4" else b.rar5_stored
    f = _one(scan(detector, build({"Login Data": b"x" * 1000, "b.txt": b"hello"})), Format.RAR)
    assert f.member.inner.names == ("Login Data", "b.txt")
    assert f.member.checksum is Checksum.OK and f.member.encrypted is False
    assert f.sensitive == ("Login Data",)
    enc = _one(scan(detector, build({"a": b"x"}, encrypted_headers=True)), Format.RAR)
    assert enc.member.encrypted is True


def test_stored_zip_and_tar_rank_below_compressed(detector):
    stored = _one(scan(detector, b.zip_stored({"a.txt": TEXT}), "a.zip"), Format.ZIP)
    deflated = _one(scan(detector, b.zip_archive({"a.txt": TEXT}), "a.zip"), Format.ZIP)
    tar = _one(scan(detector, b.tar_archive({"a.txt": TEXT}), "a.tar"), Format.TAR)
    assert stored.member.compressed is False and tar.member.compressed is False
    assert stored.severity < deflated.severity and tar.severity < deflated.severity


def test_many_members_in_one_file_all_found(detector):
    parts = [b.gzip_plain(TEXT), b.bzip2_member(TEXT), b.zlib_member(TEXT), b.xz_member(TEXT), b.zstd_member(TEXT)]
    data, offsets = b"", []
    for i, p in enumerate(parts):
        data += b.random_bytes(3000 + i, seed=i)
        offsets.append(len(data))
        data += p
    findings = scan(detector, data)
    assert [f.member.offset for f in findings] == offsets


def test_raw_deflate_at_object_start_only(detector):
    raw = b.raw_deflate(TEXT)
    f = _one(scan(detector, raw), Format.DEFLATE)
    assert f.member.length == len(raw)
    assert scan(detector, b.random_bytes(100, seed=2) + raw) == []
