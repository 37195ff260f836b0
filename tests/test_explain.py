"""`explain` on a store the real CLI builds: a zip whose two entries fail their CRC, mailed out over SMTP, staged on
the host that mailed it, with the host's Sysmon events; then `correlate`. Every id the store holds resolves
(host events and flows included), every field of a record is shown, and `explain_record` gives the same as JSON.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import struct
import zipfile
from pathlib import Path

import pytest
from rich.console import Console
from rich.tree import Tree

from sensor.cli import main as cli_main
from sensor.errors import InputError
from sensor.model import Checksum, ChecksumFailures, Format, Proof
from sensor.output.ecs import finding_record
from sensor.output.explain import explain, explain_record, finding_tree
from sensor.store.db import FindingStore, host_event_key
from tests import appbuild as ab
from tests import hostbuild as hb
from tests.builders import sample_text
from tests.conftest import scan
from tests.netbuild import BASE_TIME, segments, write_pcap

T = BASE_TIME
ENTRIES = {name: sample_text(3000, i) for i, name in enumerate(("a.txt", "b.bin", "c.txt", "d.txt", "e.txt"))}
SENDER, RCPTS, SUBJECT = "bob@corp.example", ["drop@mail.example", "cc@mail.example"], "q3 numbers"
PY = r"C:\Python312\python.exe"
TEMP = r"C:\Users\bob\AppData\Local\Temp"


def zip_with_bad_crcs(files: dict[str, bytes], bad: set[str]) -> bytes:
    """A deflated zip whose `bad` entries carry a wrong CRC-32 (local header and central directory alike)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2025, 11, 22, 8, 0, 0)), data, zipfile.ZIP_DEFLATED)
    raw = bytearray(buf.getvalue())
    # (signature, offset of the CRC-32, of the name's length, of the name): local header, central directory entry
    for sig, at, nlen_at, name_at in ((b"PK\x03\x04", 14, 26, 30), (b"PK\x01\x02", 16, 28, 46)):
        pos = raw.find(sig)
        while pos >= 0:
            (nlen,) = struct.unpack_from("<H", raw, pos + nlen_at)
            if raw[pos + name_at : pos + name_at + nlen].decode() in bad:
                raw[pos + at : pos + at + 4] = bytes(b ^ 0xFF for b in raw[pos + at : pos + at + 4])
            pos = raw.find(sig, pos + 4)
    return bytes(raw)


ZIP = zip_with_bad_crcs(ENTRIES, {"a.txt", "b.bin"})


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, rule_cache: Path) -> str:
    """The mail, the staged copy and the Sysmon events, scanned and correlated into one store."""
    tmp = tmp_path_factory.mktemp("explain")
    caps, staged, logs = tmp / "captures", tmp / "staged", tmp / "telemetry"
    for d in (caps, staged, logs):
        d.mkdir()
    msg = ab.smtp_message(SENDER, RCPTS, SUBJECT, "see attached", [ab.Attachment("stage_df00_lib.zip", ZIP)])
    conv = ab.smtp_session([(SENDER, RCPTS, msg)], client="10.1.2.6", server="198.51.100.25", start=T)
    write_pcap(caps / "mail.pcap", segments(conv))
    cmd = f"python.exe -c \"import zipfile;zipfile.ZipFile(r'{TEMP}\\stage_df00_lib.zip','w',8)\""
    events = [
        hb.process(10, iso(T - 60), PY, cmd, r"C:\Windows\explorer.exe", 4400, "CORP\\bob"),
        hb.file_create(11, iso(T - 59), PY, TEMP + r"\stage_df00_lib.zip", 4400),
        hb.connection(12, iso(T + 0.5), PY, 4400, ("10.1.2.6", 49200), ("198.51.100.25", 25)),
    ]
    events = [hb.WinEvent(e.event_id, e.time, e.data, "WS-04.corp.example", record_id=e.record_id) for e in events]
    (logs / "ws04.xml").write_text(hb.events_xml(events))
    f = staged / "WS-04" / "Users/bob/AppData/Local/Temp/stage_df00_lib.zip"
    f.parent.mkdir(parents=True)
    f.write_bytes(ZIP)
    os.utime(f, (T - 59, T - 59))
    cfg = tmp / "sw.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "test"\n')
    path = str(tmp / "sw.db")
    scan_args = ["-q", "scan", str(caps), str(staged), str(logs), "--db", path, "--config", str(cfg)]
    assert cli_main([*scan_args, "--home-net", "10.0.0.0/8", "--host-from-path", "/staged/([^/]+)/"]) == 0
    assert cli_main(["-q", "correlate", "--db", path]) == 0
    return path


def text_of(tree: Tree) -> str:
    out = io.StringIO()
    Console(file=out, width=2000, color_system=None, highlight=False).print(tree)
    return out.getvalue()


def shown(path: str, ident: str) -> str:
    with FindingStore(path) as store:
        return text_of(explain(store, ident))


def the_mail(path: str) -> dict:
    with FindingStore(path) as store:
        return next(r for r in store.findings() if r.get("network", {}).get("protocol") == "smtp")


def the_incident(path: str) -> dict:
    with FindingStore(path) as store:
        (inc,) = store.incident_records()
        return inc


# -- 1. every id resolves: host events and flows too ---------------------------------------------------------


def test_a_host_event_resolves_by_its_key_prefix_and_shows_every_column(db):
    with FindingStore(db) as store:
        events = {e.code: e for e in store.host_events()}
    conn, proc = events["3"], events["1"]
    out = shown(db, host_event_key(conn)[:8])
    assert f"host event {host_event_key(conn)}" in out and "network (sysmon 3)" in out
    for text in (iso(T + 0.5)[:19], "WS-04.corp.example", PY, "(pid 4400)", "tcp 10.1.2.6:49200 > 198.51.100.25:25"):
        assert text in out, text
    assert f"source: {conn.source} record 12" in out
    out = shown(db, host_event_key(proc))
    for text in (f"command line: {proc.command_line}", r"parent: C:\Windows\explorer.exe (pid 4242)", "CORP\\bob"):
        assert text in out, text
    created = shown(db, host_event_key(events["11"])[:10])
    assert rf"target file: {TEMP}\stage_df00_lib.zip" in created


def test_every_evidence_id_of_the_incident_resolves(db):
    inc = the_incident(db)
    evidence = inc["stagewatch"]["incident"]["evidence"]
    kinds = {e["kind"] for e in evidence}
    assert {"network", "staged_file", "host_rule", "host_event"} <= kinds, kinds
    with FindingStore(db) as store:
        for ev in evidence:
            got = explain_record(store, ev["id"])
            assert got["table"] in ("findings", "host_findings", "host_events", "flows"), ev
            if ev["kind"] == "host_event":
                assert got["table"] == "host_events" and got["record"]["stagewatch"]["evidence_id"] == ev["id"]
                assert inc["event"]["id"] in {i["event"]["id"] for i in got["incidents"]}
            if len(ev["id"]) == 36:  # UUIDs print shortened: the first 8 characters resolve too
                assert explain_record(store, ev["id"][:8])["id"] == ev["id"]
    chain = shown(db, inc["event"]["id"][:8])
    host_event = next(e for e in evidence if e["kind"] == "host_event")
    assert host_event["id"] in chain


def test_a_flow_resolves_and_shows_its_record_and_the_findings_it_carried(db):
    with FindingStore(db) as store:
        ((flow_id, flow),) = [(i, r) for i, r in store.flow_records() if r["destination"]["port"] == 25]
    mail = the_mail(db)
    out = shown(db, flow_id[:8])
    assert f"flow {flow_id}" in out
    assert "tcp 10.1.2.6:49200 > 198.51.100.25:25 outbound" in out
    assert f"community id: {flow['network']['community_id']}" in out
    assert f"{flow['source']['bytes']} bytes in {flow['source']['packets']} packets" in out
    assert out.index("findings in this flow") < out.index(mail["event"]["id"])
    with FindingStore(db) as store:
        got = explain_record(store, flow_id)
    assert got["table"] == "flows" and got["record"] == flow
    assert [r["event"]["id"] for r in got["findings"]] == [mail["event"]["id"]]


def test_a_host_finding_names_the_host_event_it_flags(db):
    with FindingStore(db) as store:
        hit = store.host_finding_records()[0]
        got = explain_record(store, hit["event"]["id"])
    key = got["host_event"]["event"]["id"]
    assert len(key) == 40 and f"host event: {key}" in shown(db, hit["event"]["id"])
    assert shown(db, key[:8]).count(hit["event"]["id"]) >= 1  # and the event names the hit that flags it


def test_unknown_and_short_ids_still_fail_in_one_line(db):
    with FindingStore(db) as store:
        for ident in ("0000000000", "abc", "x#1#process", "f" * 40):
            with pytest.raises(InputError) as err:
                explain(store, ident)
            assert ident in str(err.value) and "\n" not in str(err.value)


# -- 2. every field shown -------------------------------------------------------------------------------------


def test_a_mail_finding_shows_sender_recipients_subject_and_community_id(db):
    mail = the_mail(db)
    assert mail["email"] == {"from": {"address": [SENDER]}, "to": {"address": RCPTS}, "subject": SUBJECT}
    out = shown(db, mail["event"]["id"][:8])
    assert f"mail from: {SENDER}" in out
    assert f"mail to: {', '.join(RCPTS)}" in out
    assert f"subject: {SUBJECT}" in out
    assert f"community id: {mail['network']['community_id']}" in out


@pytest.mark.parametrize("which", ["mail", "staged", "incident", "host_finding", "flow", "host_event"])
def test_nothing_in_a_record_is_hidden(db, which):
    with FindingStore(db) as store:
        records = {
            "mail": the_mail(db),
            "staged": next(r for r in store.findings() if "path" in r["file"]),
            "incident": the_incident(db),
            "host_finding": store.host_finding_records()[0],
        }
        flow_id, _ = next((i, r) for i, r in store.flow_records() if r["destination"]["port"] == 25)
        key = host_event_key(next(e for e in store.host_events() if e.code == "3"))
        ident = {"flow": flow_id, "host_event": key}.get(which) or records[which]["event"]["id"]
        record = explain_record(store, ident)["record"]
        out = text_of(explain(store, ident))
    hidden = [(k, v) for k, v in leaves(record) if v not in out]
    assert not hidden
    if which == "mail":
        assert "other fields" in out and "observer.name: test" in out


def leaves(value: object, key: str = "") -> list[tuple[str, str]]:
    """Every scalar of a record with its dotted key, list items one by one; of an incident's evidence list only
    each item's kind and id (the chain shows the records they name)."""
    if isinstance(value, dict):
        if key == "stagewatch.incident.evidence":
            return [(key, str(value["kind"])), (key, str(value["id"]))]
        return [x for k, v in value.items() for x in leaves(v, f"{key}.{k}" if key else k)]
    if isinstance(value, list):
        return [x for v in value for x in leaves(v, key)]
    return [] if value is None or value == "" else [(key, str(value))]


def test_limits_are_shown_as_names_and_values():
    record = {"event": {"id": "x", "kind": "event"}, "stagewatch": {"limits": [{"limit": "ratio", "value": 1000}]}}
    with FindingStore(":memory:") as store:
        out = text_of(finding_tree(store, record))
    assert "limits: ratio=1000" in out


# -- 3. explain_record -------------------------------------------------------------------------------------


def test_explain_record_of_a_finding_has_its_incident_and_twin(db):
    mail = the_mail(db)
    inc = the_incident(db)
    with FindingStore(db) as store:
        staged = next(r for r in store.findings() if "path" in r["file"])
        got = explain_record(store, mail["event"]["id"][:8])
    assert (got["table"], got["id"], got["record"]) == ("findings", mail["event"]["id"], mail)
    assert [i["event"]["id"] for i in got["incidents"]] == [inc["event"]["id"]]
    assert [r["event"]["id"] for r in got["same_sha256"]] == [staged["event"]["id"]]
    json.dumps(got)  # one JSON line for --jsonl


def test_explain_record_of_an_incident_resolves_its_evidence(db):
    inc = the_incident(db)
    with FindingStore(db) as store:
        got = explain_record(store, inc["event"]["id"])
    assert (got["table"], got["record"]) == ("incidents", inc)
    cited = inc["stagewatch"]["incident"]["evidence"]
    assert [(e["kind"], e["id"]) for e in got["evidence"]] == [(e["kind"], e["id"]) for e in cited]
    for e in got["evidence"]:
        assert e["record"] is not None, e
        want = e["id"] if e["table"] != "host_events" else e["record"]["stagewatch"]["evidence_id"]
        assert want == e["id"] or e["record"]["event"]["id"] == e["id"]
    json.dumps(got)


# -- 5. which entries failed their CRC -----------------------------------------------------------------------


def test_zip_names_the_entries_that_failed_their_crc(detector):
    (f,) = [f for f in scan(detector, ZIP, "stage.zip") if f.member.format is Format.ZIP]
    assert (f.member.proof, f.member.checksum) == (Proof.CHECKSUM, Checksum.BAD)
    assert f.member.checksum_failures == ChecksumFailures(("a.txt", "b.bin"), 2, 5)
    sw = finding_record(f)["stagewatch"]
    assert (sw["checksum_failed"], sw["checksum_failed_count"], sw["checksum_checked"]) == (["a.txt", "b.bin"], 2, 5)
    good = [f for f in scan(detector, zip_with_bad_crcs(ENTRIES, set())) if f.member.format is Format.ZIP]
    assert good[0].member.checksum_failures is None and "checksum_failed" not in finding_record(good[0])["stagewatch"]


def test_failed_names_are_bounded_but_all_counted(default_detector):
    files = {f"f{i:02}.txt": sample_text(500, i) for i in range(12)}
    (f,) = [f for f in scan(default_detector, zip_with_bad_crcs(files, set(files) - {"f00.txt"}))]
    fails = f.member.checksum_failures
    assert fails is not None and (fails.count, fails.checked) == (11, 12)
    assert fails.names == tuple(f"f{i:02}.txt" for i in range(1, 9))


def test_explain_says_which_entries_failed(db):
    out = shown(db, the_mail(db)["event"]["id"])
    assert "proof: checksum" in out
    assert "checksum: bad (2 of 5 entries failed their CRC: a.txt, b.bin)" in out
