"""Builders of real compressed members and archives for the tests.

Every builder produces its bytes with the real library (or CLI) that writes the format, so
the tests exercise the sensor on what attackers' tools actually emit, not on hand-made
approximations. The two exceptions are RAR4 and RAR5: no RAR writer exists on PyPI or in
Debian, so :func:`rar4_stored` and :func:`rar5_stored` assemble "store"-method archives
with :mod:`struct`, following the RAR 4.x technote and the RAR 5.0 format specification
(these archives list and extract with libarchive's ``bsdtar``).

Everything here is deterministic for a given seed, except where the writer itself stamps the
current time or draws random salts (``gzip_plain``, tar ``gz``, encrypted archives).

Placement helpers (:func:`embed`, :func:`b64`, :func:`truncate`, :func:`fake_header_before`)
put members inside other bytes the way the scanner meets them in real files.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import lzma
import os
import random
import shutil
import struct
import subprocess
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

__all__ = [
    "FIXED_MTIME",
    "b64",
    "bzip2_member",
    "cab_archive",
    "embed",
    "fake_header_before",
    "gzip_dotnet",
    "gzip_mtime0",
    "gzip_named",
    "gzip_plain",
    "lz4_frame",
    "lzma_alone",
    "random_bytes",
    "rar4_stored",
    "rar5_stored",
    "raw_deflate",
    "sample_text",
    "sevenzip_archive",
    "snappy_framed",
    "tar_archive",
    "truncate",
    "xz_member",
    "zip_aes",
    "zip_archive",
    "zip_stored",
    "zip_zipcrypto",
    "zlib_member",
    "zstd_member",
]

#: Fixed modification time (2024-01-02 03:04:06 UTC) stamped by builders that take one.
FIXED_MTIME = 1_704_164_646
_FIXED_DATE_TIME = (2024, 1, 2, 3, 4, 6)  # the same instant as a zip/DOS date-time

RAR4_MARKER = b"Rar!\x1a\x07\x00"
RAR5_MARKER = b"Rar!\x1a\x07\x01\x00"

# --------------------------------------------------------------------------------------------
# Data


HOSTS = (
    b"# Copyright (c) 1993-2009 Microsoft Corp.\r\n#\r\n"
    b"# This is a sample HOSTS file used by Microsoft TCP/IP for Windows.\r\n"
    b"#\r\n# localhost name resolution is handled within DNS itself.\r\n#\t127.0.0.1       localhost\r\n"
    b"#\t::1             localhost\r\n"
    + b"".join(f"10.20.{n // 250}.{n % 250 + 1}\tsrv{n:03d}.corp.example\r\n".encode() for n in range(120))
)  # the file the atomic tests of the seed read and compress (%SystemRoot%\\System32\\drivers\\etc\\hosts)


def random_bytes(n: int, seed: int) -> bytes:
    """Return ``n`` pseudo-random bytes, the same for the same ``seed``."""
    return random.Random(seed).randbytes(n)


_FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory"]
_LAST = ["smith", "jones", "garcia", "miller", "davis", "lopez", "wilson", "anderson", "thomas", "moore"]
_DOMAINS = ["example.com", "corp.example.net", "mail.example.org", "hr.example.com"]


def sample_text(n: int, seed: int) -> bytes:
    """Return exactly ``n`` bytes of compressible CSV-like text (names, emails, amounts).

    Deterministic for a given ``seed``; it looks like the customer or HR exports that a DLP
    sensor is meant to catch being staged.
    """
    rng = random.Random(seed)
    lines = [b"id,first,last,email,department,salary\n"]
    total = len(lines[0])
    row = 1
    while total < n:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        dept = rng.choice(["sales", "finance", "it", "legal", "ops"])
        line = (
            f"{row},{first.title()},{last.title()},{first}.{last}@{rng.choice(_DOMAINS)},"
            f"{dept},{rng.randrange(30_000, 180_000)}\n"
        ).encode()
        lines.append(line)
        total += len(line)
        row += 1
    return b"".join(lines)[:n]


# --------------------------------------------------------------------------------------------
# Stream compressors


def gzip_plain(data: bytes) -> bytes:
    """gzip member from :func:`gzip.compress` (FLG 0, MTIME = now, XFL 2, OS 255)."""
    return gzip.compress(data)


def gzip_named(data: bytes, name: str, mtime: int = FIXED_MTIME) -> bytes:
    """gzip member from :class:`gzip.GzipFile` with ``filename=name``: FNAME set, fixed MTIME.

    ``GzipFile`` stores the base name with a trailing ``.gz`` removed, as ``gzip.open`` does.
    """
    buf = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=buf, mtime=mtime) as gz:
        gz.write(data)
    return buf.getvalue()


def gzip_mtime0(data: bytes) -> bytes:
    """gzip member from ``gzip.compress(data, mtime=0)`` (on 3.11 zlib writes ``... 02 03``)."""
    return gzip.compress(data, mtime=0)


#: Header written by the managed .NET Framework 4.x ``GZipStream`` (XFL 4, OS 0).
DOTNET_GZIP_HEADER = bytes.fromhex("1f8b0800000000000400")


def gzip_dotnet(data: bytes) -> bytes:
    """.NET Framework ``GZipStream``-style member: fixed header + raw deflate + CRC32 + ISIZE."""
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = comp.compress(data) + comp.flush()
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return DOTNET_GZIP_HEADER + body + trailer


def zlib_member(data: bytes, level: int = -1) -> bytes:
    """zlib stream from :func:`zlib.compress` (header ``78 01/5E/9C/DA`` by level)."""
    return zlib.compress(data, level)


def raw_deflate(data: bytes, level: int = -1) -> bytes:
    """Raw deflate (RFC 1951, no header or trailer) from zlib with ``wbits=-15``."""
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush()


def bzip2_member(data: bytes, level: int = 9) -> bytes:
    """bzip2 stream from :func:`bz2.compress` (``BZh9`` at the default level)."""
    return bz2.compress(data, level)


def xz_member(data: bytes, check: int = lzma.CHECK_CRC64) -> bytes:
    """xz stream from :func:`lzma.compress` with ``FORMAT_XZ`` and the given integrity check."""
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=check)


def lzma_alone(data: bytes) -> bytes:
    """LZMA_Alone (``.lzma``) stream from :func:`lzma.compress` with ``FORMAT_ALONE``."""
    return lzma.compress(data, format=lzma.FORMAT_ALONE)


def zstd_member(data: bytes, checksum: bool = False, level: int = 3) -> bytes:
    """Zstandard frame from ``zstandard.ZstdCompressor`` (content size written)."""
    import zstandard

    return zstandard.ZstdCompressor(level=level, write_checksum=checksum).compress(data)


def lz4_frame(data: bytes) -> bytes:
    """LZ4 frame from :func:`lz4.frame.compress` with the library defaults."""
    import lz4.frame

    return lz4.frame.compress(data)


def snappy_framed(data: bytes) -> bytes:
    """Snappy framing-format stream from :func:`snappy.stream_compress` (64 KiB chunks)."""
    import snappy

    out = io.BytesIO()
    snappy.stream_compress(io.BytesIO(data), out)
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# Archives


def zip_archive(files: Mapping[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """ZIP archive written in memory by :mod:`zipfile` with compression ``method``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE_TIME)
            info.compress_type = method
            info.external_attr = 0o100644 << 16
            zf.writestr(info, content)
    return buf.getvalue()


def zip_stored(files: Mapping[str, bytes]) -> bytes:
    """ZIP archive with every entry stored (method 0)."""
    return zip_archive(files, method=zipfile.ZIP_STORED)


def zip_aes(files: Mapping[str, bytes], password: bytes = b"pw") -> bytes:
    """WinZip AES-256 (AE-2, method 99, extra 0x9901) ZIP from ``pyzipper.AESZipFile``."""
    import pyzipper

    buf = io.BytesIO()
    with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as zf:
        zf.setpassword(password)
        zf.setencryption(pyzipper.WZ_AES, nbits=256)
        for name, content in files.items():
            info = zf.zipinfo_cls(name, date_time=_FIXED_DATE_TIME)  # AESZipInfo; a plain ZipInfo is refused
            info.compress_type = pyzipper.ZIP_DEFLATED
            zf.writestr(info, content)
    return buf.getvalue()


def _safe_relative(name: str) -> PurePosixPath:
    """Reject names that would escape a temp directory or read as a CLI option."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or name.startswith("-") or "\\" in name:
        raise ValueError(f"unsafe archive member name: {name!r}")
    return path


def zip_zipcrypto(files: Mapping[str, bytes], password: str = "pw") -> bytes:
    """Traditional (ZipCrypto) encrypted ZIP made by the real Info-ZIP ``zip -P`` CLI.

    The files are written to a temporary directory with a fixed mtime and added by name
    (``-X``: no extra attributes, ``-D``: no directory entries, ``-nw``: no wildcards).

    Raises:
        ValueError: if ``files`` is empty or a name is absolute, has ``..`` or starts with ``-``.
        RuntimeError: if the ``zip`` program is not installed (Debian package ``zip``).
    """
    if not files:
        raise ValueError("zip_zipcrypto needs at least one file")
    rels = [_safe_relative(name) for name in files]
    zip_cli = shutil.which("zip")
    if zip_cli is None:
        raise RuntimeError("zip_zipcrypto needs the Info-ZIP 'zip' CLI (apt-get install zip); not found on PATH")
    with tempfile.TemporaryDirectory(prefix="stagewatch-zip-") as tmp:
        root = Path(tmp, "in")
        names = []
        for rel, content in zip(rels, files.values(), strict=True):
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            os.utime(target, (FIXED_MTIME, FIXED_MTIME))
            names.append(str(rel))
        out = Path(tmp, "out.zip")
        proc = subprocess.run(
            [zip_cli, "-q", "-X", "-D", "-nw", "-P", password, str(out), *names],
            cwd=root,
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"zip -P failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
        return out.read_bytes()


_TAR_COMPRESSIONS = ("", "gz", "bz2", "xz")


def tar_archive(files: Mapping[str, bytes], compression: str = "") -> bytes:
    """tar archive from :mod:`tarfile` (mode ``w:`` + ``compression``: "", "gz", "bz2", "xz").

    Entries are regular files with mode 0644 and a fixed mtime; format is tarfile's default
    (PAX), so the ustar magic ``ustar\\0`` sits at offset 257 of each header.
    """
    if compression not in _TAR_COMPRESSIONS:
        raise ValueError(f"compression must be one of {_TAR_COMPRESSIONS}, got {compression!r}")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=f"w:{compression}") as tf:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = FIXED_MTIME
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def sevenzip_archive(files: Mapping[str, bytes], password: str | None = None) -> bytes:
    """7z archive from ``py7zr``; with a password, AES-256 with ``header_encryption=True``."""
    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", password=password, header_encryption=password is not None) as sz:
        for name, content in files.items():
            sz.writestr(content, name)
    return buf.getvalue()


def cab_archive(files: Mapping[str, bytes], compress: bool = True) -> bytes:
    """Microsoft Cabinet from ``cabarchive`` (MSZIP folder when ``compress``, else stored)."""
    import datetime

    import cabarchive

    arc = cabarchive.CabArchive()
    mtime = datetime.datetime(*_FIXED_DATE_TIME)
    for name, content in files.items():
        arc[name] = cabarchive.CabFile(content, mtime=mtime)
    return arc.save(compress=compress)


# --------------------------------------------------------------------------------------------
# RAR (hand-assembled: there is no RAR writer to call)


def _dos_datetime(date_time: tuple[int, int, int, int, int, int]) -> int:
    """Pack a (Y, M, D, h, m, s) tuple as a 32-bit MS-DOS date/time (date high, time low)."""
    year, month, day, hour, minute, second = date_time
    date = ((year - 1980) << 9) | (month << 5) | day
    time = (hour << 11) | (minute << 5) | (second // 2)
    return (date << 16) | time


def _rar4_block(head_type: int, flags: int, body: bytes) -> bytes:
    """One RAR4 block header: HEAD_CRC(2) HEAD_TYPE(1) HEAD_FLAGS(2) HEAD_SIZE(2) + body.

    HEAD_CRC is the low 16 bits of the CRC-32 of everything from HEAD_TYPE to the header end.
    """
    head_size = 7 + len(body)
    rest = struct.pack("<BHH", head_type, flags, head_size) + body
    return struct.pack("<H", zlib.crc32(rest) & 0xFFFF) + rest


def rar4_stored(files: Mapping[str, bytes], encrypted_headers: bool = False, seed: int = 0) -> bytes:
    """RAR 4.x archive whose files use method 0x30 ("store"), built per the RAR 4.x technote.

    Layout: marker block ``52 61 72 21 1A 07 00``; MAIN_HEAD (type 0x73, HEAD_SIZE 13); one
    FILE_HEAD (type 0x74, flag 0x8000 = ADD_SIZE present, host OS 3 Unix, mode 0100644,
    UNP_VER 20, METHOD 0x30, FILE_CRC = CRC-32 of the data) followed by the data per file;
    ENDARC_HEAD (type 0x7B). Non-ASCII names set FHD_UNICODE (0x0200) and are stored as UTF-8
    with no NUL (the form unrar and libarchive read as UTF-8).

    With ``encrypted_headers`` the main header carries flag 0x0080 (block headers encrypted,
    as ``rar -hp`` writes) and everything after it is opaque random bytes (salt + AES data),
    so the archive is structurally a header-encrypted RAR4 that no reader can list.
    """
    out = bytearray(RAR4_MARKER)
    main_flags = 0x0080 if encrypted_headers else 0x0000
    out += _rar4_block(0x73, main_flags, struct.pack("<HI", 0, 0))  # RESERVED1, RESERVED2
    if encrypted_headers:
        payload = sum(len(c) for c in files.values()) + 64 * max(len(files), 1)
        out += random_bytes(16 * ((payload + 15) // 16) + 8, seed)  # salt + AES-128 blocks
        return bytes(out)
    ftime = _dos_datetime(_FIXED_DATE_TIME)
    for name, content in files.items():
        if len(content) > 0xFFFFFFFF:
            raise ValueError("rar4_stored does not write HIGH_PACK_SIZE (files over 4 GiB)")
        flags = 0x8000
        try:
            raw_name = name.encode("ascii")
        except UnicodeEncodeError:
            raw_name = name.encode("utf-8")
            flags |= 0x0200  # FHD_UNICODE, UTF-8 form (no NUL separator)
        body = struct.pack(
            "<IIBIIBBHI",
            len(content),  # PACK_SIZE
            len(content),  # UNP_SIZE
            3,  # HOST_OS: Unix
            zlib.crc32(content),  # FILE_CRC
            ftime,  # FTIME (DOS)
            20,  # UNP_VER: 2.0 is enough for store
            0x30,  # METHOD: store
            len(raw_name),  # NAME_SIZE
            0o100644,  # ATTR: Unix st_mode
        )
        out += _rar4_block(0x74, flags, body + raw_name)
        out += content
    out += _rar4_block(0x7B, 0x4000, b"")
    return bytes(out)


def _vint(value: int) -> bytes:
    """RAR5 variable-length integer: 7 bits per byte, least significant first, bit 7 = more."""
    if value < 0:
        raise ValueError("vint must be non-negative")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _rar5_block(fields: bytes) -> bytes:
    """One RAR5 header: CRC32(4) + vint header size + ``fields`` (type, flags, ... extra).

    The header size counts from the header type to the end of the header; the CRC-32 covers
    the header size vint and everything after it up to the end of the header (not the data).
    """
    sized = _vint(len(fields)) + fields
    return struct.pack("<I", zlib.crc32(sized)) + sized


def rar5_stored(files: Mapping[str, bytes], encrypted_headers: bool = False, seed: int = 0) -> bytes:
    """RAR 5.0 archive with stored files (compression info 0), built per the RAR 5.0 spec.

    Layout: signature ``52 61 72 21 1A 07 01 00``; main archive header (type 1, no flags);
    per file a file header (type 2, header flag 0x0002 = data area present, file flags
    0x0002 mtime + 0x0004 CRC32, attributes 0100644, host OS 1 Unix, UTF-8 name) followed by
    the data; end of archive header (type 5).

    With ``encrypted_headers`` an archive encryption header (type 4: version 0 = AES-256,
    flag 0x0001 password check present, KDF count 15, 16-byte salt, 12-byte check value)
    follows the signature and the rest is opaque random bytes (IV + AES data), as
    ``rar -hp`` writes.
    """
    out = bytearray(RAR5_MARKER)
    if encrypted_headers:
        rng = random.Random(seed)
        enc = _vint(4) + _vint(0) + _vint(0) + _vint(0x0001) + bytes([15]) + rng.randbytes(16) + rng.randbytes(12)
        out += _rar5_block(enc)
        payload = sum(len(c) for c in files.values()) + 64 * (len(files) + 2)
        out += rng.randbytes(16 * ((payload + 15) // 16) + 16)
        return bytes(out)
    out += _rar5_block(_vint(1) + _vint(0) + _vint(0))  # type main, header flags 0, archive flags 0
    for name, content in files.items():
        raw_name = name.encode("utf-8")
        fields = (
            _vint(2)  # header type: file
            + _vint(0x0002)  # header flags: data area present
            + _vint(len(content))  # data size
            + _vint(0x0002 | 0x0004)  # file flags: mtime (uint32 Unix) + CRC32 present
            + _vint(len(content))  # unpacked size
            + _vint(0o100644)  # attributes (Unix mode)
            + struct.pack("<II", FIXED_MTIME, zlib.crc32(content))  # mtime, data CRC32
            + _vint(0)  # compression info: version 0, method 0 (store)
            + _vint(1)  # host OS: Unix
            + _vint(len(raw_name))
            + raw_name
        )
        out += _rar5_block(fields)
        out += content
    out += _rar5_block(_vint(5) + _vint(0) + _vint(0))  # type end, header flags 0, end flags 0
    return bytes(out)


# --------------------------------------------------------------------------------------------
# Placement helpers


def embed(member: bytes, *, size: int, seed: int, offset: int | None = None) -> tuple[bytes, int]:
    """Plant ``member`` in random bytes; return ``(data, offset)`` of the member.

    The result is ``max(size, offset + len(member))`` bytes long: random padding before and
    after the member. Without ``offset`` the offset is drawn (deterministically from ``seed``)
    so that the member fits inside ``size``.
    """
    rng = random.Random(seed)
    if offset is None:
        offset = rng.randrange(max(size - len(member), 0) + 1)
    elif offset < 0:
        raise ValueError("offset must be non-negative")
    tail = max(size - offset - len(member), 0)
    return rng.randbytes(offset) + member + rng.randbytes(tail), offset


def b64(member: bytes) -> bytes:
    """Standard base64 of ``member`` (no line breaks), as ``ToBase64String`` writes it."""
    return base64.b64encode(member)


def truncate(member: bytes, fraction: float) -> bytes:
    """The first ``fraction`` (0..1) of ``member``: a member cut short by a partial write."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be between 0 and 1")
    return member[: int(len(member) * fraction)]


def _fake_header(fmt: str, member: bytes, rng: random.Random) -> bytes:
    """Magic and plausible header bytes of ``fmt``, then garbage that cannot decode."""
    junk = rng.randbytes(40)
    if fmt == "gzip":
        return bytes.fromhex("1f8b0800") + bytes.fromhex("000000000003") + junk
    if fmt == "zlib":
        return b"\x78\x9c" + junk
    if fmt == "bzip2":
        return b"BZh9" + bytes.fromhex("314159265359") + junk
    if fmt == "xz":
        flags = b"\x00\x04"  # CRC-64; the stream header CRC is right, the block is garbage
        return b"\xfd7zXZ\x00" + flags + struct.pack("<I", zlib.crc32(flags)) + junk
    if fmt == "lzma":
        return bytes.fromhex("5d00008000") + b"\xff" * 8 + junk
    if fmt == "zstd":
        return b"\x28\xb5\x2f\xfd" + b"\x60" + rng.randbytes(2) + junk
    if fmt == "lz4":
        return bytes.fromhex("04224d186440a7") + junk  # real default frame descriptor + HC
    if fmt == "snappy":
        return b"\xff\x06\x00\x00sNaPpY" + b"\x00" + struct.pack("<I", len(junk))[:3] + junk
    if fmt == "zip":
        name = b"fake.txt"
        head = struct.pack("<4sHHHHH", b"PK\x03\x04", 20, 0, 8, 0, 0) + rng.randbytes(12)
        return head + struct.pack("<HH", len(name), 0) + name + junk
    if fmt == "7z":
        return b"7z\xbc\xaf\x27\x1c\x00\x04" + rng.randbytes(24) + junk  # StartHeaderCRC wrong
    if fmt == "rar":
        fmt = "rar5" if member.startswith(RAR5_MARKER) else "rar4"
    if fmt == "rar4":
        head = struct.pack("<BHHHI", 0x73, 0, 13, 0, 0)
        crc = (zlib.crc32(head) ^ 0x5A5A) & 0xFFFF  # deliberately wrong HEAD_CRC
        return RAR4_MARKER + struct.pack("<H", crc) + head + junk
    if fmt == "rar5":
        crc = zlib.crc32(b"\x03\x01\x00\x00") ^ 0x5A5A5A5A  # deliberately wrong header CRC
        return RAR5_MARKER + struct.pack("<I", crc) + b"\x03\x01\x00\x00" + junk
    if fmt == "cab":
        head = b"MSCF" + b"\x00" * 4 + rng.randbytes(4) + b"\x00" * 4 + struct.pack("<I", 0x2C) + b"\x00" * 4
        return head + b"\x03\x01\x01\x00\x01\x00" + junk
    if fmt == "tar":
        block = bytearray(rng.randbytes(512))
        block[0:100] = b"fake.txt".ljust(100, b"\x00")
        block[257:265] = b"ustar\x0000"
        block[148:156] = b"0000000\x00"  # checksum that cannot match the block
        return bytes(block)
    raise ValueError(f"no fake header for format {fmt!r}")


def fake_header_before(member: bytes, fmt: str, *, seed: int = 0) -> tuple[bytes, int]:
    """Put a fake header of ``fmt`` right before ``member``; return ``(data, member_offset)``.

    The fake has the format's magic and plausible header fields, then random bytes that do
    not decode (a bad CRC where the header has one), so a verifier must reject it and still
    find the real member just after. ``fmt`` is a ``stagewatch.format`` value: gzip, zlib,
    bzip2, xz, lzma, zstd, lz4, snappy, zip, 7z, rar (RAR4 or RAR5 after ``member``'s marker;
    "rar4"/"rar5" force one), cab or tar.
    """
    fake = _fake_header(str(fmt), member, random.Random(seed))
    return fake + member, len(fake)
