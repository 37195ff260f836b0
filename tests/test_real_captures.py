"""The real third-party captures of ../shared/pcaps/real (MANIFEST.md): read without a crash, and the
compressed members they carry are found, in HTTP objects (with the layers peeled off) or raw streams."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from sensor.config import Settings
from sensor.model import Finding, Format
from sensor.pipeline import Job, scan_inputs
from sensor.stats import RunStats

REAL = Path(__file__).resolve().parents[2] / "shared" / "pcaps" / "real"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"{REAL} is absent (it lives beside the repo in CI)")

# capture -> {(format, carved length, encoding layers): count}; every member verified by its own check
EXPECTED: dict[str, dict[tuple[str, int, tuple[str, ...]], int]] = {
    "zeek__zip-test.pcap": {("zip", 129_598, ()): 1},  # the whole 129,598-byte ZIP of the manifest
    "zeek__http-get-gzip.pcap": {("gzip", 165, ()): 1},
    "zeek__http-missing-zlib-header.pcap": {("deflate", 5139, ()): 2},  # raw deflate, no zlib header
    "zeek__http-pipelined-requests.pcap": {
        ("gzip", 946, ()): 1,
        ("gzip", 6716, ()): 1,
        ("zlib", 2225, ()): 1,
        ("zlib", 27_451, ()): 1,
    },
    "sv__http-evader-104-gzip.pcap": {("gzip", 88, ()): 1},
    "sv__http-evader-116-lzma.pcap": {("lzma", 90, ()): 1},
    "sv__http-evader-117-deflate-zlib.pcap": {("zlib", 76, ()): 1},
    # gzip,gzip: the outer coding is a member, and so is the gzip it decodes to
    "sv__http-evader-126-gzip-gzip.pcap": {("gzip", 106, ()): 1, ("gzip", 88, ("gzip",)): 1},
    "sv__http-post-data-decompression.pcap": {("gzip", 45, ()): 1},  # a gzip request body: an upload
    "sv__http-mime-truncated.pcap": {
        ("gzip", 22, ("chunked",)): 1,  # chunked + gzip responses
        ("gzip", 36, ("chunked",)): 1,
        ("zip", 133_722, ("multipart",)): 1,  # the stolen-data upload, a multipart part
    },
    "sv__smtp-rfc2231-zip.pcap": {("zip", 51_675, ("mime", "base64")): 1},  # an attachment
    # a .deb is a container by design: its control.tar.gz and data.tar.xz are one record (stagewatch.streams)
    "sv__http-aptget-deb-truncated.pcap": {("gzip", 22_080, ()): 1},
    "sv__filestore-filecontainer-http-vlan.pcap": {("gzip", n, ()): 1 for n in (160, 483, 1175, 1244, 1681, 2440, 8524)}
    | {("zlib", 1371, ()): 1},
    "sv__smtp-bug-5981-ooo.pcap": {("zlib", 488, ("mime", "base64")): 1},  # inside winmail.dat
    # negatives of the manifest: plain text, TLS, a pcap sent over IRC DCC, text uploads
    "zeek__http-multipart.pcap": {},
    "zeek__smtp.pcap": {},
    "zeek__ftp-retr.pcap": {},
    "zeek__irc-dcc-send.pcapng": {},
    "sv__ftp-ipv6-all-data.pcap": {},
    "sv__file-match-crossed-ipv6-multipart.pcap": {},
    "sv__http-encoding-gzip-uncompressed.pcap": {},  # says gzip, carries plain JSON
    # a base64 ZIP fragment with bad characters: a header and no data to verify
    "sv__bug-6207-1-smtp-zip-badbase64.pcap": {},
    # Content-Encoding: deflate sent as raw deflate: the body is the object, the coding says deflate
    "sv__http-evader-106-deflate-raw.pcap": {("deflate", 70, ()): 1},
}


def scan(path: Path, cache: Path) -> tuple[list[Finding], RunStats]:
    stats = RunStats()
    job = Job((str(path),), Settings(observer="test", cache_dir=cache))
    return [r for r in scan_inputs(job, stats) if isinstance(r, Finding)], stats


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_capture(name, rule_cache):
    findings, stats = scan(REAL / name, rule_cache)
    got = collections.Counter((str(f.member.format), f.member.length, f.encoding) for f in findings)
    assert dict(got) == EXPECTED[name]
    assert stats.packets > 0 and not stats.errors


def test_every_real_capture_reads_without_a_crash(rule_cache):
    names = sorted(p.name for p in REAL.iterdir() if ".pcap" in p.name)
    assert len(names) >= 25
    for name in names:
        _, stats = scan(REAL / name, rule_cache)
        assert stats.packets > 0 and not stats.errors, name


def test_pdf_streams_and_ftp_transfers_are_found_whole(rule_cache):
    # a container by design is one record; its streams are summed in `streams` (found whole: the bytes)
    (pdf,), _ = scan(REAL / "sv__filestore-pdf-ooo.pcap", rule_cache)  # 5 out-of-order server segments
    assert (pdf.streams.count, pdf.streams.formats, pdf.streams.bytes) == (51, ((Format.ZLIB, 51),), 171_761)
    ftp, _ = scan(REAL / "sv__bug-4877-ftp-active.pcap", rule_cache)  # test.pdf stored, then retrieved
    assert [(f.member.length, f.streams.count, f.streams.bytes) for f in ftp] == [
        (394, 4, 394 + 429 + 8801 + 106_076)
    ] * 2
    deb, _ = scan(REAL / "sv__http-aptget-deb-truncated.pcap", rule_cache)
    assert [f.streams.formats for f in deb] == [((Format.GZIP, 1), (Format.XZ, 1))]


def test_stealer_upload_is_carved_whole_with_its_damaged_entry(rule_cache):
    findings, stats = scan(REAL / "sv__http-mime-truncated.pcap", rule_cache)
    (z,) = [f for f in findings if str(f.member.format) == "zip"]
    assert (z.member.offset, z.member.length, z.member.truncated) == (0, 133_722, False)
    assert (z.encoding, z.encoding_offset) == (("multipart",), 978)  # the part starts 978 bytes into the body
    assert z.name == "US_b6a20f7b-65fe-4514-b5e1-bc5ca5f55b786602772428.zip"  # the part's filename
    assert z.app is not None and (z.app.method, z.app.url, z.app.domain) == ("POST", "/", "eroomia.com")
    assert z.member.checksum.value == "bad"  # /information.txt does not inflate (zipfile agrees)
    assert "/passwords.txt" in z.member.inner.names and "/screenshot.jpg" in z.member.inner.names
    assert "/passwords.txt" in z.sensitive
    assert stats.truncated_records == 1  # the capture is cut off mid-record
