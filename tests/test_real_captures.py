"""The real third-party captures of ../shared/pcaps/real (MANIFEST.md): read without a crash, and the
compressed members they carry are found, in HTTP objects (with the layers peeled off) or raw streams.

The expected lengths are not ours: each member is cut out of tshark's view of the capture (tests/tshark_ref.py:
its exported objects, the content-coded HTTP bodies it dissects, a TCP stream it follows) and measured here
with the standard library, by decoding it to its end.
"""

from __future__ import annotations

import collections
import email
import email.policy
import io
import lzma
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from sensor.config import Settings
from sensor.model import Finding, Format
from sensor.pipeline import Job, scan_inputs
from sensor.stats import RunStats
from tests.conftest import SHARED, absent, requires
from tests.tshark_ref import coded_bodies, export_objects, follow_tcp, tshark_missing

REAL = SHARED / "pcaps" / "real"
pytestmark = requires(absent(REAL))
needs_tshark = requires(tshark_missing())


class Reference:
    """tshark's view of one capture, each tshark run made once."""

    def __init__(self, pcap: Path, workdir: Path) -> None:
        self.pcap, self.workdir = pcap, workdir
        self._objects: dict[str, dict[str, bytes]] = {}
        self._coded: list[bytes] | None = None
        self._servers: dict[int, bytes] = {}

    def objects(self, proto: str) -> dict[str, bytes]:
        """The objects `tshark --export-objects proto` writes, by file name."""
        if proto not in self._objects:
            exported = export_objects(self.pcap, proto, self.workdir)
            self._objects[proto] = {o.filename: o.path.read_bytes() for o in exported}
        return self._objects[proto]

    def object(self, proto: str, name: str | None = None) -> bytes:
        """One exported object: the one named `name`, or the only one there is."""
        objects = self.objects(proto)
        if name is None:
            (name,) = objects
        return objects[name]

    def coded(self) -> list[bytes]:
        """The content-coded HTTP bodies in frame order, as sent (de-chunked, not decoded)."""
        if self._coded is None:
            self._coded = [b.data for b in coded_bodies(self.pcap)]
        return self._coded

    def server(self, stream: int) -> bytes:
        """What the server of TCP stream `stream` sent."""
        if stream not in self._servers:
            self._servers[stream] = follow_tcp(self.pcap, stream)[1]
        return self._servers[stream]


# --- the standard library's reading of formats, independent of sensor/ ---------------------------------------

WBITS = {"gzip": 31, "zlib": 15, "deflate": -15}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"


def carved(fmt: str, data: bytes) -> int:
    """The length of the `fmt` member at the start of `data`: the bytes its decoder consumes to the member's end."""
    if fmt == "zip":  # the archive opens, and it ends with its end-of-central-directory record and comment
        zipfile.ZipFile(io.BytesIO(data)).namelist()
        end = data.rindex(b"PK\x05\x06")
        return end + 22 + int.from_bytes(data[end + 20 : end + 22], "little")
    decoder = lzma.LZMADecompressor(lzma.FORMAT_ALONE) if fmt == "lzma" else zlib.decompressobj(WBITS[fmt])
    decoder.decompress(data)
    assert decoder.eof, f"no whole {fmt} member here"
    return len(data) - len(decoder.unused_data)


def idat_span(png: bytes) -> int:
    """The bytes a PNG's zlib stream covers in the file: from its first IDAT's data to the end of its last,
    the chunk framing between them included (a stream split over IDAT chunks is carved whole)."""
    pos, spans = 8, []
    while pos < len(png):
        size, kind = struct.unpack_from(">I4s", png, pos)
        if kind == b"IDAT":
            spans.append((pos + 8, pos + 8 + size))
        pos += 12 + size
    stream = b"".join(png[a:b] for a, b in spans)
    assert carved("zlib", stream) == len(stream)
    return spans[-1][1] - spans[0][0]


def pdf_flate_streams(pdf: bytes) -> list[bytes]:
    """The data of each stream object whose dictionary names /FlateDecode, in file order, each to its zlib end."""
    streams = []
    for obj in re.finditer(rb"\bobj\b((?:(?!endobj).)*?)\bstream\r?\n", pdf, re.S):
        if b"/FlateDecode" in obj[1]:
            streams.append(pdf[obj.end() : obj.end() + carved("zlib", pdf[obj.end() :])])
    return streams


def attachment(eml: bytes, content_type: str) -> bytes:
    """The decoded payload of the message's one part of `content_type`."""
    message = email.message_from_bytes(eml, policy=email.policy.default)
    (part,) = [p for p in message.walk() if p.get_content_type() == content_type]
    return part.get_payload(decode=True)


def form_part(body: bytes, magic: bytes) -> tuple[int, str, bytes]:
    """The multipart/form-data part whose content starts with `magic`: (its offset in the body, filename, content)."""
    delimiter = body[: body.index(b"\r\n")]  # the body opens with the first one
    starts = [m.start() for m in re.finditer(re.escape(delimiter), body)]
    for start, end in zip(starts, starts[1:], strict=False):
        head_end = body.index(b"\r\n\r\n", start) + 4
        if body.startswith(magic, head_end):
            (filename,) = re.findall(rb'filename="([^"]*)"', body[start:head_end])
            return head_end, filename.decode(), body[head_end : end - 2]  # the CRLF before a delimiter is its own
    raise AssertionError(f"no part starting with {magic!r}")


def ar_members(ar: bytes) -> dict[str, bytes]:
    """The members of an ar archive (a .deb) by name, the last one as far as the data goes."""
    assert ar.startswith(b"!<arch>\n")
    pos, members = 8, {}
    while pos + 60 <= len(ar):
        name, size = ar[pos : pos + 16].decode().strip().rstrip("/"), int(ar[pos + 48 : pos + 58])
        members[name] = ar[pos + 60 : pos + 60 + size]
        pos += 60 + size + size % 2
    return members


def http_body(sent: bytes) -> bytes:
    """What follows the first HTTP header block of a direction (one response, not chunked)."""
    return sent.partition(b"\r\n\r\n")[2]


# --- capture -> the members it must yield: (format, encoding layers, their length in tshark's view) -------------

Cut = Callable[[Reference], bytes]
Want = tuple[str, tuple[str, ...], Callable[[Reference], int]]


def member(fmt: str, cut: Cut, *layers: str) -> Want:
    """A `fmt` member at the start of the bytes `cut` takes from tshark's view."""
    return fmt, layers, lambda ref: carved(fmt, cut(ref))


def png(cut: Cut, *layers: str) -> Want:
    """The zlib stream of the PNG `cut` takes from tshark's view (a PNG is a container by design: one record)."""
    return "zlib", layers, lambda ref: idat_span(cut(ref))


def coded(n: int) -> Cut:
    return lambda ref: ref.coded()[n]


def exported(proto: str, name: str | None = None) -> Cut:
    return lambda ref: ref.object(proto, name)


def stolen_zip(ref: Reference) -> bytes:
    """The ZIP part of the stealer's multipart upload (tshark exports the POST body whole, named "%2f")."""
    return form_part(ref.object("http", "%2f"), ZIP_MAGIC)[2]


def deb_members(ref: Reference) -> dict[str, bytes]:
    """The .deb's ar members: the capture cuts the body short, so tshark exports nothing; its stream has it."""
    return ar_members(http_body(ref.server(0)))


def tnef_png(ref: Reference) -> bytes:
    """The PNG attached inside winmail.dat (TNEF), from its signature on."""
    tnef = attachment(ref.object("imf"), "application/ms-tnef")
    return tnef[tnef.index(PNG_SIGNATURE) :]


EXPECTED: dict[str, list[Want]] = {
    "zeek__zip-test.pcap": [member("zip", exported("http", "test.zip"))],  # the whole 129,598-byte ZIP of the manifest
    "zeek__http-get-gzip.pcap": [member("gzip", coded(0))],
    "zeek__http-missing-zlib-header.pcap": [member("deflate", coded(0)), member("deflate", coded(1))],  # no zlib header
    "zeek__http-pipelined-requests.pcap": [
        member("gzip", coded(0)),
        member("gzip", coded(1)),
        png(exported("http", "key-point-top.png")),
        png(exported("http", "header-sunbird.png")),
    ],
    "sv__http-evader-104-gzip.pcap": [member("gzip", coded(0))],
    "sv__http-evader-116-lzma.pcap": [member("lzma", coded(0))],
    "sv__http-evader-117-deflate-zlib.pcap": [member("zlib", coded(0))],
    # gzip,gzip: the outer coding is a member, and so is the gzip it decodes to
    "sv__http-evader-126-gzip-gzip.pcap": [
        member("gzip", coded(0)),
        member("gzip", lambda ref: zlib.decompress(ref.coded()[0], WBITS["gzip"]), "gzip"),
    ],
    "sv__http-post-data-decompression.pcap": [member("gzip", coded(0))],  # a gzip request body: an upload
    "sv__http-mime-truncated.pcap": [
        member("gzip", coded(0), "chunked"),  # chunked + gzip responses
        member("gzip", coded(1), "chunked"),
        member("zip", stolen_zip, "multipart"),  # the stolen-data upload, a multipart part
    ],
    "sv__smtp-rfc2231-zip.pcap": [  # an attachment
        member("zip", lambda ref: attachment(ref.object("imf"), "application/zip"), "mime", "base64")
    ],
    # a .deb is a container by design: its control.tar.gz and data.tar.xz are one record (stagewatch.streams)
    "sv__http-aptget-deb-truncated.pcap": [member("gzip", lambda ref: deb_members(ref)["control.tar.gz"])],
    "sv__filestore-filecontainer-http-vlan.pcap": [member("gzip", coded(n)) for n in range(7)]
    + [png(exported("http", "icon_addData.png"))],
    "sv__smtp-bug-5981-ooo.pcap": [png(tnef_png, "mime", "base64")],  # inside winmail.dat
    # negatives of the manifest: plain text, TLS, a pcap sent over IRC DCC, text uploads
    "zeek__http-multipart.pcap": [],
    "zeek__smtp.pcap": [],
    "zeek__ftp-retr.pcap": [],
    "zeek__irc-dcc-send.pcapng": [],
    "sv__ftp-ipv6-all-data.pcap": [],
    "sv__file-match-crossed-ipv6-multipart.pcap": [],
    "sv__http-encoding-gzip-uncompressed.pcap": [],  # says gzip, carries plain JSON
    # a base64 ZIP fragment with bad characters: a header and no data to verify
    "sv__bug-6207-1-smtp-zip-badbase64.pcap": [],
    # Content-Encoding: deflate sent as raw deflate: the body is the object, the coding says deflate
    "sv__http-evader-106-deflate-raw.pcap": [member("deflate", coded(0))],
}


def scan(path: Path, cache: Path) -> tuple[list[Finding], RunStats]:
    stats = RunStats()
    job = Job((str(path),), Settings(observer="test", cache_dir=cache))
    return [r for r in scan_inputs(job, stats) if isinstance(r, Finding)], stats


def decodes_whole(data: bytes) -> str | None:
    """The format a content-coded body decodes as from its first byte to its last, or None."""
    for fmt in ("gzip", "zlib", "deflate", "lzma"):
        try:
            if carved(fmt, data) == len(data):
                return fmt
        except (AssertionError, zlib.error, lzma.LZMAError):
            continue
    return None


@needs_tshark
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_capture(name, rule_cache, tmp_path):
    ref = Reference(REAL / name, tmp_path)
    want = collections.Counter((fmt, length(ref), layers) for fmt, layers, length in EXPECTED[name])
    findings, stats = scan(REAL / name, rule_cache)
    got = collections.Counter((str(f.member.format), f.member.length, f.encoding) for f in findings)
    assert dict(got) == dict(want)
    assert stats.packets > 0 and not stats.errors
    # and the table leaves out no content-coded body that decodes whole
    decodable = collections.Counter((fmt, len(b)) for b in ref.coded() if (fmt := decodes_whole(b)))
    assert not decodable - collections.Counter((fmt, n) for fmt, n, _ in want.elements())


def test_every_real_capture_reads_without_a_crash(rule_cache):
    names = sorted(p.name for p in REAL.iterdir() if ".pcap" in p.name)
    assert len(names) >= 25
    for name in names:
        _, stats = scan(REAL / name, rule_cache)
        assert stats.packets > 0 and not stats.errors, name


@needs_tshark
def test_pdf_streams_and_ftp_transfers_are_found_whole(rule_cache, tmp_path):
    # a container by design is one record; its streams are summed in `streams` (found whole: the bytes)
    served = Reference(REAL / "sv__filestore-pdf-ooo.pcap", tmp_path).object("http", "suricata-update.pdf")
    streams = pdf_flate_streams(served)
    (pdf,), _ = scan(REAL / "sv__filestore-pdf-ooo.pcap", rule_cache)  # 5 out-of-order server segments
    assert (pdf.member.length, pdf.streams.count, pdf.streams.formats, pdf.streams.bytes) == (
        len(streams[0]),  # the record is its first stream's
        len(streams),
        ((Format.ZLIB, len(streams)),),
        sum(map(len, streams)),
    )
    # test.pdf stored, then retrieved: tshark exports both transfers
    transfers = Reference(REAL / "sv__bug-4877-ftp-active.pcap", tmp_path).objects("ftp-data")
    pdfs = [pdf_flate_streams(data) for data in transfers.values() if data.startswith(b"%PDF")]
    ftp, _ = scan(REAL / "sv__bug-4877-ftp-active.pcap", rule_cache)
    assert len(pdfs) == 2
    assert [(f.member.length, f.streams.count, f.streams.bytes) for f in ftp] == [
        (len(s[0]), len(s), sum(map(len, s))) for s in pdfs
    ]
    # the .deb's members by design, by format: what its ar archive holds besides debian-binary
    members = deb_members(Reference(REAL / "sv__http-aptget-deb-truncated.pcap", tmp_path))
    magic = {b"\x1f\x8b": Format.GZIP, b"\xfd7zXZ\x00": Format.XZ}
    held = collections.Counter(f for data in members.values() for m, f in magic.items() if data.startswith(m))
    deb, _ = scan(REAL / "sv__http-aptget-deb-truncated.pcap", rule_cache)
    assert [f.streams.formats for f in deb] == [tuple(sorted(held.items()))]


@needs_tshark
def test_stealer_upload_is_carved_whole_with_its_damaged_entry(rule_cache, tmp_path):
    body = Reference(REAL / "sv__http-mime-truncated.pcap", tmp_path).object("http", "%2f")  # the POST body
    offset, filename, part = form_part(body, ZIP_MAGIC)
    findings, stats = scan(REAL / "sv__http-mime-truncated.pcap", rule_cache)
    (z,) = [f for f in findings if str(f.member.format) == "zip"]
    assert (z.member.offset, z.member.length, z.member.truncated) == (0, carved("zip", part), False)
    assert (z.encoding, z.encoding_offset) == (("multipart",), offset)  # where the part starts in the body
    assert z.name == filename == "US_b6a20f7b-65fe-4514-b5e1-bc5ca5f55b786602772428.zip"  # the part's filename
    assert z.app is not None and (z.app.method, z.app.url, z.app.domain) == ("POST", "/", "eroomia.com")
    # /information.txt does not inflate, and zipfile agrees
    assert z.member.checksum.value == "bad"
    with zipfile.ZipFile(io.BytesIO(part)) as archive, pytest.raises(zlib.error):
        archive.read("/information.txt")
    assert "/passwords.txt" in z.member.inner.names and "/screenshot.jpg" in z.member.inner.names
    assert "/passwords.txt" in z.sensitive
    assert stats.truncated_records == 1  # the capture is cut off mid-record
