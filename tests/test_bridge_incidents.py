"""Incidents from another sensor's outputs and host telemetry, with no capture at all (issue "Beside Zeek and
Suricata"): Zeek's logs and extracted files joined to Sysmon on the workstation that sent them; and a file
Suricata logged leaving without keeping its bytes, joined by its SHA-256 to the copy staged on that host."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from sensor.output.explain import explain
from sensor.store.db import FindingStore
from tests import appbuild as ab
from tests import hostbuild as hb
from tests import suricata_run, waysout, zeekbuild
from tests.builders import sample_text, zip_archive
from tests.conftest import need
from tests.incidents import scan_and_correlate
from tests.netbuild import BASE_TIME, Conv, segments, write_pcap
from tests.test_explain import text_of
from tests.waysout import CLIENT, OUTSIDE, UPLOAD, sha

PY = r"C:\Python312\python.exe"
TEMP = r"C:\Users\bob\AppData\Local\Temp"
HOSTMAP = f"name,ip\nWS-01,{CLIENT}\n"


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def telemetry(folder: Path) -> Path:
    """Sysmon on WS-01: python compresses rows.gz in Temp, then connects to where Zeek saw the upload go."""
    folder.mkdir()
    code = f"import gzip,shutil;shutil.copyfileobj(open('rows.csv','rb'),gzip.open(r'{TEMP}\\rows.gz','wb'))"
    cmd = f'python.exe -c "{code}"'
    events = [
        hb.process(10, iso(BASE_TIME - 60), PY, cmd, r"C:\Windows\explorer.exe", 4400, "CORP\\bob"),
        hb.connection(12, iso(BASE_TIME + 0.001), PY, 4400, (CLIENT, waysout.PORTS["upload"][0]), (OUTSIDE, 80)),
    ]
    (folder / "sysmon.xml").write_text(hb.events_xml(events))
    return folder


def test_zeek_outputs_and_sysmon_make_an_incident_without_a_capture(tmp_path, rule_cache):
    zeek = zeekbuild.ways_out(tmp_path / "zeek")
    incidents, store = scan_and_correlate(
        tmp_path, rule_cache, [zeek, telemetry(tmp_path / "telemetry")], hostmap=HOSTMAP
    )
    (inc,) = [
        i for i in incidents if any(sha(UPLOAD) == e.get("sha256") for e in i["stagewatch"]["incident"]["evidence"])
    ]
    sw = inc["stagewatch"]["incident"]
    assert inc["host"]["name"] == "WS-01.corp.example" and {"network", "host_rule"} <= set(sw["kinds"])
    assert "T1567" in inc["threat"]["technique"]["id"] and inc["process"]["executable"] == PY
    assert "process_connection" in sw["reasons"]  # Sysmon's connection is the very flow Zeek logged
    (net,) = [e for e in sw["evidence"] if e["kind"] == "network" and e.get("sha256") == sha(UPLOAD)]
    with FindingStore(str(store)) as db:
        text = text_of(explain(db, net["id"]))
    assert f"logged by: zeek (uid {zeekbuild.UIDS['upload']}, fuid {zeekbuild.FUIDS['upload']}) in" in text


def test_a_file_suricata_saw_leave_without_its_bytes_joins_the_staged_copy(tmp_path, rule_cache):
    need(suricata_run.missing())
    logs = suricata_run.run(waysout.write(tmp_path), tmp_path / "suricata", filestore=False)
    staged = tmp_path / "staged" / "WS-01" / "Users" / "bob" / "AppData" / "Local" / "Temp"
    staged.mkdir(parents=True)
    (staged / "rows.gz").write_bytes(UPLOAD)
    incidents, _ = scan_and_correlate(tmp_path, rule_cache, [logs, tmp_path / "staged"], "--host-from-path",
                                      "/staged/([^/]+)/", hostmap=HOSTMAP)  # fmt: skip
    (inc,) = incidents
    sw = inc["stagewatch"]["incident"]
    assert inc["host"]["name"] == "WS-01" and set(sw["kinds"]) == {"network", "staged_file"}
    assert "same_sha256" in sw["reasons"]
    (net,) = [e for e in sw["evidence"] if e["kind"] == "network"]
    assert net["sha256"] == sha(UPLOAD) and "suricata saw http" in net["summary"] and "not kept" in net["summary"]


def test_suricatas_flows_alone_fit_an_encrypted_upload_to_the_staged_file(tmp_path, rule_cache):
    """No file at all: a TLS upload to port 443 whose client bytes (Suricata's flow event, headers taken off)
    fit the size of an archive staged on the host: the TLS size fit on a Suricata shop's data."""
    need(suricata_run.missing())
    staged = tmp_path / "staged" / "WS-01" / "Users" / "bob" / "AppData" / "Local" / "Temp"
    staged.mkdir(parents=True)
    archive = zip_archive({f"export/rows{i}.csv": sample_text(40_000, 40 + i) for i in range(8)})
    (staged / "out.zip").write_bytes(archive)
    os.utime(staged / "out.zip", (BASE_TIME + 20, BASE_TIME + 20))  # written ten seconds before the upload
    sends = ab.tls_lookalike([("c2s", len(archive)), ("s2c", 300)])
    conv = Conv(CLIENT, 49300, OUTSIDE, 443, sends=sends, start=BASE_TIME + 30)
    logs = suricata_run.run(write_pcap(tmp_path / "tls.pcap", segments(conv)), tmp_path / "suricata")
    incidents, _ = scan_and_correlate(tmp_path, rule_cache, [logs, tmp_path / "staged"], "--host-from-path",
                                      "/staged/([^/]+)/", hostmap=HOSTMAP)  # fmt: skip
    (inc,) = incidents
    sw = inc["stagewatch"]["incident"]
    assert set(sw["kinds"]) == {"network", "staged_file"} and "size_fits_encrypted_flow" in sw["reasons"]
