"""Containers by design (PDF, PNG, OOXML, JAR): one record per container in every direction and on disk,
with `stagewatch.streams` summing what it holds; anything that is not there by design stays its own finding."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from sensor.config import Settings
from sensor.detect.detector import Detector, Root
from sensor.model import ContentObject, FileOrigin, Finding, Format, Kind, StreamSummary
from sensor.output.ecs import finding_record
from sensor.pipeline import Job, scan_inputs
from sensor.stats import RunStats
from tests import appbuild as ab
from tests import builders as b
from tests.conftest import scan
from tests.netbuild import segments, write_pcap

CLIENT, SERVER, INSIDE = "10.0.0.10", "203.0.113.80", "10.0.0.80"  # home_net is 10/8
PICTURES = "/home/bob/Pictures/"  # not a staging folder: what a container holds decides alone
SECRET = b.sample_text(40_000, seed=31)


def flate_streams(n: int) -> list[bytes]:
    """`n` page content streams, compressed as a PDF writer's FlateDecode does (zlib)."""
    return [
        zlib.compress(b"BT /F1 12 Tf 72 712 Td (" + b.sample_text(600, seed=100 + i) + b") Tj ET") for i in range(n)
    ]


def pdf(streams: list[bytes], embedded: tuple[bytes, ...] = ()) -> bytes:
    """A small PDF written by hand: one object per FlateDecode stream, then embedded files stored as they are."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    objs = [(b"/Filter /FlateDecode", s) for s in streams] + [(b"/Type /EmbeddedFile", e) for e in embedded]
    for i, (dictionary, body) in enumerate(objs, 1):
        out += b"%d 0 obj\n<< /Length %d %s >>\nstream\n" % (i, len(body), dictionary)
        out += body + b"\nendstream\nendobj\n"
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n%%%%EOF\n" % (len(objs) + 1)
    return bytes(out)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(idat_chunks: int = 4) -> tuple[bytes, list[bytes]]:
    """A PNG with an iCCP profile, two zTXt comments and its image stream cut over several IDAT chunks.

    Returns the PNG and the zlib streams of its iCCP and zTXt chunks (the IDAT run is one more).
    """
    raw = b"".join(b"\x00" + bytes((x * y) % 256 for x in range(300)) for y in range(100))
    image = zlib.compress(raw)
    step = -(-len(image) // idat_chunks)
    profile = zlib.compress(b.sample_text(1500, seed=41))
    comments = [zlib.compress(b.sample_text(2000, seed=42 + i)) for i in range(2)]
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 100, 100, 8, 2, 0, 0, 0))
        + chunk(b"iCCP", b"sRGB\x00\x00" + profile)
        + chunk(b"zTXt", b"Comment\x00\x00" + comments[0])
        + chunk(b"zTXt", b"Author\x00\x00" + comments[1])
        + b"".join(chunk(b"IDAT", image[i : i + step]) for i in range(0, len(image), step))
        + chunk(b"IEND", b"")
    )
    return data, [profile, *comments]


def docx() -> bytes:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        z.writestr("word/document.xml", "<w:document>" + "<w:p/>" * 300 + "</w:document>")
    return bio.getvalue()


def jar() -> bytes:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nMain-Class: a.Main\r\n\r\n")
        for i in range(5):
            z.writestr(f"a/C{i}.class", b"\xca\xfe\xba\xbe" + b.sample_text(3000, seed=50 + i))
    return bio.getvalue()


STREAMS = flate_streams(50)
ATTACHED = gzip.compress(b.sample_text(5000, seed=60), mtime=0)  # an embedded .gz: also held by design
PDF = pdf(STREAMS, (ATTACHED,))
PDF_SUMMARY = StreamSummary(51, ((Format.GZIP, 1), (Format.ZLIB, 50)), sum(map(len, STREAMS)) + len(ATTACHED))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unfolded(det: Detector, data: bytes, name: str) -> list:
    """The detector's findings before the per-container fold (its reference for what was folded)."""
    origin = FileOrigin(PICTURES + name, len(data), 1_700_000_000.0, "bob", "WS-01", "/cases")
    obj = ContentObject(origin=origin, data=data, name=name)
    return list(det.scan_object(obj, Root(obj), 0))


# -- staged files --------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", [PICTURES, "/cases/WS-01/Users/bob/AppData/Local/Temp/"])
def test_a_pdf_with_51_streams_is_one_record(default_detector, folder):
    before = default_detector.stats.findings
    (f,) = scan(default_detector, PDF, "report.pdf", folder)
    assert default_detector.stats.findings - before == 1
    assert (f.kind, f.severity, f.reasons) == (Kind.EVENT, 15, ("inside_container",))
    assert f.container.mime_type == "application/pdf" and f.container.sha256 == sha(PDF)
    assert f.streams == PDF_SUMMARY
    # the record is the first stream's: same hash, offset and id on every scan (re-scans dedupe)
    assert f.member.sha256 == sha(STREAMS[0]) and f.member.offset == PDF.index(STREAMS[0])
    (again,) = scan(default_detector, PDF, "report.pdf", folder)
    assert again.event_id == f.event_id
    rec = finding_record(f)
    assert rec["stagewatch"]["streams"] == {"count": 51, "formats": {"gzip": 1, "zlib": 50}, "bytes": PDF_SUMMARY.bytes}
    assert rec["event"]["kind"] == "event" and rec["file"]["hash"]["sha256"] == sha(STREAMS[0])


def test_a_png_with_several_idat_chunks_is_one_record(default_detector):
    data, known = png(idat_chunks=4)
    members = unfolded(default_detector, data, "shot.png")
    assert [m.member.sha256 for m in members[:3]] == [sha(s) for s in known] and len(members) == 4  # + the IDAT run
    (f,) = scan(default_detector, data, "shot.png", PICTURES)
    assert f.reasons == ("inside_container",) and f.container.mime_type == "image/png"
    assert f.streams == StreamSummary(4, ((Format.ZLIB, 4),), sum(m.member.length for m in members))
    assert f.streams.bytes > sum(map(len, known))
    assert f.member.sha256 == sha(known[0])


@pytest.mark.parametrize(
    "name,build,mime",
    [
        ("q3.docx", docx, "application/vnd.openxmlformats-officedocument"),
        ("tool.jar", jar, "application/java-archive"),
    ],
)
def test_a_document_zip_is_one_record_with_its_summary(default_detector, name, build, mime):
    data = build()
    (f,) = scan(default_detector, data, name)
    assert f.reasons == ("zip_is_document",) and f.kind is Kind.EVENT
    assert f.container.mime_type.startswith(mime)
    assert f.streams == StreamSummary(1, ((Format.ZIP, 1),), len(data))


def test_a_document_inside_a_pdf_is_folded_with_its_streams(default_detector):
    data = pdf(STREAMS[:3], (docx(),))
    (f,) = scan(default_detector, data, "with-attachment.pdf", PICTURES)
    assert f.streams == StreamSummary(4, ((Format.ZIP, 1), (Format.ZLIB, 3)), sum(map(len, STREAMS[:3])) + len(docx()))


def test_an_encrypted_zip_appended_to_a_png_is_its_own_finding(default_detector):
    data, _ = png()
    hidden = b.zip_aes({"loot.csv": SECRET})
    found = scan(default_detector, data + hidden, "cat.png", PICTURES)
    assert len(found) == 2
    (zipped,) = [f for f in found if f.member.format is Format.ZIP]
    (image,) = [f for f in found if f is not zipped]
    assert zipped.member.sha256 == sha(hidden) and zipped.member.encrypted
    assert zipped.kind is Kind.ALERT and "encrypted" in zipped.reasons and zipped.streams is None
    assert image.streams.count == 4 and image.streams.formats == ((Format.ZLIB, 4),)


def test_a_sensitive_archive_inside_a_pdf_is_its_own_alert(default_detector):
    loot = b.zip_archive({"etc/passwd": b"root:x:0:0:root:/root:/bin/bash\n" * 200})
    found = scan(default_detector, pdf(STREAMS[:5], (loot,)), "invoice.pdf", PICTURES)
    (alert,) = [f for f in found if f.kind is Kind.ALERT]
    assert alert.member.sha256 == sha(loot) and alert.sensitive == ("etc/passwd",)
    (folded,) = [f for f in found if f is not alert]
    assert folded.streams == StreamSummary(5, ((Format.ZLIB, 5),), sum(map(len, STREAMS[:5])))


def test_a_content_rule_hit_inside_a_pdf_is_its_own_finding(tmp_path, rule_cache):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "codename.yar").write_text('rule codename { strings: $a = "PROJECT-NIGHTJAR" condition: $a }')
    det = Detector(Settings(observer="test", cache_dir=rule_cache, user_rules=rules))
    marked = zlib.compress(b"BT (" + b.sample_text(3000, seed=70) + b" PROJECT-NIGHTJAR budget) Tj ET")
    found = scan(det, pdf([*STREAMS[:4], marked]), "minutes.pdf", PICTURES)
    (hit,) = [f for f in found if f.content_rules]
    assert hit.member.sha256 == sha(marked) and hit.kind is Kind.ALERT and "content_rule" in hit.reasons
    (folded,) = [f for f in found if f is not hit]
    assert folded.streams.count == 4


# -- over HTTP, in every direction ---------------------------------------------------------------------


def run_pcap(cache: Path, pcap: Path) -> list[Finding]:
    """The findings of a capture through the real pipeline (sessions, HTTP extractor, detector)."""
    settings = Settings(home_net=("10.0.0.0/8",), observer="test", cache_dir=cache)
    return [r for r in scan_inputs(Job((str(pcap),), settings), RunStats()) if isinstance(r, Finding)]


def http(tmp_path: Path, exchange: tuple[bytes, bytes], server: str = SERVER, name: str = "http.pcap") -> Path:
    c = ab.http_conversation([exchange], client=CLIENT, server=server, server_port=80)
    return write_pcap(tmp_path / name, segments(c))


def ok() -> bytes:
    return ab.http_response(200, b"ok", [("Content-Type", "text/plain")])


def _get(body: bytes, mime: str) -> tuple[bytes, bytes]:
    return ab.http_request("GET", "/files/report.pdf", "docs.example"), ab.http_response(
        200, body, [("Content-Type", mime)]
    )


def _post(body: bytes, mime: str) -> tuple[bytes, bytes]:
    return ab.http_request("POST", "/upload/report.pdf", "drop.example", body, [("Content-Type", mime)]), ok()


def _multipart(body: bytes, mime: str) -> tuple[bytes, bytes]:
    ctype, form = ab.multipart([ab.Part("file", body, filename="report.pdf", content_type=mime)])
    return ab.http_request("POST", "/form", "drop.example", form, [("Content-Type", ctype)]), ok()


HTTP_WAYS = [
    ("download", _get, {}, "inbound"),
    ("upload", _post, {}, "outbound"),
    ("multipart_upload", _multipart, {}, "outbound"),
    ("internal_download", _get, {"server": INSIDE}, "internal"),
]


@pytest.mark.parametrize("way,exchange,where,direction", HTTP_WAYS, ids=[w[0] for w in HTTP_WAYS])
def test_a_pdf_over_http_is_one_record_in_every_direction(tmp_path, rule_cache, way, exchange, where, direction):
    (f,) = run_pcap(rule_cache, http(tmp_path, exchange(PDF, "application/pdf"), **where))
    assert f.origin.direction == direction
    assert (f.kind, f.reasons) == (Kind.EVENT, ("inside_container",))
    assert f.container.mime_type == "application/pdf" and f.container.sha256 == sha(PDF)
    assert f.streams == PDF_SUMMARY and f.member.sha256 == sha(STREAMS[0])
    assert finding_record(f)["stagewatch"]["streams"]["count"] == 51
    again = run_pcap(rule_cache, http(tmp_path, exchange(PDF, "application/pdf"), name="again.pcap", **where))
    assert [g.event_id for g in again] == [f.event_id]


@pytest.mark.parametrize("exchange,direction", [(_post, "outbound"), (_get, "inbound")])
def test_an_encrypted_zip_appended_to_a_png_over_http_is_its_own_finding(tmp_path, rule_cache, exchange, direction):
    data, _ = png()
    hidden = b.zip_aes({"loot.csv": SECRET})
    found = run_pcap(rule_cache, http(tmp_path, exchange(data + hidden, "image/png")))
    (zipped,) = [f for f in found if f.member.sha256 == sha(hidden)]
    assert zipped.origin.direction == direction and "encrypted" in zipped.reasons and zipped.streams is None
    assert zipped.kind is (Kind.ALERT if direction == "outbound" else Kind.EVENT)
    (image,) = [f for f in found if f is not zipped]
    assert image.reasons == ("inside_container",) and image.streams.count == 4


def test_pdf_and_docx_attachments_are_one_record_each(tmp_path, rule_cache):
    message = ab.smtp_message(
        "bob@example.test",
        ["drop@mail.example"],
        "minutes",
        "see attached",
        [ab.Attachment("report.pdf", PDF, subtype="pdf"), ab.Attachment("q3.docx", docx())],
    )
    c = ab.smtp_session([("bob@example.test", ["drop@mail.example"], message)], client=CLIENT, server=SERVER)
    found = run_pcap(rule_cache, write_pcap(tmp_path / "smtp.pcap", segments(c)))
    assert [(f.name, f.origin.direction, f.reasons, f.kind) for f in found] == [
        ("report.pdf", "outbound", ("inside_container",), Kind.EVENT),
        ("q3.docx", "outbound", ("zip_is_document",), Kind.EVENT),
    ]
    assert found[0].streams == PDF_SUMMARY and found[0].encoding == ("mime", "base64")
    assert found[1].streams == StreamSummary(1, ((Format.ZIP, 1),), len(docx()))
