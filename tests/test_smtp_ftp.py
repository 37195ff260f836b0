"""SMTP and FTP objects end to end, over captures crafted with tests/appbuild.py and scanned by the real
pipeline: the last two atomic tests of the QRadar seed, the SMTP dialogue variants (DATA with dot-stuffing,
BDAT, several messages, STARTTLS), and FTP's four ways to announce a data channel, in either capture order,
with one or two worker processes."""

from __future__ import annotations

import email
import email.policy
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from sensor.config import Settings
from sensor.model import Finding, ObjectRecord
from sensor.output.ecs import finding_record
from sensor.pipeline import Job, scan_inputs, scan_parallel
from sensor.protocols.smtp import unstuff
from sensor.stats import RunStats
from tests import appbuild as ab
from tests.builders import HOSTS, bzip2_member, sample_text, tar_archive, zip_archive, zlib_member
from tests.netbuild import BASE_TIME, payload_stream, segments, write_pcap

HOME = ("10.0.0.0/8",)
CLIENT, OUTSIDE = "10.0.0.10", "198.51.100.25"
ZIP_LIB = zip_archive({"hosts": HOSTS})  # stage_df00_lib.zip, Python zipfile ZIP_DEFLATED
TAR_BZ2 = tar_archive({"etc/hosts": HOSTS}, "bz2")  # stage_df00.tar.bz2, Python tarfile + bz2


@dataclass
class Run:
    findings: list[Finding]
    objects: list[ObjectRecord]
    stats: RunStats

    def one(self, member: bytes) -> Finding:
        digest = hashlib.sha256(member).hexdigest()
        got = [f for f in self.findings if f.member.sha256 == digest]
        assert len(got) == 1, [(f.member.format, f.encoding, f.name) for f in self.findings]
        return got[0]


def settings(cache: Path) -> Settings:
    return Settings(home_net=HOME, observer="test", cache_dir=cache, objects=True)


def run_pcap(cache: Path, pcap: Path) -> Run:
    stats = RunStats()
    results = list(scan_inputs(Job((str(pcap),), settings(cache)), stats))
    return Run(
        [r for r in results if isinstance(r, Finding)], [r for r in results if isinstance(r, ObjectRecord)], stats
    )


# -- SMTP -----------------------------------------------------------------------------------------


def mail(subject: str, attachments: list[ab.Attachment], text: str = "Hi,\r\n.see attached\r\n") -> bytes:
    return ab.smtp_message("bob@corp.example", ["drop@mail.example"], subject, text, attachments)


def test_atomic_zipfile_archive_mailed_as_an_attachment(tmp_path, rule_cache):
    msg = mail("Q3 numbers", [ab.Attachment("stage_df00_lib.zip", ZIP_LIB, "application", "zip")])
    conv = ab.smtp_session([("bob@corp.example", ["drop@mail.example", "cc@mail.example"], msg)], server=OUTSIDE)
    run = run_pcap(rule_cache, write_pcap(tmp_path / "smtp.pcap", segments(conv)))
    f = run.one(ZIP_LIB)
    rec = finding_record(f)
    assert (rec["event"]["kind"], rec["network"]["protocol"], rec["file"]["name"]) == (
        "alert",
        "smtp",
        "stage_df00_lib.zip",
    )
    assert rec["stagewatch"]["format"] == "zip" and rec["stagewatch"]["encoding"] == ["mime", "base64"]
    assert rec["stagewatch"]["inner"]["names"] == ["hosts"]
    assert rec["file"]["hash"]["sha256"] == hashlib.sha256(ZIP_LIB).hexdigest()  # the staged file's hash
    assert rec["email"] == {
        "from": {"address": ["bob@corp.example"]},
        "to": {"address": ["drop@mail.example", "cc@mail.example"]},
        "subject": "Q3 numbers",
    }


def test_data_is_dot_unstuffed_and_several_messages_keep_their_envelopes(tmp_path, rule_cache):
    first, second = zlib_member(sample_text(20_000, 1)), bzip2_member(sample_text(20_000, 2))
    m1 = mail("one", [ab.Attachment("a.z", first)])
    m2 = mail("two", [ab.Attachment("b.bz2", second)], text="..leading dots\r\n.\r\nx\r\n")
    conv = ab.smtp_session([("a@corp.example", ["x@o.example"], m1), ("b@corp.example", ["y@o.example"], m2)])
    stream = payload_stream(conv, "c2s")
    assert b"\r\n..." in stream  # the second message's dotted lines were stuffed on the wire
    run = run_pcap(rule_cache, write_pcap(tmp_path / "two.pcap", segments(conv)))
    a, b = run.one(first), run.one(second)
    assert (a.app.mail_from, a.app.rcpt_to, a.app.subject, a.name) == ("a@corp.example", ("x@o.example",), "one", "a.z")
    assert (b.app.mail_from, b.app.rcpt_to, b.app.subject, b.name) == (
        "b@corp.example",
        ("y@o.example",),
        "two",
        "b.bz2",
    )
    whole = {o.sha256 for o in run.objects if o.layers == ()}
    assert hashlib.sha256(m2).hexdigest() in whole  # the message object is the unstuffed original
    assert unstuff(b"..a\r\n..\r\nb") == b".a\r\n.\r\nb"


def test_bdat_chunks_make_one_message(tmp_path, rule_cache):
    member = zlib_member(sample_text(40_000, 3))
    msg = mail("chunked", [ab.Attachment("c.z", member, encoding="quoted-printable")])
    conv = ab.smtp_session([("a@corp.example", ["x@o.example"], msg)], use_bdat=True, bdat_chunk=3000, server=OUTSIDE)
    run = run_pcap(rule_cache, write_pcap(tmp_path / "bdat.pcap", segments(conv)))
    f = run.one(member)
    assert f.encoding == ("mime", "quoted-printable") and f.name == "c.z" and f.kind.value == "alert"
    parsed = email.message_from_bytes(msg, policy=email.policy.default)
    assert [p.get_filename() for p in parsed.iter_attachments()] == ["c.z"]


def test_starttls_makes_the_rest_metadata_only(tmp_path, rule_cache):
    msg = mail("secret", [ab.Attachment("s.zip", ZIP_LIB)])
    conv = ab.smtp_session([("a@corp.example", ["x@o.example"], msg)], starttls_after_ehlo=True, server=OUTSIDE)
    run = run_pcap(rule_cache, write_pcap(tmp_path / "tls.pcap", segments(conv)))
    assert run.findings == [] and run.objects == []
    assert run.stats.app["smtp.starttls"] == 1 and run.stats.app["smtp.encrypted_bytes"] > 0
    assert "raw.sessions" not in run.stats.app


def test_unterminated_mime_boundary_still_gives_the_attachment(tmp_path, rule_cache):
    msg = mail("cut", [ab.Attachment("cut.zip", ZIP_LIB)])
    cut = msg[: msg.rindex(b"--===============stagewatch-mixed==--")]
    conv = ab.smtp_session([("a@corp.example", ["x@o.example"], cut)], server=OUTSIDE)
    run = run_pcap(rule_cache, write_pcap(tmp_path / "cut.pcap", segments(conv)))
    assert run.one(ZIP_LIB).name == "cut.zip"
    assert run.stats.app["smtp.mime_defects"] >= 1


# -- FTP ------------------------------------------------------------------------------------------


def ftp_pcap(tmp_path: Path, name: str, transfers: list[ab.Transfer], **kw) -> Path:
    convs = ab.ftp_session(transfers, server=OUTSIDE, **kw)
    return write_pcap(tmp_path / name, ab.ftp_packets(convs))


@pytest.mark.parametrize("mode", ["pasv", "epsv", "port", "eprt"])
@pytest.mark.parametrize("data_first", [False, True], ids=["command-first", "data-first"])
def test_atomic_bz2_tar_sent_by_ftp_is_named_whatever_comes_first(tmp_path, rule_cache, mode, data_first):
    pcap = ftp_pcap(
        tmp_path, "ftp.pcap", [ab.Transfer("STOR", "out/stage_df00.tar.bz2", TAR_BZ2)], mode=mode, data_first=data_first
    )
    run = run_pcap(rule_cache, pcap)
    f = run.one(TAR_BZ2)
    rec = finding_record(f)
    assert (rec["file"]["name"], rec["ftp"], rec["url"]) == (
        "stage_df00.tar.bz2",
        {"command": "STOR"},
        {"original": "out/stage_df00.tar.bz2"},
    )
    assert (rec["stagewatch"]["format"], rec["event"]["kind"], rec["network"]["direction"]) == (
        "bzip2",
        "alert",
        "outbound",
    )
    assert "etc/hosts" in rec["stagewatch"]["inner"]["names"]  # the tar inside the bzip2 stream
    assert rec["network"]["protocol"] == "ftp-data" and run.stats.app["ftp.expired"] == 0


def test_retr_is_an_inbound_event_and_listings_are_linked(tmp_path, rule_cache):
    member = zlib_member(sample_text(30_000, 5))
    transfers = [
        ab.Transfer("RETR", "pub/in.z", member),
        ab.Transfer("APPE", "log.z", zlib_member(b"x" * 9000)),
        ab.Transfer("STOU", "u.z", zlib_member(b"y" * 9000)),
    ]
    run = run_pcap(rule_cache, ftp_pcap(tmp_path, "retr.pcap", transfers, mode="epsv"))
    f = run.one(member)
    assert (f.name, f.app.command, f.kind.value, f.origin.direction) == ("in.z", "RETR", "event", "inbound")
    appe = run.one(zlib_member(b"x" * 9000))
    assert (appe.name, appe.app.command, appe.kind.value) == ("log.z", "APPE", "alert")
    stou = run.one(zlib_member(b"y" * 9000))
    assert (stou.name, stou.app.command) == ("u.z", "STOU")


def test_bad_pasv_address_is_counted_and_the_data_still_scanned(tmp_path, rule_cache):
    pcap = ftp_pcap(tmp_path, "bad.pcap", [ab.Transfer("STOR", "x.tar.bz2", TAR_BZ2)], mode="pasv", bad_address=True)
    run = run_pcap(rule_cache, pcap)
    f = run.one(TAR_BZ2)
    assert f.name is None and f.kind.value == "alert"  # unnamed: nothing announced its channel
    assert run.stats.app["ftp.anomaly.bad_pasv"] == 1 and run.stats.app["ftp.expired"] == 1


def test_two_workers_link_control_and_data_the_same_way(tmp_path, rule_cache):
    transfers = [
        ab.Transfer("STOR", f"f{n}.tar.bz2", tar_archive({f"{n}.csv": sample_text(9000, n)}, "bz2")) for n in range(4)
    ]
    pcap = ftp_pcap(tmp_path, "many.pcap", transfers, mode="port")
    one = {(f.event_id, f.name) for f in run_pcap(rule_cache, pcap).findings}
    stats = RunStats()
    two = {
        (r.event_id, r.name)
        for r in scan_parallel(Job((str(pcap),), settings(rule_cache)), 2, stats)
        if isinstance(r, Finding)
    }
    assert one == two and len(one) == 4 and all(name for _, name in one)


def test_a_transfer_nobody_announces_is_released_after_the_wait(tmp_path, rule_cache):
    lost = tar_archive({"lost.csv": sample_text(8000, 6)}, "bz2")
    later = tar_archive({"later.csv": sample_text(8000, 7)}, "bz2")
    first = ab.ftp_session([ab.Transfer("STOR", "a.tar.bz2", lost)], server=OUTSIDE, bad_address=True)
    second = ab.ftp_session(
        [ab.Transfer("STOR", "b.tar.bz2", later)], client="10.0.0.11", server=OUTSIDE, start=BASE_TIME + 120
    )  # 120 s later: past the 60 s a transfer waits for its announcement
    pcap = write_pcap(tmp_path / "wait.pcap", ab.ftp_packets(first + second))
    run = run_pcap(rule_cache, pcap)
    order = [f.member.sha256 for f in run.findings]
    a, b = hashlib.sha256(lost).hexdigest(), hashlib.sha256(later).hexdigest()
    assert order.index(a) < order.index(b)  # released by the wait, not by the end of input
    assert run.one(lost).name is None and run.one(later).name == "b.tar.bz2"
    assert run.stats.app["ftp.expired"] == 1
