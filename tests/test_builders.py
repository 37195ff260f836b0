"""The test builders make real, decodable members: round-trip each with its standard reader."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import lzma
import shutil
import struct
import subprocess
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import builders as b
import pytest

FILES = {
    "report.csv": b.sample_text(3000, 1),
    "sub/dir/blob.bin": b.random_bytes(700, 2),
    "empty.txt": b"",
}
DATA = b.sample_text(5000, 7)


# --------------------------------------------------------------------------------------------
# Data helpers


def test_sample_text_is_deterministic_and_compressible() -> None:
    text = b.sample_text(4096, 3)
    assert len(text) == 4096
    assert text == b.sample_text(4096, 3)
    assert text != b.sample_text(4096, 4)
    assert b"@" in text and text.startswith(b"id,first,last,email")
    assert len(zlib.compress(text)) < len(text) // 2


def test_random_bytes_is_deterministic() -> None:
    assert len(b.random_bytes(100, 1)) == 100
    assert b.random_bytes(100, 1) == b.random_bytes(100, 1) != b.random_bytes(100, 2)


# --------------------------------------------------------------------------------------------
# gzip family


def test_gzip_plain() -> None:
    member = b.gzip_plain(DATA)
    assert member[:4] == b"\x1f\x8b\x08\x00"
    assert gzip.decompress(member) == DATA


def test_gzip_named_sets_fname_and_fixed_mtime() -> None:
    member = b.gzip_named(DATA, "payroll.csv.gz")
    assert member[3] & 0x08
    assert struct.unpack_from("<I", member, 4)[0] == b.FIXED_MTIME
    assert member[10:].startswith(b"payroll.csv\x00")
    assert gzip.decompress(member) == DATA
    assert b.gzip_named(DATA, "payroll.csv.gz") == member


def test_gzip_mtime0() -> None:
    member = b.gzip_mtime0(DATA)
    assert member[:8] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00"
    assert gzip.decompress(member) == DATA


def test_gzip_dotnet_header_and_trailer() -> None:
    member = b.gzip_dotnet(DATA)
    assert member[:10] == bytes.fromhex("1f8b0800000000000400")
    assert base64.b64encode(member).startswith(b"H4sIAAAAAAAEA")
    assert struct.unpack("<II", member[-8:]) == (zlib.crc32(DATA), len(DATA))
    assert gzip.decompress(member) == DATA


# --------------------------------------------------------------------------------------------
# Other stream formats


@pytest.mark.parametrize(("level", "second"), [(1, 0x01), (3, 0x5E), (-1, 0x9C), (9, 0xDA)])
def test_zlib_member_levels(level: int, second: int) -> None:
    member = b.zlib_member(DATA, level)
    assert member[0] == 0x78 and member[1] == second
    assert zlib.decompress(member) == DATA


def test_raw_deflate() -> None:
    member = b.raw_deflate(DATA)
    d = zlib.decompressobj(-15)
    assert d.decompress(member) + d.flush() == DATA
    assert d.eof and not d.unused_data


def test_bzip2_member() -> None:
    member = b.bzip2_member(DATA)
    assert member.startswith(b"BZh91AY&SY")
    assert bz2.decompress(member) == DATA


@pytest.mark.parametrize(("check", "flag"), [(lzma.CHECK_CRC64, 4), (lzma.CHECK_CRC32, 1), (lzma.CHECK_SHA256, 10)])
def test_xz_member(check: int, flag: int) -> None:
    member = b.xz_member(DATA, check=check)
    assert member[:8] == b"\xfd7zXZ\x00\x00" + bytes([flag])
    assert lzma.decompress(member, format=lzma.FORMAT_XZ) == DATA


def test_lzma_alone() -> None:
    member = b.lzma_alone(DATA)
    assert member[:5] == bytes.fromhex("5d00008000")
    assert lzma.decompress(member, format=lzma.FORMAT_ALONE) == DATA


@pytest.mark.parametrize("checksum", [False, True])
def test_zstd_member(checksum: bool) -> None:
    import zstandard

    member = b.zstd_member(DATA, checksum=checksum)
    assert member[:4] == b"\x28\xb5\x2f\xfd"
    assert bool(member[4] & 0x04) is checksum  # Content_Checksum_flag in the frame header
    assert zstandard.ZstdDecompressor().decompress(member) == DATA


def test_lz4_frame() -> None:
    import lz4.frame

    member = b.lz4_frame(DATA)
    assert member[:4] == b"\x04\x22\x4d\x18"
    assert lz4.frame.decompress(member) == DATA


def test_snappy_framed_multi_chunk() -> None:
    import snappy

    data = b.sample_text(150_000, 9)  # more than two 64 KiB chunks
    member = b.snappy_framed(data)
    assert member[:10] == b"\xff\x06\x00\x00sNaPpY"
    out = io.BytesIO()
    snappy.stream_decompress(io.BytesIO(member), out)
    assert out.getvalue() == data


# --------------------------------------------------------------------------------------------
# Archives


def _zip_contents(blob: bytes, pwd: bytes | None = None) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        if pwd is None:
            assert zf.testzip() is None
        return {info.filename: zf.read(info, pwd=pwd) for info in zf.infolist()}


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_zip_archive(method: int) -> None:
    blob = b.zip_archive(FILES, method=method)
    assert blob[:4] == b"PK\x03\x04"
    assert struct.unpack_from("<H", blob, 8)[0] == method
    assert _zip_contents(blob) == FILES


def test_zip_stored() -> None:
    blob = b.zip_stored(FILES)
    assert struct.unpack_from("<H", blob, 8)[0] == 0
    assert FILES["report.csv"] in blob
    assert _zip_contents(blob) == FILES


def test_zip_aes() -> None:
    import pyzipper

    blob = b.zip_aes(FILES, password=b"secret")
    flags, method = struct.unpack_from("<HH", blob, 6)
    assert flags & 1 and method == 99
    name_len, extra_len = struct.unpack_from("<HH", blob, 26)
    extra = blob[30 + name_len : 30 + name_len + extra_len]
    assert extra[:4] == b"\x01\x99\x07\x00" and extra[6:8] == b"AE" and extra[8] == 3  # AES-256
    with pyzipper.AESZipFile(io.BytesIO(blob)) as zf:
        zf.setpassword(b"secret")
        assert {n: zf.read(n) for n in zf.namelist()} == FILES


@pytest.mark.skipif(shutil.which("zip") is None, reason="Info-ZIP 'zip' CLI not installed (apt-get install zip)")
def test_zip_zipcrypto() -> None:
    blob = b.zip_zipcrypto(FILES, password="secret")
    flags, method = struct.unpack_from("<HH", blob, 6)
    assert flags & 1 and method in (0, 8)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert all(info.flag_bits & 1 for info in zf.infolist())
        with pytest.raises(RuntimeError):
            zf.read("report.csv")
    assert _zip_contents(blob, pwd=b"secret") == FILES


def test_zip_zipcrypto_rejects_unsafe_name() -> None:
    with pytest.raises(ValueError, match="unsafe"):
        b.zip_zipcrypto({"../escape.txt": b"x"})


@pytest.mark.parametrize(
    ("compression", "magic"), [("", None), ("gz", b"\x1f\x8b"), ("bz2", b"BZh"), ("xz", b"\xfd7zXZ")]
)
def test_tar_archive(compression: str, magic: bytes | None) -> None:
    blob = b.tar_archive(FILES, compression=compression)
    if magic is None:
        assert blob[257:263] == b"ustar\x00"
    else:
        assert blob.startswith(magic)
    with tarfile.open(fileobj=io.BytesIO(blob), mode=f"r:{compression}") as tf:
        got = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}  # type: ignore[union-attr]
    assert got == FILES


def test_tar_archive_rejects_unknown_compression() -> None:
    with pytest.raises(ValueError, match="compression"):
        b.tar_archive(FILES, compression="zst")


def _7z_contents(blob: bytes, password: str | None = None) -> dict[str, bytes]:
    import py7zr
    import py7zr.io

    factory = py7zr.io.BytesIOFactory(1 << 24)
    with py7zr.SevenZipFile(io.BytesIO(blob), password=password) as sz:
        names = [n for n in sz.getnames() if not sz.getinfo(n).is_directory]
        assert sz.needs_password() is (password is not None)
        sz.extractall(factory=factory)
    return {n: factory.get(n).read() if n in factory.products else b"" for n in names}


def test_sevenzip_archive() -> None:
    blob = b.sevenzip_archive(FILES)
    assert blob[:6] == b"7z\xbc\xaf\x27\x1c"
    assert _7z_contents(blob) == FILES


def test_sevenzip_archive_encrypted_headers() -> None:
    import py7zr

    blob = b.sevenzip_archive({"secret.txt": DATA}, password="pw")
    assert blob[:6] == b"7z\xbc\xaf\x27\x1c"
    assert b"secret.txt" not in blob and "secret.txt".encode("utf-16-le") not in blob
    with pytest.raises(py7zr.exceptions.PasswordRequired):
        py7zr.SevenZipFile(io.BytesIO(blob))
    assert _7z_contents(blob, password="pw") == {"secret.txt": DATA}


@pytest.mark.parametrize("compress", [True, False])
def test_cab_archive(compress: bool) -> None:
    import cabarchive

    files = {"report.csv": FILES["report.csv"], "blob.bin": FILES["sub/dir/blob.bin"]}
    blob = b.cab_archive(files, compress=compress)
    assert blob[:8] == b"MSCF\x00\x00\x00\x00" and blob[24:26] == b"\x03\x01"
    if compress:
        assert b"CK" in blob  # MSZIP block signature
    arc = cabarchive.CabArchive()
    arc.parse(blob)
    assert {name: f.buf for name, f in arc.items()} == files


# --------------------------------------------------------------------------------------------
# RAR: an independent structural check, then an external reader

RAR_FILES = {**FILES, "données.txt": b"unicode name\n"}


def _read_vint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _walk_rar4(blob: bytes) -> tuple[list[tuple[int, int]], dict[str, bytes]]:
    """Check every HEAD_CRC; return [(type, flags)] and the stored files."""
    assert blob[:7] == b"Rar!\x1a\x07\x00"
    pos, blocks, files = 7, [], {}
    while pos < len(blob):
        crc, head_type, flags, head_size = struct.unpack_from("<HBHH", blob, pos)
        assert zlib.crc32(blob[pos + 2 : pos + head_size]) & 0xFFFF == crc, f"bad HEAD_CRC at {pos}"
        blocks.append((head_type, flags))
        add_size = struct.unpack_from("<I", blob, pos + 7)[0] if flags & 0x8000 else 0
        if head_type == 0x74:
            _, unp_size, _, file_crc, _, _, method, name_size, _ = struct.unpack_from("<IIBIIBBHI", blob, pos + 7)
            name = blob[pos + 32 : pos + 32 + name_size].decode("utf-8")
            data = blob[pos + head_size : pos + head_size + add_size]
            assert method == 0x30 and len(data) == unp_size and zlib.crc32(data) == file_crc
            files[name] = data
        pos += head_size + add_size
        if head_type == 0x7B:
            break
    assert pos == len(blob)
    return blocks, files


def _walk_rar5(blob: bytes) -> tuple[list[int], dict[str, bytes]]:
    """Check every header CRC32; return [header type] and the stored files."""
    assert blob[:8] == b"Rar!\x1a\x07\x01\x00"
    pos, types, files = 8, [], {}
    while pos < len(blob):
        (crc,) = struct.unpack_from("<I", blob, pos)
        size, body = _read_vint(blob, pos + 4)
        assert zlib.crc32(blob[pos + 4 : body + size]) == crc, f"bad header CRC at {pos}"
        head_type, p = _read_vint(blob, body)
        flags, p = _read_vint(blob, p)
        extra_size = data_size = 0
        if flags & 0x0001:
            extra_size, p = _read_vint(blob, p)
        if flags & 0x0002:
            data_size, p = _read_vint(blob, p)
        types.append(head_type)
        if head_type == 2:
            file_flags, p = _read_vint(blob, p)
            unp_size, p = _read_vint(blob, p)
            _, p = _read_vint(blob, p)  # attributes
            p += 4 if file_flags & 0x0002 else 0
            (data_crc,) = struct.unpack_from("<I", blob, p)
            comp_info, p = _read_vint(blob, p + 4)
            _, p = _read_vint(blob, p)  # host OS
            name_len, p = _read_vint(blob, p)
            name = blob[p : p + name_len].decode("utf-8")
            data = blob[body + size : body + size + data_size]
            assert (comp_info >> 7) & 7 == 0 and len(data) == unp_size and zlib.crc32(data) == data_crc
            files[name] = data
        if head_type == 4:
            return types, files  # the rest is encrypted
        pos = body + size + data_size
        if head_type == 5:
            break
    assert pos == len(blob) and extra_size == 0
    return types, files


def test_rar4_structure_and_crcs() -> None:
    blocks, files = _walk_rar4(b.rar4_stored(RAR_FILES))
    assert [t for t, _ in blocks] == [0x73, 0x74, 0x74, 0x74, 0x74, 0x7B]
    assert blocks[0][1] & 0x0080 == 0
    assert files == RAR_FILES


def test_rar4_encrypted_headers_flag() -> None:
    blob = b.rar4_stored(RAR_FILES, encrypted_headers=True)
    crc, head_type, flags, head_size = struct.unpack_from("<HBHH", blob, 7)
    assert (head_type, head_size) == (0x73, 13) and flags & 0x0080
    assert zlib.crc32(blob[9:20]) & 0xFFFF == crc
    assert b"report.csv" not in blob


def test_rar5_structure_and_crcs() -> None:
    types, files = _walk_rar5(b.rar5_stored(RAR_FILES))
    assert types == [1, 2, 2, 2, 2, 5]
    assert files == RAR_FILES


def test_rar5_encrypted_headers() -> None:
    blob = b.rar5_stored(RAR_FILES, encrypted_headers=True)
    types, files = _walk_rar5(blob)
    assert types == [4] and files == {}
    assert b"report.csv" not in blob


def test_rar5_vint() -> None:
    big = {"big.bin": b.random_bytes(20_000, 5)}  # sizes need 3-byte vints
    assert _walk_rar5(b.rar5_stored(big))[1] == big


BSDTAR = shutil.which("bsdtar")


@pytest.mark.skipif(BSDTAR is None, reason="no RAR reader: install libarchive-tools (bsdtar)")
@pytest.mark.parametrize("builder", [b.rar4_stored, b.rar5_stored], ids=["rar4", "rar5"])
def test_rar_bsdtar_lists_and_extracts(builder: Callable[..., bytes], tmp_path: Path) -> None:
    archive = tmp_path / "a.rar"
    archive.write_bytes(builder(RAR_FILES))
    listing = subprocess.run([BSDTAR, "-tf", str(archive)], capture_output=True, check=True, text=True)
    assert sorted(listing.stdout.splitlines()) == sorted(RAR_FILES)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([BSDTAR, "-xf", str(archive), "-C", str(out)], capture_output=True, check=True)
    assert {name: (out / name).read_bytes() for name in RAR_FILES} == RAR_FILES


@pytest.mark.skipif(BSDTAR is None, reason="no RAR reader: install libarchive-tools (bsdtar)")
@pytest.mark.parametrize("builder", [b.rar4_stored, b.rar5_stored], ids=["rar4", "rar5"])
def test_rar_bsdtar_sees_encryption(builder: Callable[..., bytes], tmp_path: Path) -> None:
    archive = tmp_path / "e.rar"
    archive.write_bytes(builder(RAR_FILES, encrypted_headers=True))
    proc = subprocess.run([BSDTAR, "-tf", str(archive)], check=False, capture_output=True, text=True)
    assert proc.returncode != 0 and "encrypt" in proc.stderr.lower()


@pytest.mark.skipif(BSDTAR is None, reason="no RAR reader: install libarchive-tools (bsdtar)")
def test_rar_bsdtar_rejects_bad_header_crc(tmp_path: Path) -> None:
    blob = bytearray(b.rar5_stored(RAR_FILES))
    blob[8] ^= 0x01  # main header CRC
    archive = tmp_path / "bad.rar"
    archive.write_bytes(bytes(blob))
    proc = subprocess.run([BSDTAR, "-tf", str(archive)], check=False, capture_output=True, text=True)
    assert proc.returncode != 0 and "crc" in proc.stderr.lower()


def _sevenzip_with_rar() -> str | None:
    for name in ("7z", "7zz"):
        exe = shutil.which(name)
        if exe and "Rar5" in subprocess.run([exe, "i"], check=False, capture_output=True, text=True).stdout:
            return exe
    return None


def test_rar_7z_lists() -> None:
    exe = _sevenzip_with_rar()
    if exe is None:
        pytest.skip("no 7-Zip with the RAR handler on PATH (Debian's 7zip package is built without it)")
    for builder in (b.rar4_stored, b.rar5_stored):
        proc = subprocess.run([exe, "l", "-si", "-trar"], input=builder(RAR_FILES), check=False, capture_output=True)
        assert proc.returncode == 0 and b"report.csv" in proc.stdout


# --------------------------------------------------------------------------------------------
# Placement helpers


def test_embed_random_and_fixed_offset() -> None:
    member = b.gzip_mtime0(DATA)
    data, off = b.embed(member, size=10_000, seed=11)
    assert len(data) == 10_000 and data[off : off + len(member)] == member
    assert b.embed(member, size=10_000, seed=11) == (data, off)
    data, off = b.embed(member, size=100, seed=1, offset=33)
    assert off == 33 and data[33:] == member  # grows past size rather than cutting the member
    with pytest.raises(ValueError, match="offset"):
        b.embed(member, size=100, seed=1, offset=-1)


def test_b64_and_truncate() -> None:
    member = b.gzip_dotnet(DATA)
    assert base64.b64decode(b.b64(member)) == member
    assert b.truncate(member, 0.5) == member[: len(member) // 2]
    assert b.truncate(member, 1.0) == member and b.truncate(member, 0.0) == b""
    with pytest.raises(ValueError, match="fraction"):
        b.truncate(member, 1.5)


MEMBERS = {
    "gzip": lambda: b.gzip_mtime0(DATA),
    "zlib": lambda: b.zlib_member(DATA),
    "bzip2": lambda: b.bzip2_member(DATA),
    "xz": lambda: b.xz_member(DATA),
    "lzma": lambda: b.lzma_alone(DATA),
    "zstd": lambda: b.zstd_member(DATA),
    "lz4": lambda: b.lz4_frame(DATA),
    "snappy": lambda: b.snappy_framed(DATA),
    "zip": lambda: b.zip_archive(FILES),
    "7z": lambda: b.sevenzip_archive(FILES),
    "rar4": lambda: b.rar4_stored(FILES),
    "rar5": lambda: b.rar5_stored(FILES),
    "cab": lambda: b.cab_archive({"a.txt": DATA}),
    "tar": lambda: b.tar_archive(FILES),
}
MAGIC = {
    "gzip": b"\x1f\x8b\x08",
    "zlib": b"\x78",
    "bzip2": b"BZh",
    "xz": b"\xfd7zXZ\x00",
    "lzma": b"\x5d\x00\x00",
    "zstd": b"\x28\xb5\x2f\xfd",
    "lz4": b"\x04\x22\x4d\x18",
    "snappy": b"\xff\x06\x00\x00sNaPpY",
    "zip": b"PK\x03\x04",
    "7z": b"7z\xbc\xaf\x27\x1c",
    "rar4": b"Rar!\x1a\x07\x00",
    "rar5": b"Rar!\x1a\x07\x01\x00",
    "cab": b"MSCF",
    "tar": b"",
}


@pytest.mark.parametrize("fmt", sorted(MEMBERS))
def test_fake_header_before(fmt: str) -> None:
    member = MEMBERS[fmt]()
    data, off = b.fake_header_before(member, fmt)
    assert data[off:] == member and off > 0
    assert data.startswith(MAGIC[fmt])
    if fmt == "tar":
        assert data[257:263] == b"ustar\x00"
    assert b.fake_header_before(member, fmt) == (data, off)


def test_fake_header_rar_auto_and_bad_crc() -> None:
    for builder, walk in ((b.rar4_stored, _walk_rar4), (b.rar5_stored, _walk_rar5)):
        member = builder(FILES)
        data, off = b.fake_header_before(member, "rar")
        assert data[:8] == member[:8] or data[:7] == member[:7] == b"Rar!\x1a\x07\x00"
        walk(data[off:])
        with pytest.raises(AssertionError, match="bad"):
            walk(data)


@pytest.mark.parametrize(
    ("fmt", "decode"),
    [
        ("gzip", gzip.decompress),
        ("zlib", zlib.decompress),
        ("bzip2", bz2.decompress),
        ("xz", lambda d: lzma.decompress(d, format=lzma.FORMAT_XZ)),
    ],
)
def test_fake_header_does_not_decode(fmt: str, decode: Callable[[bytes], bytes]) -> None:
    member = MEMBERS[fmt]()
    data, off = b.fake_header_before(member, fmt)
    with pytest.raises(Exception):  # noqa: B017 - any decoder error will do
        decode(data)
    assert decode(data[off:]) == DATA


def test_fake_header_unknown_format() -> None:
    with pytest.raises(ValueError, match="no fake header"):
        b.fake_header_before(b"x", "deflate")
