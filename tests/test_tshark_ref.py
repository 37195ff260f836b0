"""The tshark reference helper (tests/tshark_ref.py) against a few real captures of ../shared/pcaps/real.

Expected sizes and hashes were checked against the raw TCP streams (tshark -z follow,tcp,raw) by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED, absent, requires
from tests.tshark_ref import TsharkError, coded_bodies, export_objects, follow_tcp, tshark_missing

REAL = SHARED / "pcaps" / "real"
needs_real = requires(absent(REAL))
needs_tshark = requires(tshark_missing())

GZIP_JSON = "202b775be087f5af98e95120e42769a9b3488f84c5aa79c4f4c1093d348f849c"


@needs_real
@needs_tshark
def test_http_bodies_come_decoded_and_request_bodies_too(tmp_path: Path) -> None:
    # the 165-byte gzip response body is exported as its 197 decoded bytes, named after the URI /gzip
    got = export_objects(REAL / "zeek__http-get-gzip.pcap", "http", tmp_path)
    assert [(o.protocol, o.filename, o.size, o.sha256) for o in got] == [("http", "gzip", 197, GZIP_JSON)]
    assert got[0].path.read_bytes()[:1] == b"{"  # the decoded JSON is left on disk
    # a gzip POST body (45 B on the wire) comes out decoded, then the response under the same name, numbered
    got = export_objects(REAL / "sv__http-post-data-decompression.pcap", "http", tmp_path)
    assert [(o.filename, o.size) for o in got] == [("hi(1).php", 24), ("hi.php", 25)]
    assert got[1].sha256 == "2c412e9a889a9281dd08db8931357df1d0982e8b3d7d3167af24215467eb3829"


@needs_real
@needs_tshark
def test_out_of_order_reassembly_changes_the_smtp_message(tmp_path: Path) -> None:
    pcap = REAL / "sv__smtp-bug-5981-ooo.pcap"
    name = "Testing testing 1 2 3 (Multiple attachments).eml"
    whole = export_objects(pcap, "imf", tmp_path)  # out_of_order=True: the DATA content, terminator dropped
    assert [(o.filename, o.size) for o in whole] == [(name, 15_160)]
    assert whole[0].sha256 == "a6cfddf7c3bf6ec7afabf90ad41110feebfd23ccd5050722f6029e899276dac5"
    broken = export_objects(pcap, "imf", tmp_path, out_of_order=False)  # tshark's default: 844 bytes lost
    assert [(o.filename, o.size) for o in broken] == [(name, 14_318)]


@needs_real
@needs_tshark
def test_ftp_uploads_and_downloads_are_exported(tmp_path: Path) -> None:
    got = export_objects(REAL / "sv__bug-4877-ftp-active.pcap", "ftp-data", tmp_path)
    # STOR then RETR of each file: the same bytes twice, the second copy numbered
    assert [(o.filename, o.size) for o in got] == [
        ("notepad(1).exe", 69_120),
        ("notepad.exe", 69_120),
        ("test(1).pdf", 118_196),
        ("test.pdf", 118_196),
    ]
    assert len({o.sha256 for o in got}) == 2


@needs_real
@needs_tshark
def test_a_capture_cut_short_is_not_a_failure(tmp_path: Path) -> None:
    data = (REAL / "zeek__http-get-gzip.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-10])  # tshark exits 2 ("cut short in the middle of a packet") yet exports
    got = export_objects(cut, "http", tmp_path)
    assert [(o.protocol, o.filename, o.size, o.sha256) for o in got] == [("http", "gzip", 197, GZIP_JSON)]


@needs_real
@needs_tshark
def test_coded_bodies_come_as_sent_even_when_tshark_cannot_decode_them() -> None:
    # the 165-byte gzip body the export gives decoded (197 bytes), here as it was on the wire
    (body,) = coded_bodies(REAL / "zeek__http-get-gzip.pcap")
    assert (body.frame, body.coding, len(body.data), body.data[:3]) == (8, "gzip", 165, b"\x1f\x8b\x08")
    # lzma and a body merely labelled gzip: not exported at all, yet dissected
    assert [(b.coding, len(b.data)) for b in coded_bodies(REAL / "sv__http-evader-116-lzma.pcap")] == [("lzma", 90)]
    assert [len(b.data) for b in coded_bodies(REAL / "sv__http-encoding-gzip-uncompressed.pcap")] == [106]
    # request bodies too; chunked responses de-chunked; in frame order
    assert [(b.frame, len(b.data)) for b in coded_bodies(REAL / "sv__http-post-data-decompression.pcap")] == [(4, 45)]
    assert [len(b.data) for b in coded_bodies(REAL / "sv__http-mime-truncated.pcap")] == [36, 22]


@needs_real
@needs_tshark
def test_follow_gives_both_directions_as_sent() -> None:
    client, server = follow_tcp(REAL / "zeek__http-get-gzip.pcap", 0)
    assert client.startswith(b"GET /gzip HTTP/1.1\r\n") and len(client) == 79
    assert server.startswith(b"HTTP/1.1 200 OK\r\n") and len(server) == 342
    assert server.endswith(coded_bodies(REAL / "zeek__http-get-gzip.pcap")[0].data)
    # a capture cut short: what was sent so far, which the export leaves out
    _, deb = follow_tcp(REAL / "sv__http-aptget-deb-truncated.pcap", 0)
    assert b"\r\n\r\n!<arch>\ndebian-binary" in deb and len(deb) < 2_047_608  # of its Content-Length


@needs_tshark
def test_a_failure_names_the_capture(tmp_path: Path) -> None:
    missing = tmp_path / "no-such.pcap"
    with pytest.raises(TsharkError, match="no-such.pcap"):
        export_objects(missing, "http", tmp_path)
    with pytest.raises(TsharkError, match="no-such.pcap"):
        coded_bodies(missing)
    with pytest.raises(TsharkError, match="no-such.pcap"):
        follow_tcp(missing, 0)


def test_an_unknown_protocol_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="smtp"):
        export_objects(tmp_path / "x.pcap", "smtp", tmp_path)
