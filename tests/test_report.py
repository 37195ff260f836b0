"""`stagewatch report --html` and `stagewatch explain`, on a store the real CLI builds from the demo's inputs.

The report is opened in a real headless Chromium: the rendered DOM must hold every incident's host and
files and the content the inline script builds, and a screenshot is taken. A hostile HTTP upload (a
multipart file named `<script>alert(1)</script>.gz`) rides along to prove every value is escaped.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import subprocess
import sys
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sensor.cli import main as cli_main
from sensor.output import report
from sensor.output.chain import ts_of
from sensor.output.report_assets import SCRIPT
from sensor.store.db import FindingStore, parse_since
from tests import appbuild as ab
from tests.builders import gzip_named, sample_text
from tests.conftest import need
from tests.netbuild import segments, write_pcap

ROOT = Path(__file__).resolve().parents[1]
HOSTILE_NAME = "<script>alert(1)</script>.gz"
HOSTILE_URL = '/up?next=http://evil.example/"><img/src=x/onerror=alert(2)>'
HOSTILE_HOST = 'x.example"><svg/onload=alert(3)>'  # url.domain: a label of the destinations plot
HOME_NET = "10.0.0.0/8,2001:db8::/48"
SINCE = "2025-11-22T08:26:30"  # between the demo's first staged files (08:25-08:26) and its transfers


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, rule_cache: Path) -> Path:
    """The demo flow (make demo) into a fresh store, plus the hostile upload; returns the folder."""
    tmp = tmp_path_factory.mktemp("report")
    for script, args in (
        ("samples/make_staged.py", [tmp / "staged"]),
        ("pcaps/make_samples.py", [tmp / "pcaps"]),
        ("samples/make_hostevents.py", [tmp / "telemetry", tmp / "staged"]),
    ):
        subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], check=True, capture_output=True)
    member = gzip_named(sample_text(4000, 3), "payroll.csv")
    ctype, body = ab.multipart([ab.Part("f", member, filename=HOSTILE_NAME)])
    req = ab.http_request("POST", HOSTILE_URL, HOSTILE_HOST, body, [("Content-Type", ctype)])
    conv = ab.http_conversation([(req, ab.http_response(200, b"ok"))], client="10.0.0.10", server="203.0.113.80")
    write_pcap(tmp / "pcaps" / "hostile.pcap", segments(conv))
    cfg = tmp / "sw.toml"
    cfg.write_text(f'cache_dir = "{rule_cache}"\nobserver = "test"\n')
    db = str(tmp / "sw.db")
    inputs = [str(tmp / "staged"), str(tmp / "pcaps"), str(tmp / "telemetry")]
    scan = ["-q", "scan", *inputs, "--db", db, "--config", str(cfg), "--home-net", HOME_NET]
    assert cli_main([*scan, "--host-from-path", "/staged/([^/]+)/"]) == 0
    assert cli_main(["-q", "correlate", "--db", db, "--host-map", str(tmp / "telemetry" / "host-map.csv")]) == 0
    assert cli_main(["-q", "report", "--output", str(tmp / "report.html"), "--db", db]) == 0
    return tmp


def _store(demo: Path) -> tuple[list[dict], list[dict]]:
    with FindingStore(str(demo / "sw.db")) as store:
        return list(store.findings()), store.incident_records()


class _Page(HTMLParser):
    """Text, tags and attributes of a page, as a browser's parser splits them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in == "script":
            self.scripts.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        need("no chromium binary (Debian package `chromium`; `make test` installs it)")
    return binary


def _run_chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"]
    cmd = [_chromium(), *flags, f"--user-data-dir={tmp / 'chromium-profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


def test_report_renders_in_chromium_with_every_incident(demo):
    findings, incidents = _store(demo)
    assert len(incidents) == 2 and len(findings) > 15
    url = (demo / "report.html").as_uri()
    dom = _run_chromium(demo, "--dump-dom", url).stdout
    page = _Page(dom)
    for inc in incidents:
        assert inc["host"]["name"] in page.all_text
        for name in inc["stagewatch"]["incident"]["files"]:
            assert name in page.all_text, name
        assert f'id="inc-{inc["event"]["id"]}"' in dom
    tags = [tag for tag, _ in page.tags]
    assert tags.count("script") == 1 and "img" not in tags  # the hostile names stayed text in the browser too
    assert HOSTILE_NAME in page.all_text
    # built by the inline script: it ran, and saw every findings row
    assert 'id="findings-filter"' in dom
    assert f"{len(findings)} of {len(findings)} findings shown" in page.all_text
    shot = demo / "report.png"
    _run_chromium(demo, f"--screenshot={shot}", "--window-size=1400,1800", url)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 30_000
    assert struct.unpack(">II", png[16:24]) == (1400, 1800)


def test_report_is_self_contained(demo):
    text = (demo / "report.html").read_text(encoding="utf-8")
    page = _Page(text)
    tags = {tag for tag, _ in page.tags}
    assert not tags & {"link", "img", "iframe", "object", "embed", "base", "form", "video", "audio"}
    for tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "action", "srcset", "poster"):
            value = attrs.get(name) or ""
            assert "://" not in value and not value.startswith("//"), (tag, name, value)
            if name == "href" and name in attrs:
                assert value.startswith("#"), (tag, value)
    style = re.search(r"<style>(.*?)</style>", text, re.S)
    assert style and "url(" not in style[1] and "@import" not in style[1]
    # the only http:// in the file is attacker data, shown as text
    assert "http://evil.example/" in page.all_text
    assert all("http" not in str(v) for _, attrs in page.tags for v in attrs.values())


def test_hostile_values_are_escaped(demo):
    text = (demo / "report.html").read_text(encoding="utf-8")
    assert HOSTILE_NAME not in text and "<img" not in text and "<svg/" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.gz" in text
    page = _Page(text)
    assert [tag for tag, _ in page.tags].count("script") == 1 and page.scripts == [SCRIPT]
    assert HOSTILE_NAME in page.all_text  # the analyst still reads the name as it was sent
    assert f"{HOSTILE_HOST[:24]}" in page.all_text  # the destinations plot's legend, in the SVG
    assert not any(k.startswith("on") for _, attrs in page.tags for k in attrs)


def _report_ids(path: Path) -> tuple[set[str], set[str]]:
    text = path.read_text(encoding="utf-8")
    return set(re.findall(r'<tr id="f-([0-9a-f-]{36})"', text)), set(re.findall(r'id="inc-([0-9a-f-]{36})"', text))


def test_since_keeps_only_what_was_seen_after(demo, tmp_path):
    findings, incidents = _store(demo)
    out = tmp_path / "since.html"
    assert cli_main(["-q", "report", "--output", str(out), "--since", SINCE, "--db", str(demo / "sw.db")]) == 0
    cut = ts_of({"@timestamp": SINCE + "Z"})
    shown, shown_incidents = _report_ids(out)
    assert shown == {f["event"]["id"] for f in findings if ts_of(f) >= cut}
    assert shown and len(shown) < len(findings)
    assert shown_incidents == set() and all(ts_of(i) < cut for i in incidents)  # both begin with the staging
    everything, all_incidents = _report_ids(demo / "report.html")
    assert everything == {f["event"]["id"] for f in findings}
    assert all_incidents == {i["event"]["id"] for i in incidents}


def test_empty_store_says_so(tmp_path):
    out = tmp_path / "empty.html"
    FindingStore(str(tmp_path / "new.db")).close()  # a store that exists and holds nothing
    assert cli_main(["-q", "report", "--output", str(out), "--db", str(tmp_path / "new.db")]) == 0
    text = out.read_text(encoding="utf-8")
    assert "The store holds no findings, host findings or incidents" in text
    assert "<table" not in text and text.rstrip().endswith("</html>")


def test_a_since_that_leaves_nothing_says_what_the_store_holds(demo, tmp_path):
    findings, incidents = _store(demo)
    with FindingStore(str(demo / "sw.db")) as store:
        host_findings = store.host_finding_records()
    out = tmp_path / "later.html"
    db = str(demo / "sw.db")
    assert cli_main(["-q", "report", "--output", str(out), "--since", "2030-01-01", "--db", db]) == 0
    page = out.read_text(encoding="utf-8")
    text = " ".join(_Page(page).all_text.split())
    assert "The store holds no findings" not in text and "<table" not in page.split("<h2>Runs")[0]

    def at(records: list[dict], key: str = "@timestamp") -> str:
        newest = max(ts_of({"@timestamp": r[key] if key == "@timestamp" else r["event"][key]}) for r in records)
        return datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%d %H:%M:%SZ")

    want = (
        "No findings, host findings or incidents since 2030-01-01 00:00:00Z (--since 2030-01-01); the store holds "
        f"{len(findings)} findings, the newest at {at(findings)}; "
        f"{len(host_findings)} host findings, the newest at {at(host_findings)}; "
        f"and {len(incidents)} incidents, the newest at {at(incidents, 'start')}."
    )
    assert want in text
    now = ts_of({"@timestamp": "2030-01-01T00:00:00Z"})
    with FindingStore(db) as store:
        data = report.collect(store, parse_since("7d", now), now, since_flag="7d")
    assert "No findings, host findings or incidents since 2029-12-25 00:00:00Z (--since 7d); the store holds" in (
        report.render(data)
    )


def test_bad_paths_are_one_line_errors(tmp_path, capsys):
    db = tmp_path / "sw.db"
    FindingStore(str(db)).close()
    missing = tmp_path / "no-such-dir" / "r.html"
    assert cli_main(["report", "--output", str(missing), "--db", str(db)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0] and "cannot write the report" in err[0]
    bad_db = tmp_path / "nowhere" / "sw.db"
    assert cli_main(["report", "--output", str(tmp_path / "r.html"), "--db", str(bad_db)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad_db) in err[0]
    assert not (tmp_path / "r.html").exists() and not missing.parent.exists()


def _explain(demo: Path, ident: str, capsys) -> tuple[int, str, str]:
    rc = cli_main(["explain", ident, "--db", str(demo / "sw.db")])
    got = capsys.readouterr()
    return rc, got.out, got.err


def test_explain_incident_prints_the_chain_in_order(demo, capsys):
    _, incidents = _store(demo)
    inc = next(i for i in incidents if i["host"]["name"].startswith("WS-09"))
    rc, out, _ = _explain(demo, inc["event"]["id"][:8], capsys)  # a prefix is enough when unambiguous
    assert rc == 0
    assert inc["event"]["id"] in out and inc["host"]["name"] in out and "score 100" in out
    for reason in inc["stagewatch"]["incident"]["reasons"]:
        assert reason in out
    for ev in inc["stagewatch"]["incident"]["evidence"]:
        assert ev["id"] in out
    chain = out[out.index("chain: process -> staged file -> transfer") :]
    evidence = inc["stagewatch"]["incident"]["evidence"]
    rule, staged, network = (
        next(e["id"] for e in evidence if e["kind"] == k) for k in ("host_rule", "staged_file", "network")
    )
    marks = ["── process: ", rule, "── staged file\n", staged, "── transfer\n", network]
    assert [chain.index(m) for m in marks] == sorted(chain.index(m) for m in marks)


def test_explain_finding_names_its_reasons_incident_and_twin(demo, capsys):
    findings, incidents = _store(demo)
    staged = next(f for f in findings if f["file"].get("name") == "stage_df00_lib.zip" and "path" in f["file"])
    twin = next(f for f in findings if f["file"]["hash"] == staged["file"]["hash"] and f is not staged)
    rc, out, _ = _explain(demo, staged["event"]["id"], capsys)
    assert rc == 0
    assert f"alert finding {staged['event']['id']}  severity {staged['event']['severity']}" in out
    assert "staging_path" in out and "staging folder" in out and staged["file"]["path"] in out
    cited = {i["event"]["id"]: {e["id"] for e in i["stagewatch"]["incident"]["evidence"]} for i in incidents}
    owner = next(i for i, refs in cited.items() if staged["event"]["id"] in refs)
    assert f"incident {owner}" in out
    assert out.index("the same member elsewhere") < out.index(twin["event"]["id"], out.index("the same member"))


def test_explain_hostile_finding_prints_the_name_as_text(demo, capsys):
    findings, _ = _store(demo)
    hostile = next(f for f in findings if f["file"].get("name") == HOSTILE_NAME)
    assert hostile["event"]["kind"] == "alert"
    rc, out, _ = _explain(demo, hostile["event"]["id"], capsys)
    assert rc == 0 and HOSTILE_NAME in out and "no incident joins it" in out


def test_explain_unknown_or_short_id_is_a_one_line_error(demo, capsys):
    for ident in ("0000000000", "abc", hashlib.sha256(b"x").hexdigest()):
        rc, out, err = _explain(demo, ident, capsys)
        assert rc == 1 and out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and ident in lines[0], err


def test_explain_host_finding(demo, capsys):
    with FindingStore(str(demo / "sw.db")) as store:
        hit = store.host_finding_records()[0]
    rc, out, _ = _explain(demo, hit["event"]["id"], capsys)
    assert rc == 0 and f"host finding {hit['event']['id']}" in out and hit["rule"]["name"] in out
    assert json.dumps(hit["stagewatch"]["reasons"][0])[1:-1] in out
