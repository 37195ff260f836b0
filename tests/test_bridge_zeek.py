"""Zeek's outputs as input (issue "Beside Zeek and Suricata"). Zeek's own test baselines (tests/data/bridges/zeek,
BSD-3-Clause, see NOTICE.md) hold real logs of both files.log schemas, TSV and JSON, and real extracted files:
the reader takes them all, and a real SMTP run's logs and extracted parts become objects with Zeek's names and
ids. Logs in Zeek's exact format for tests/waysout.py's capture (tests/zeekbuild.py) give the members the
capture gives, on the same connections, in TSV, JSON and gzip-rotated TSV alike. Bad logs are one line each."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sensor.bridges import zeek_log
from sensor.config import Settings
from sensor.model import Finding, FlowRecord, ObjectRecord
from sensor.output.ecs import finding_record
from sensor.pipeline import Job, scan_inputs
from sensor.stats import RunStats
from tests import waysout, zeekbuild
from tests.waysout import CLIENT, HOME, MEMBERS, OUTSIDE, STORED, UPLOAD, sha
from tests.zeekbuild import DATA, FUIDS, UIDS, real


def scan(paths: list[Path], cache: Path, **kw: object) -> tuple[list[object], RunStats]:
    stats = RunStats()
    settings = Settings(home_net=HOME, observer="test", cache_dir=cache, objects=True, **kw)  # type: ignore[arg-type]
    return list(scan_inputs(Job(tuple(str(p) for p in paths), settings), stats)), stats


def members(results: list[object]) -> dict[str, Finding]:
    wanted = {sha(m) for m in MEMBERS.values()}
    return {r.member.sha256: r for r in results if isinstance(r, Finding) and r.member.sha256 in wanted}


# -- the reader on Zeek's own baselines -------------------------------------------------------------------------

BASELINES = sorted(
    p for p in DATA.glob("*/*") if p.name.endswith((".log", ".log.json", ".log.tsv", ".deprecated", ".new"))
)


@pytest.mark.parametrize("path", BASELINES, ids=[f"{p.parent.name}/{p.name}" for p in BASELINES])
def test_every_real_zeek_log_reads(tmp_path, path):
    copy = tmp_path / path.name
    copy.write_bytes(real(path))
    log = zeek_log.sniff(str(copy), copy.read_bytes()[:4096])
    if path.name.startswith(("smb_", "http.log.json")) and log is None:
        assert path.name.startswith("smb_")  # smb_files/smb_mapping: logs we do not read
        return
    assert log is not None, path
    rows = list(zeek_log.rows(log))
    body = [ln for ln in copy.read_bytes().splitlines() if ln and not ln.startswith(b"#")]
    assert len(rows) == len(body) and all(isinstance(r["ts"], float) for r in rows)
    if log.kind == "files":
        assert all(r.get("uid") or r.get("conn_uids") for r in rows)  # new schema, or old (conn_uids)


def test_tsv_and_json_logs_of_the_same_run_read_the_same(tmp_path):
    base = DATA / "scripts.base.frameworks.logging.json-non-printable-escaping"
    (tmp_path / "http.log").write_bytes(real(base / "http.log.tsv"))
    (tmp_path / "http.json").write_bytes(real(base / "http.log.json"))
    tsv = list(zeek_log.rows(zeek_log.sniff(str(tmp_path / "http.log"), (tmp_path / "http.log").read_bytes())))
    js = list(zeek_log.rows(zeek_log.sniff(str(tmp_path / "http.json"), (tmp_path / "http.json").read_bytes())))
    assert len(tsv) == len(js) == 4
    for a, b in zip(tsv[:3], js[:3], strict=True):
        assert {k: v for k, v in a.items() if v != ()} == {k: v for k, v in b.items() if v != ()}
    assert tsv[2]["uri"] == js[2]["uri"] == "/non_printable_\x07" and tsv[1]["uri"] == "/printable_\U0001f604"
    # the one place the writers differ: a URI holding the text \x07. TSV doubles the backslash; JSON writes it
    # as it writes the byte 0x07, so only TSV can tell them apart
    assert tsv[3]["uri"] == "/non_printable_literal_\\x07" and js[3]["uri"] == "/non_printable_literal_\x07"


def test_a_real_smtp_run_becomes_objects_with_zeeks_names_and_ids(tmp_path, rule_cache):
    """Zeek 3.x's smtp.attachment baseline (old files.log schema, real times) and the parts Zeek extracted from
    the same traffic (file-analysis.smtp), named as FileExtract names them."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("files.log", "smtp.log"):
        (logs / name).write_bytes(real(DATA / "scripts.base.protocols.smtp.attachment@3bce313b" / name))
    ext = tmp_path / "extract_files"
    ext.mkdir()
    parts = {"FmFp351N5nhsMmAfQg": "thefile0", "Fqrb1K5DWEfgy4WU2": "thefile1", "FEFYSd1s8Onn9LynKj": "thefile2"}
    for fuid, src in parts.items():
        (ext / f"extract-1254722770.692743-SMTP-{fuid}").write_bytes(
            real(DATA / "scripts.base.frameworks.file-analysis.smtp" / src)
        )
    results, stats = scan([logs, ext], rule_cache)
    objects = {r.app.sensor.fuid: r for r in results if isinstance(r, ObjectRecord)}
    assert set(objects) == {*parts, "Fc5KpS3kUYqDLwWSMf"}
    news = objects["FEFYSd1s8Onn9LynKj"]
    assert (news.name, news.size, news.scanned, news.origin.direction) == ("NEWS.txt", 10809, True, "outbound")
    assert (news.origin.src, news.origin.dst, news.origin.protocol) == ("10.10.1.4", "74.53.140.153", "smtp")
    assert news.app.mail_from == "gurpartap@patriots.in" and news.app.rcpt_to == ("raj_deol2002in@yahoo.co.in",)
    assert news.app.sensor.uid == "CHhAvVGS1DHFjwGM9" and news.mime_type == "text/plain"
    assert not objects["Fc5KpS3kUYqDLwWSMf"].scanned  # logged, never extracted: its size still counts
    assert objects["Fc5KpS3kUYqDLwWSMf"].origin.direction == "external"  # 192.168/16 is not this home_net
    assert stats.bridge["files_scanned"] == 3 and stats.bridge["files_not_kept"] == 1


def test_a_cut_extraction_is_truncated(tmp_path, rule_cache):
    base = DATA / "scripts.base.files.extract.limit"
    (tmp_path / "files.log").write_bytes(real(base / "files.log"))
    (tmp_path / "extract_files").mkdir()
    shutil.copy(base / "extract_files.2", tmp_path / "extract_files" / "2")
    results, _ = scan([tmp_path], rule_cache)
    (obj,) = [r for r in results if isinstance(r, ObjectRecord)]
    assert obj.truncated and obj.scanned and obj.size == 6000 and obj.origin.protocol == "ftp"
    assert obj.origin.direction == "external" and not obj.origin.client_to_server  # is_orig F: the server sent it


# -- a whole run: the same findings as the capture ----------------------------------------------------------------


@pytest.fixture(scope="module")
def direct(tmp_path_factory, rule_cache) -> dict[str, Finding]:
    return members(scan([waysout.write(tmp_path_factory.mktemp("cap"))], rule_cache)[0])


@pytest.mark.parametrize("form", ["tsv", "json", "tsv.gz"])
def test_zeek_logs_and_extracted_files_give_the_captures_findings(tmp_path, rule_cache, direct, form):
    zeekbuild.ways_out(tmp_path / "zeek", as_json=form == "json", gz=form.endswith(".gz"))
    results, stats = scan([tmp_path / "zeek"], rule_cache)
    bridged = members(results)
    assert set(bridged) == set(direct) == {sha(m) for m in MEMBERS.values()}
    for digest, f in bridged.items():
        o, p = f.origin, direct[digest].origin
        assert (o.src, o.sport, o.dst, o.dport, o.direction) == (p.src, p.sport, p.dst, p.dport, p.direction)
        assert o.community_id == p.community_id and f.kind == direct[digest].kind
        rec = finding_record(f)
        assert rec["zeek"]["uid"] in UIDS.values() and rec["zeek"]["fuid"] in FUIDS.values()
        assert rec["stagewatch"]["container"]["sha256"] == digest == rec["stagewatch"]["bridge"]["hash"]["sha256"]
    up = bridged[sha(UPLOAD)]
    assert (up.app.method, up.app.url, up.app.domain, up.origin.protocol) == (
        "POST",
        "/upload/rows.gz",
        "drop.example",
        "http",
    )
    mail = bridged[sha(waysout.ATTACHED)]
    assert (mail.name, mail.app.mail_from, mail.app.rcpt_to) == (
        "stage_lib.zip",
        "bob@corp.example",
        ("drop@mail.example",),
    )
    ftp = bridged[sha(STORED)]
    assert (ftp.name, ftp.app.command, ftp.origin.protocol) == ("stage.tar.bz2", "STOR", "ftp")
    flows = [r for r in results if isinstance(r, FlowRecord)]
    assert {(f.src, f.sport, f.dst, f.dport) for f in flows} >= {(CLIENT, 49152, OUTSIDE, 80)}
    assert stats.bridge["zeek.flows"] == 4 and stats.errors == {}


def test_tsv_and_json_give_the_same_findings(tmp_path, rule_cache):
    zeekbuild.ways_out(tmp_path / "tsv")
    zeekbuild.ways_out(tmp_path / "json", as_json=True)
    a = sorted(f.event_id for f in scan([tmp_path / "tsv"], rule_cache)[0] if isinstance(f, Finding))
    b = sorted(f.event_id for f in scan([tmp_path / "json"], rule_cache)[0] if isinstance(f, Finding))
    assert a == b and len(a) >= 4


def test_with_two_worker_processes_one_reads_the_logs(tmp_path, rule_cache):
    from sensor.pipeline import scan_parallel

    zeekbuild.ways_out(tmp_path / "zeek")
    one = members(scan([tmp_path / "zeek"], rule_cache)[0])
    stats = RunStats()
    settings = Settings(home_net=HOME, observer="test", cache_dir=rule_cache)
    found = members(list(scan_parallel(Job((str(tmp_path / "zeek"),), settings), 2, stats)))
    assert {d: f.event_id for d, f in found.items()} == {d: f.event_id for d, f in one.items()} and len(one) == 4
    assert stats.bridge["zeek.files_logs"] == 1 and stats.bridge["files_scanned"] == 4


# -- bad input ------------------------------------------------------------------------------------------------------


def test_bad_logs_are_one_line_each_and_the_rest_is_processed(tmp_path, rule_cache, warnings):
    from loguru import logger

    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(m.record["message"]), level="ERROR", format="{message}")
    try:
        zeek = zeekbuild.ways_out(tmp_path / "zeek")
        http = (zeek / "http.log").read_text().splitlines()
        (zeek / "http.log").write_text("\n".join(ln for ln in http if not ln.startswith("#fields")) + "\n")
        conn = (zeek / "conn.log").read_text().splitlines()
        i = next(n for n, ln in enumerate(conn) if ln.startswith("#fields"))
        cols = conn[i].split("\t")
        cols[1], cols[3] = cols[3], cols[1]  # ts and id.orig_h swapped in the header, not in the rows
        conn[i] = "\t".join(cols)
        (zeek / "conn.log").write_text("\n".join(conn) + "\n")
        results, stats = scan([zeek], rule_cache)
    finally:
        logger.remove(sink)
    found = members(results)
    assert set(found) == {sha(m) for m in MEMBERS.values()}  # the files still found, from files.log alone
    assert sum("http.log" in e and "#fields" in e for e in errors) == 1
    assert sum("conn.log" in e and "#fields and #types disagree" in e for e in errors) == 1
    assert found[sha(UPLOAD)].app.method is None and found[sha(UPLOAD)].origin.sport == 49152  # files.log's id.*
