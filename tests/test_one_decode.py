"""One decode per member: an HTTP body's gzip or deflate Content-Encoding is inflated once, by the protocol
layer, and its verifier proves the member from that decode (CRC-32 and ISIZE, or Adler-32, and the end of
stream) instead of inflating the same bytes a second time; the findings are exactly those of the verifier's
own decode, whatever state the member is in."""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from sensor.config import Limits, Settings
from sensor.content import codings, decompress
from sensor.detect.detector import Detector
from sensor.model import ContentObject, FileOrigin, Format
from sensor.stats import RunStats
from tests import appbuild as ab
from tests.builders import sample_text
from tests.test_http import capture, conv, ok, run_pcap

TEXT = sample_text(2_000_000, 3)


def _tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for name in ("stage/a.csv", "stage/b.csv"):
            info = tarfile.TarInfo(name)
            info.size = len(TEXT)
            t.addfile(info, io.BytesIO(TEXT))
    return out.getvalue()


def _gzip(data: bytes, name: str | None = None) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename=name or "", mode="wb", fileobj=out, mtime=0) as g:
        g.write(data)
    return out.getvalue()


GZ = _gzip(TEXT)
ZL = zlib.compress(TEXT)


def _crc_wrong(m: bytes) -> bytes:
    return m[:-8] + bytes([m[-8] ^ 1]) + m[-7:]


def _isize_wrong(m: bytes) -> bytes:
    return m[:-4] + (len(TEXT) + 1).to_bytes(4, "little")


BODIES = {
    "gzip whole": ("gzip", GZ),
    "gzip with a stored name and a tar inside": ("gzip", _gzip(_tar(), name="stage.tar")),
    "gzip, CRC wrong": ("gzip", _crc_wrong(GZ)),
    "gzip, ISIZE wrong": ("gzip", _isize_wrong(GZ)),
    "gzip cut at 60%": ("gzip", GZ[: len(GZ) * 6 // 10]),
    "gzip without its trailer": ("gzip", GZ[:-8]),
    "gzip then junk": ("gzip", GZ + b"\x00junk" * 10),
    "zlib whole": ("deflate", ZL),
    "zlib, Adler-32 wrong": ("deflate", ZL[:-1] + bytes([ZL[-1] ^ 1])),
    "zlib cut": ("deflate", ZL[: len(ZL) // 2]),
    "raw deflate sent as deflate": ("deflate", zlib.compress(TEXT, wbits=-15)),
}


def _findings(det: Detector, body: bytes, decoded: object) -> list:
    obj = ContentObject(FileOrigin("body.bin", len(body), 0.0, None, "h", "."), body, decoded=decoded)
    return [replace(f, created=0.0) for f in det.scan(obj)]  # the scan's clock aside


@pytest.mark.parametrize("case", list(BODIES))
@pytest.mark.parametrize("max_output", [Limits().max_output, 1_200_000])
def test_the_protocol_layers_decode_gives_the_verifiers_findings(rule_cache, case, max_output):
    """Each member state read both ways, and under an output cap below the member's size (where the
    protocol layer's decode is not the verifier's and it decodes again)."""
    coding, body = BODIES[case]
    limits = Limits(max_output=max_output)
    undone = codings.undo(coding, body, limits, "body")
    if case == "raw deflate sent as deflate":
        assert undone.member is None and undone.data == TEXT  # not zlib: read as raw deflate, not reused
    else:
        assert undone.member is not None and undone.member.start in (2, 10, 20)
    det = Detector(Settings(observer="t", cache_dir=rule_cache, limits=limits), RunStats())
    try:
        once, twice = _findings(det, body, undone.member), _findings(det, body, None)
    finally:
        det.close()
    assert once == twice
    if "junk" not in case and "raw" not in case:
        assert [f.member.format for f in once] == [Format.GZIP if coding == "gzip" else Format.ZLIB]
    if "tar" in case and max_output == Limits().max_output:
        assert once[0].member.inner.names[:2] == ("stage/a.csv", "stage/b.csv")


def test_a_gzip_encoded_post_is_inflated_once(tmp_path, rule_cache, monkeypatch):
    """A whole scan of a capture: the body's member is found, and zlib ran over it once (it ran twice before)."""
    body = _gzip(_tar(), name="stage.tar")
    req = ab.http_request(
        "POST", "/up", "x.example", body, [("Content-Type", "application/x-tar")], content_encoding="gzip"
    )
    pcap = capture(tmp_path, conv([(req, ok())]))
    runs: list[int] = []
    real = decompress.run

    def counted(codec, data, start, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        if len(data) == len(body):  # a decode of the body (its object, or the HTTP layer's copy)
            runs.append(start)
        return real(codec, data, start, *a, **kw)

    monkeypatch.setattr(decompress, "run", counted)
    monkeypatch.setattr(codings, "run", counted)
    run = run_pcap(rule_cache, pcap)
    f = run.one(body)
    assert f.kind.value == "alert" and f.member.checksum.value == "ok"
    assert f.member.inner.names[:2] == ("stage/a.csv", "stage/b.csv")
    assert runs == [len(b"\x1f\x8b\x08\x08\x00\x00\x00\x00\x00\xffstage.tar\x00")]


def test_no_reuse_for_a_member_that_is_not_at_the_start(rule_cache, tmp_path: Path):
    """The decode describes the body's first member only: a second gzip member later in the body (concatenated
    members) is verified from its own bytes."""
    second = _gzip(b"second member " * 5000)
    body = GZ + second
    undone = codings.undo("gzip", body, Limits(), "body")
    det = Detector(Settings(observer="t", cache_dir=rule_cache), RunStats())
    try:
        found = _findings(det, body, undone.member)
    finally:
        det.close()
    assert [(f.member.offset, f.member.checksum.value) for f in found] == [(0, "ok"), (len(GZ), "ok")]
