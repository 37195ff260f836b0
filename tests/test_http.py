"""HTTP/1.x objects end to end: conversations crafted with tests/appbuild.py, packets by scapy, scanned
through the real pipeline. Every expected hash, name and layer list comes from what the test sent."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from sensor.cli import main as cli_main
from sensor.config import Limits, Settings
from sensor.model import Finding, ObjectRecord
from sensor.output.ecs import finding_record, object_record
from sensor.pipeline import Job, scan_inputs
from sensor.stats import RunStats
from tests import appbuild as ab
from tests.builders import (
    HOSTS,
    bzip2_member,
    gzip_dotnet,
    gzip_named,
    random_bytes,
    sample_text,
    tar_archive,
    zip_archive,
    zlib_member,
    zstd_member,
)
from tests.netbuild import Conv, payload_stream, reorder, segments, write_pcap

HOME = ("10.0.0.0/8",)
FORM = "application/x-www-form-urlencoded"
CLIENT, SERVER, INSIDE = "10.0.0.10", "203.0.113.80", "10.0.0.80"
STAGED = HOSTS  # what the atomic tests of the seed stage
ZLIB_BLOB = zlib_member(STAGED)  # stage_df00.zlib (Python zlib)
GZ_BLOB = gzip_dotnet(STAGED)  # stage_df00.gz (PowerShell GZipStream)
ZIP_BLOB = zip_archive({"stage_df00.csv": sample_text(60_000, 7)})
TAR_BZ2 = tar_archive({"stage_df00.csv": sample_text(60_000, 7)}, "bz2")


@dataclass
class Run:
    findings: list[Finding]
    objects: list[ObjectRecord]
    stats: RunStats

    def of(self, member: bytes) -> list[Finding]:
        digest = hashlib.sha256(member).hexdigest()
        return [f for f in self.findings if f.member.sha256 == digest]

    def one(self, member: bytes) -> Finding:
        got = self.of(member)
        assert len(got) == 1, [(f.member.format, f.encoding, f.member.length) for f in self.findings]
        return got[0]


def run_pcap(cache: Path, pcap: Path, limits: Limits | None = None, app_layer: bool = True) -> Run:
    settings = Settings(
        home_net=HOME, observer="test", cache_dir=cache, objects=True, app_layer=app_layer, limits=limits or Limits()
    )
    stats = RunStats()
    results = list(scan_inputs(Job((str(pcap),), settings), stats))
    return Run(
        [r for r in results if isinstance(r, Finding)], [r for r in results if isinstance(r, ObjectRecord)], stats
    )


def capture(tmp_path: Path, *convs: Conv, name: str = "http.pcap", shuffle: int | None = None) -> Path:
    pkts = [p for c in convs for p in segments(c)]
    if shuffle is not None:
        pkts = reorder(pkts, seed=shuffle, fraction=0.3)
    return write_pcap(tmp_path / name, pkts)


def conv(exchanges, server: str = SERVER, port: int = 80, **kw) -> Conv:
    return ab.http_conversation(exchanges, client=CLIENT, server=server, server_port=port, **kw)


def ok(body: bytes = b"ok") -> bytes:
    return ab.http_response(200, body, [("Content-Type", "text/plain")])


# -- the atomic tests of the QRadar seed (HTTP ones) -----------------------------------------------


def test_atomic_python_zlib_blob_posted_over_http(tmp_path, rule_cache):
    req = ab.http_request("POST", "/upload/stage_df00.zlib", "drop.example", ZLIB_BLOB, [("User-Agent", "curl/8.5")])
    run = run_pcap(rule_cache, capture(tmp_path, conv([(req, ok())])))
    f = run.one(ZLIB_BLOB)
    rec = finding_record(f)
    assert (rec["event"]["kind"], rec["network"]["direction"], rec["network"]["protocol"]) == (
        "alert",
        "outbound",
        "http",
    )
    assert rec["file"]["name"] == "stage_df00.zlib"
    assert rec["stagewatch"]["format"] == "zlib" and rec["stagewatch"]["offset"] == 0
    assert rec["file"]["hash"]["sha256"] == hashlib.sha256(ZLIB_BLOB).hexdigest()  # the staged file's hash
    assert rec["http"] == {"request": {"method": "POST"}}
    assert rec["url"] == {"original": "/upload/stage_df00.zlib", "domain": "drop.example"}
    assert rec["user_agent"] == {"original": "curl/8.5"}
    assert rec["stagewatch"]["inner"]["size"] == len(STAGED)


def test_atomic_powershell_gzipstream_posted_base64(tmp_path, rule_cache):
    body = base64.b64encode(GZ_BLOB)
    disposition = ("Content-Disposition", 'attachment; filename="stage_df00.gz"')
    req = ab.http_request("POST", "/api/v1/telemetry", "drop.example", body, [disposition])
    run = run_pcap(rule_cache, capture(tmp_path, conv([(req, ok())])))
    f = run.one(GZ_BLOB)
    assert f.encoding == ("base64",) and f.kind.value == "alert"
    assert f.name == "stage_df00.gz"  # Content-Disposition wins over the URL's last segment
    assert f.member.writer is not None  # .NET GZipStream's header is recognised


# -- framing ---------------------------------------------------------------------------------------


def test_chunked_request_with_trailers(tmp_path, rule_cache):
    req = ab.http_request(
        "PUT", "/dav/export.bz2", "files.example", bzip2_member(STAGED), chunked=True, chunk_size=1000,
        trailers=[("X-Checksum", "abc")],
    )  # fmt: skip
    run = run_pcap(rule_cache, capture(tmp_path, conv([(req, ok())])))
    f = run.one(bzip2_member(STAGED))
    assert f.encoding == ("chunked",) and f.member.offset == 0 and f.name == "export.bz2"
    assert f.app.method == "PUT"
    assert run.stats.app["http.anomaly.bad_chunk_size"] == 0


def _chunked_with_extensions(body: bytes, size: int, ext: bytes, upper: bool) -> bytes:
    """`body` chunked by hand, every chunk-size line (the last-chunk's too) carrying `ext`."""
    out = bytearray()
    for i in range(0, len(body), size):
        piece = body[i : i + size]
        out += (b"%X" if upper else b"%x") % len(piece) + ext + b"\r\n" + piece + b"\r\n"
    return bytes(out + b"0" + ext + b"\r\n\r\n")


@pytest.mark.parametrize(
    "ext,upper",
    [
        (b";name=value", False),
        (b' ; name="quoted;value"', True),
        (b';a=1;b="x y";flag', False),
    ],
    ids=["token", "bws_quoted_semicolon", "several"],
)
def test_chunk_extensions_are_stripped_and_the_member_found_whole(tmp_path, rule_cache, ext, upper):
    member = gzip_named(sample_text(30_000, 44), "ext.csv")
    body = _chunked_with_extensions(member, 0x1A0, ext, upper)  # 0x1a0: the sizes have hex letters
    head = b"POST /upload/ext.gz HTTP/1.1\r\nHost: x.example\r\nTransfer-Encoding: chunked\r\n\r\n"
    run = run_pcap(rule_cache, capture(tmp_path, conv([[("c2s", head + body), ("s2c", ok())]])))
    f = run.one(member)
    assert (f.member.offset, f.member.length, f.member.truncated) == (0, len(member), False)
    assert f.encoding == ("chunked",) and f.origin.protocol == "http"
    assert finding_record(f)["url"] == {"original": "/upload/ext.gz", "domain": "x.example"}
    (obj,) = [o for o in run.objects if o.origin.client_to_server]
    assert obj.sha256 == hashlib.sha256(member).hexdigest()  # de-chunked exactly: no extension bytes kept
    assert run.stats.app["http.anomaly.bad_chunk_size"] == 0 and run.stats.app["http.requests"] == 1
    assert run.stats.app["http.responses"] == 1


@pytest.mark.parametrize(
    "pipelined,mss", [(False, 1460), (True, 1460), (True, 60_000)], ids=["keep_alive", "pipelined", "one_segment"]
)
def test_trailers_then_a_second_request_on_the_same_connection(tmp_path, rule_cache, pipelined, mss):
    first = gzip_named(sample_text(20_000, 45), "first.csv")
    second = gzip_named(sample_text(20_000, 46), "second.csv")
    reply = gzip_named(sample_text(20_000, 47), "reply.csv")
    trailers = [("X-Checksum", "abc"), ("X-Count", "2")]  # two fields: the trailer section is a loop
    req1 = ab.http_request("POST", "/first", "x.example", first, chunked=True, chunk_size=3000, trailers=trailers)
    req2 = ab.http_request("POST", "/second", "x.example", second)
    resp2 = ab.http_response(200, reply, [("Content-Type", "application/octet-stream")])
    # pipelined: the second request follows the trailers in the same write; in one segment no later
    # bytes wake the parser, so it must go on by itself, and the response shows it paired request 2
    c = conv([(req1, ok()), (req2, resp2)], pipelined=pipelined, mss=mss)
    assert pipelined == (len(c.sends) == 2) and (mss == 1460 or len(payload_stream(c, "c2s")) <= mss)
    run = run_pcap(rule_cache, capture(tmp_path, c))
    want = [(first, "/first", ("chunked",), "alert"), (second, "/second", (), "alert"), (reply, "/second", (), "event")]
    for member, url, encoding, kind in want:
        f = run.one(member)
        assert f.origin.protocol == "http" and f.app.method == "POST", url
        assert finding_record(f)["url"] == {"original": url, "domain": "x.example"}
        assert (f.encoding, f.kind.value, f.member.offset, f.member.truncated) == (encoding, kind, 0, False)
    assert run.one(reply).app.status == 200
    assert run.stats.app["http.requests"] == 2 and run.stats.app["http.responses"] == 2
    assert not any(k.startswith("http.anomaly") for k in run.stats.app)


def test_keep_alive_pipelining_and_100_continue_pair_requests_with_responses(tmp_path, rule_cache):
    first = zlib_member(sample_text(20_000, 1))
    second = gzip_named(sample_text(20_000, 2), "b.csv")
    page = gzip_named(sample_text(30_000, 3), "page.html")
    exchanges = [
        (ab.http_request("POST", "/a", "x.example", first, expect_continue=True), ok()),
        (ab.http_request("HEAD", "/big", "x.example"), ab.http_response(200, b"", [("Content-Length", "999999")])),
        (ab.http_request("GET", "/page", "x.example"), ab.http_response(200, page, [("Content-Encoding", "gzip")])),
        (ab.http_request("POST", "/b", "x.example", second), ab.http_response(204)),
    ]
    run = run_pcap(rule_cache, capture(tmp_path, conv(exchanges), conv(exchanges, pipelined=True, client_port=50_000)))
    for member, url in ((first, "/a"), (second, "/b")):
        got = run.of(member)
        assert len(got) == 2 and {f.app.url for f in got} == {url}  # keep-alive and pipelined
        assert all(f.kind.value == "alert" and f.app.method == "POST" for f in got)
    pages = run.of(page)
    assert len(pages) == 2 and all(f.kind.value == "event" and f.app.url == "/page" for f in pages)
    assert all(f.app.status == 200 for f in pages)
    assert not any(k.startswith("http.anomaly") for k in run.stats.app)  # HEAD's length did not desync
    assert run.stats.app["http.requests"] == 8 and run.stats.app["http.responses"] == 8


def test_close_delimited_response_on_an_odd_port_is_still_http(tmp_path, rule_cache):
    member = bzip2_member(sample_text(30_000, 9))
    resp = ab.http_response(200, member, [("Content-Type", "application/octet-stream")], close_delimited=True)
    c = conv([(ab.http_request("GET", "/dl/x.bz2", "h.example"), resp)], port=4444)
    run = run_pcap(rule_cache, capture(tmp_path, c))
    f = run.one(member)
    assert f.origin.protocol == "http" and f.kind.value == "event" and f.name == "x.bz2"


# -- content codings ------------------------------------------------------------------------------


def test_gzip_request_body_is_an_alert_and_the_same_response_an_event(tmp_path, rule_cache):
    ctype, form = ab.multipart([ab.Part("file", ZIP_BLOB, filename="stage_df00_lib.zip")])
    body = ab.gzip_body(form)
    req = ab.http_request("POST", "/up", "x.example", body, [("Content-Type", ctype)], content_encoding="gzip")
    resp = ab.http_response(200, body, [("Content-Type", ctype)], content_encoding="gzip")
    run = run_pcap(rule_cache, capture(tmp_path, conv([(req, resp)])))
    outer = run.of(body)
    assert sorted(f.kind.value for f in outer) == ["alert", "event"]
    assert all(f.member.offset == 0 and f.encoding == () for f in outer)
    inner = run.of(ZIP_BLOB)  # decoded to look inside: the part's zip, named
    assert sorted(f.kind.value for f in inner) == ["alert", "event"]
    assert all(f.encoding == ("gzip", "multipart") and f.name == "stage_df00_lib.zip" for f in inner)
    assert all("stage_df00.csv" in f.member.inner.names for f in inner)


@pytest.mark.parametrize("coding", ["deflate", "deflate-raw", "br", "zstd"])
def test_other_content_codings_are_undone(tmp_path, rule_cache, coding):
    payload = b"report=" + sample_text(2000, 4) + b"&blob=" + base64.b64encode(ZIP_BLOB)
    if coding == "deflate":
        body = ab.deflate_body(payload)
    elif coding == "deflate-raw":
        body = ab.deflate_body(payload, raw=True)
    elif coding == "br":
        import cramjam

        body = bytes(cramjam.brotli.compress(payload))
    else:
        body = zstd_member(payload)
    header = "deflate" if coding.startswith("deflate") else coding
    req = ab.http_request("POST", "/c", "x.example", body, [("Content-Type", "text/plain")], content_encoding=header)
    run = run_pcap(rule_cache, capture(tmp_path, conv([(req, ok())])))
    f = run.one(ZIP_BLOB)
    assert f.encoding == (header, "base64") and f.kind.value == "alert"
    objs = [o for o in run.objects if o.layers == (header,)]
    assert len(objs) == 1 and objs[0].sha256 == hashlib.sha256(payload).hexdigest()


def test_declared_gzip_that_is_plain_text_is_counted_not_found(tmp_path, rule_cache):
    body = json.dumps({"imei": "35", "ok": True}).encode()
    req = ab.http_request("POST", "/c", "x.example", body, content_encoding="gzip")
    run = run_pcap(rule_cache, capture(tmp_path, conv([(req, ok())])))
    assert run.findings == [] and run.stats.app["http.anomaly.content_coding"] == 1


# -- forms, multipart, JSON, query ----------------------------------------------------------------


def test_multipart_parts_are_objects_named_by_filename(tmp_path, rule_cache):
    parts = [
        ab.Part("note", b"hello"),
        ab.Part("a", TAR_BZ2, filename="stage_df00.tar.bz2", content_type="application/x-bzip2"),
        ab.Part("b", ZIP_BLOB, filename="r\u00e9sum\u00e9.zip", transfer_encoding="base64", filename_form="rfc2231"),
    ]
    ctype, body = ab.multipart(parts)
    req = ab.http_request("POST", "/form", "x.example", body, [("Content-Type", ctype)])
    run = run_pcap(rule_cache, capture(tmp_path, conv([(req, ok())])))
    tar = run.one(TAR_BZ2)
    assert (tar.name, tar.encoding, tar.member.offset) == ("stage_df00.tar.bz2", ("multipart",), 0)
    assert tar.encoding_offset == body.index(TAR_BZ2)  # where the part sits in the body
    z = run.one(ZIP_BLOB)
    assert (z.name, z.encoding) == ("r\u00e9sum\u00e9.zip", ("multipart", "base64"))
    whole = [o for o in run.objects if o.layers == () and o.origin.client_to_server]
    assert len(whole) == 1 and whole[0].sha256 == hashlib.sha256(body).hexdigest()  # the body, as tshark has it


def test_urlencoded_form_query_string_and_escaped_json(tmp_path, rule_cache):
    blob_a, blob_b, blob_c = (gzip_named(sample_text(5000, n), f"{n}.txt") for n in (11, 12, 13))
    form = ab.urlencoded([("user", "bob"), ("data", base64.b64encode(blob_a))])
    assert b"%2B" in form or b"%2F" in form  # the run is broken until the form is decoded
    q = "/c?id=7&d=" + base64.urlsafe_b64encode(blob_b).decode().replace("=", "%3D")
    escaped = json.dumps({"k": base64.b64encode(blob_c).decode()}).replace("/", "\\/").encode()
    assert b"\\/" in escaped
    exchanges = [
        (ab.http_request("POST", "/f", "x.example", form, [("Content-Type", FORM)]), ok()),
        (ab.http_request("GET", q, "x.example"), ok()),
        (ab.http_request("POST", "/j", "x.example", escaped, [("Content-Type", "application/json")]), ok()),
    ]
    run = run_pcap(rule_cache, capture(tmp_path, conv(exchanges)))
    a, b, c = run.one(blob_a), run.one(blob_b), run.one(blob_c)
    assert (a.encoding, a.name) == (("urlencoded", "base64"), "data")
    assert (b.encoding, b.name) == (("query", "base64"), "d")
    assert (c.encoding, c.name) == (("json", "base64"), "$.k")
    assert all(f.kind.value == "alert" for f in (a, b, c))


# -- malformed data falls back to raw scanning ----------------------------------------------------


def test_lying_content_length_loses_no_member(tmp_path, rule_cache):
    member = zlib_member(sample_text(40_000, 21))
    head = f"POST /x HTTP/1.1\r\nHost: x.example\r\nContent-Length: {len(member) // 3}\r\n\r\n".encode()
    run = run_pcap(rule_cache, capture(tmp_path, conv([[("c2s", head + member), ("s2c", ok())]])))
    f = run.one(member)
    assert not f.member.truncated and f.origin.protocol == "http"
    assert run.stats.app["http.anomaly.bad_start_line"] == 1


def test_broken_chunk_size_loses_no_member(tmp_path, rule_cache):
    member = gzip_named(sample_text(30_000, 22), "z.csv")
    head = b"POST /x HTTP/1.1\r\nHost: x.example\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"10\r\n" + b"A" * 16 + b"\r\nzz-not-hex\r\n" + member
    run = run_pcap(rule_cache, capture(tmp_path, conv([[("c2s", head + body), ("s2c", ok())]])))
    f = run.one(member)
    assert not f.member.truncated and f.encoding == ()
    assert run.stats.app["http.anomaly.bad_chunk_size"] == 1


def test_unterminated_multipart_still_scans_the_last_part(tmp_path, rule_cache):
    ctype, body = ab.multipart([ab.Part("f", ZIP_BLOB, filename="a.zip")])
    cut = body[: body.rindex(b"\r\n--")]  # no closing boundary
    req = ab.http_request("POST", "/m", "x.example", cut, [("Content-Type", ctype)])
    run = run_pcap(rule_cache, capture(tmp_path, conv([(req, ok())])))
    assert run.one(ZIP_BLOB).name == "a.zip"
    assert run.stats.app["http.anomaly.multipart"] == 1


def test_longer_content_length_than_sent_reports_a_truncated_body(tmp_path, rule_cache):
    member = zlib_member(sample_text(30_000, 23))
    head = f"POST /x HTTP/1.1\r\nHost: x.example\r\nContent-Length: {len(member) * 2}\r\n\r\n".encode()
    run = run_pcap(rule_cache, capture(tmp_path, conv([[("c2s", head + member)]])))
    f = run.one(member)
    assert f.origin.protocol == "http" and not f.member.truncated  # the member ends inside the short body
    assert run.stats.app["http.truncated_bodies"] == 1


def test_not_http_stays_raw(tmp_path, rule_cache):
    member = zlib_member(sample_text(20_000, 24))
    c = Conv(CLIENT, 50_123, SERVER, 80, sends=[("c2s", b"\x00\x01HELLO" + member), ("s2c", b"ok")])
    run = run_pcap(rule_cache, capture(tmp_path, c))
    f = run.one(member)
    assert f.origin.protocol is None and f.member.offset == 7
    assert run.stats.app["raw.sessions"] == 1


# -- objects ----------------------------------------------------------------------------------------


def test_objects_list_every_body_with_its_hash_name_and_type(tmp_path, rule_cache):
    text = sample_text(3000, 30)
    exchanges = [
        (ab.http_request("GET", "/docs/readme.txt", "x.example"), ab.http_response(200, text, chunked=True)),
        (ab.http_request("POST", "/u", "x.example", random_bytes(5000, 1)), ok(b"stored")),
    ]
    c = conv(exchanges)
    run = run_pcap(rule_cache, capture(tmp_path, c, shuffle=5))
    got = {(o.name, o.size, o.sha256) for o in run.objects}
    want = {
        ("readme.txt", len(text), hashlib.sha256(text).hexdigest()),
        ("u", 5000, hashlib.sha256(random_bytes(5000, 1)).hexdigest()),
        ("u", 6, hashlib.sha256(b"stored").hexdigest()),
    }
    assert got == want
    readme = next(o for o in run.objects if o.name == "readme.txt")
    rec = object_record(readme)
    assert rec["file"]["mime_type"].startswith("text/") and rec["stagewatch"]["encoding"] == ["chunked"]
    assert rec["http"]["response"] == {"status_code": 200} and rec["network"]["direction"] == "inbound"
    assert payload_stream(c, "c2s").count(b"HTTP/1.1") == 2


def test_raw_only_scans_streams_like_before(tmp_path, rule_cache):
    req = ab.http_request("POST", "/upload/stage_df00.zlib", "drop.example", ZLIB_BLOB)
    c = conv([(req, ok())])
    run = run_pcap(rule_cache, capture(tmp_path, c), app_layer=False)
    f = run.one(ZLIB_BLOB)
    assert f.origin.protocol is None and f.member.offset == len(req) - len(ZLIB_BLOB) and run.objects == []


# -- command line: --objects and --extract ----------------------------------------------------------


def test_cli_writes_objects_and_extracts_members_by_hash(tmp_path, rule_cache):
    member = gzip_named(sample_text(20_000, 40), "evil.csv")
    ctype, body = ab.multipart([ab.Part("f", member, filename="../../../tmp/x.gz")])
    req = ab.http_request("POST", "/u/..%2F..%2Fboot.ini", "x.example", body, [("Content-Type", ctype)])
    pcap = capture(tmp_path, conv([(req, ok())]))
    cfg = tmp_path / "sw.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\n')
    out, objs, dest = tmp_path / "f.jsonl", tmp_path / "o.jsonl", tmp_path / "carved"
    args = ["-q", "scan", str(pcap), "--no-db", "--jsonl", str(out), "--objects", str(objs), "--extract", str(dest)]
    assert cli_main([*args, "--home-net", "10.0.0.0/8", "--config", str(cfg)]) == 0
    sha = hashlib.sha256(member).hexdigest()
    files = [p for p in dest.rglob("*") if p.is_file()]
    assert files == [dest / sha[:2] / sha] and files[0].read_bytes() == member
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert rec["file"]["name"] == "../../../tmp/x.gz"  # reported as sent, never used as a path
    objects = [json.loads(line) for line in objs.read_text().splitlines()]
    assert {o["file"]["hash"]["sha256"] for o in objects} >= {hashlib.sha256(body).hexdigest(), sha}
    assert all(o["network"]["protocol"] == "http" for o in objects)
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    assert cli_main([*args[:-1], str(blocked / "sub"), "--config", str(cfg)]) == 1  # one-line error, nothing run


def test_content_coding_layers_past_the_depth_limit_are_counted(tmp_path, rule_cache):
    inner = zlib_member(sample_text(5000, 41))
    body = inner
    for _ in range(5):
        body = ab.gzip_body(body)
    req = ab.http_request("POST", "/n", "x.example", body, content_encoding="gzip, gzip, gzip, gzip, gzip")
    run = run_pcap(rule_cache, capture(tmp_path, conv([(req, ok())])), limits=Limits(max_depth=3))
    assert run.stats.limits["depth"] >= 1
    assert run.of(inner) == []  # two codings were left on: the zlib stream was not reached
    assert len(run.of(body)) == 1  # the body itself, a gzip member leaving, is still found
