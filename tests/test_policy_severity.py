"""Staging paths, sensitive names, containers and documents: what makes an alert and what does not."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest

from sensor.config import DEFAULT_SENSITIVE_NAMES
from sensor.model import Format, Kind
from sensor.policy import SensitiveNames, folder_kind
from tests import builders as b
from tests.conftest import scan

TEXT = b.sample_text(30_000, seed=21)


@pytest.mark.parametrize(
    "path,kind",
    [
        (r"C:\Users\bob\AppData\Local\Temp\x.gz", "staging"),
        ("WS-01/Users/bob/AppData/Local/Temp/x.gz", "staging"),
        (r"C:\ProgramData\Microsoft\x.bin", "staging"),
        (r"C:\Users\Public\Documents\a.zip", "staging"),
        (r"C:\WINDOWS\TEMP\a.cab", "staging"),
        ("/tmp/a.tgz", "staging"),
        ("/var/tmp/.x", "staging"),
        ("/dev/shm/x", "staging"),
        ("/var/log/syslog.2.gz", "log"),
        ("/cases/tmp/srv/var/log/syslog.2.gz", "log"),  # the deepest match wins
        ("/var/log/app/tmp/x.gz", "staging"),
        ("/home/bob/tmp.gz", None),  # the file name is not a folder
        ("/home/bob/Documents/a.zip", None),
        (r"C:\Users\bob\Desktop\temporary\a.zip", None),
    ],
)
def test_folder_kind(path, kind):
    assert folder_kind(path) == kind


def test_sensitive_names():
    m = SensitiveNames(DEFAULT_SENSITIVE_NAMES)
    names = [
        "etc/passwd",
        "home/u/.ssh/id_rsa",
        "vault.KDBX",
        "Chrome/Default/Login Data",
        "Windows/NTDS/ntds.dit",
        "config/SAM",
        "mail.pst",
        "notes.txt",
        "passwd.bak",
        "lsass_4411.dmp",
    ]
    assert m.match(names) == (
        "etc/passwd",
        "home/u/.ssh/id_rsa",
        "vault.KDBX",
        "Chrome/Default/Login Data",
        "Windows/NTDS/ntds.dit",
        "config/SAM",
        "mail.pst",
        "lsass_4411.dmp",
    )


def _png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\x00" + bytes((x * y) % 256 for x in range(300)) for y in range(100))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 100, 100, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _pdf() -> bytes:
    stream = zlib.compress(b"BT /F1 12 Tf 72 712 Td (" + TEXT[:3000] + b") Tj ET")
    head = b"%%PDF-1.7\n1 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
    return head + stream + b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def _docx() -> bytes:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        z.writestr("word/document.xml", "<w:document>" + "<w:p/>" * 300 + "</w:document>")
    return bio.getvalue()


@pytest.mark.parametrize(
    "name,build,fmt", [("shot.png", _png, Format.ZLIB), ("a.pdf", _pdf, Format.ZLIB), ("r.docx", _docx, Format.ZIP)]
)
def test_containers_and_documents_are_low_events(detector, name, build, fmt):
    (f,) = scan(detector, build(), name)  # in a staging folder, yet not an alert
    assert f.member.format is fmt
    assert f.kind is Kind.EVENT and f.severity <= 15
    assert f.reasons in (("inside_container",), ("zip_is_document",))
    assert f.container.mime_type in ("image/png", "application/pdf", "application/vnd.openxmlformats-officedocument")


def test_archive_of_documents_is_still_an_archive(detector):
    data = b.zip_archive({"q3.docx": _docx(), "shot.png": _png()})
    (f,) = scan(detector, data, "out.zip")
    assert f.kind is Kind.ALERT and f.member.inner.names == ("q3.docx", "shot.png")


def test_outside_staging_is_an_event_and_hidden_extension_raises(detector):
    (plain,) = scan(detector, b.gzip_plain(TEXT), "a.gz", "/srv/share/")
    (hidden,) = scan(detector, b.gzip_plain(TEXT), "a.dat", "/srv/share/")
    assert plain.kind is Kind.EVENT and hidden.kind is Kind.EVENT
    assert hidden.severity > plain.severity and "extension_mismatch" in hidden.reasons
    (staged,) = scan(detector, b.gzip_plain(TEXT), "a.gz")
    assert staged.kind is Kind.ALERT and staged.severity > plain.severity


def test_event_id_is_deterministic(detector):
    data = b.bzip2_member(TEXT)
    (a,) = scan(detector, data)
    (b2,) = scan(detector, data)
    (c,) = scan(detector, data, "other.dat")
    assert a.event_id == b2.event_id != c.event_id
