"""HTML fragments of the report: evidence chains, incident cards and the findings tables.

Every value goes through `e()` (html.escape): file names, URLs and command lines come from
attackers' traffic and files, and must never become markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from sensor.output.chain import (
    STAGE_TITLES,
    STAGES,
    Chain,
    Link,
    finding_where,
    flatten,
    host_finding_line,
    short_ref,
)
from sensor.output.reasons import explain_reason


def e(value: object) -> str:
    """Escape any value for HTML text and attribute values."""
    return escape("" if value is None else str(value), quote=True)


def when(iso: object) -> str:
    """`2025-11-22T08:25:40.400000Z` as `2025-11-22 08:25:40Z` (seconds are what an analyst compares)."""
    text = str(iso or "")
    return text[:19].replace("T", " ") + ("Z" if text.endswith("Z") else "")


def size(n: object) -> str:
    if not isinstance(n, int):
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return "?"


def score(value: object) -> str:
    n = value if isinstance(value, int) else 0
    cls = "s-hi" if n >= 80 else "s-mid" if n >= 50 else "s-lo"
    return f'<span class="score {cls}">{e(value)}</span>'


def reason_chips(codes: Iterable[str]) -> str:
    """Reason codes as chips, each with its meaning as a tooltip."""
    return "".join(f'<span class="chip" title="{e(explain_reason(c))}">{e(c)}</span>' for c in codes)


def reason_list(codes: Iterable[str]) -> str:
    items = "".join(f"<li><code>{e(c)}</code> {e(explain_reason(c))}</li>" for c in codes)
    return f'<ul class="reasons">{items}</ul>' if items else ""


def tuning_chips(sw: Mapping[str, Any]) -> str:
    """`stagewatch.suppressed` and `stagewatch.threshold` as chips: why an alert was turned into an event."""
    out = []
    if sup := sw.get("suppressed"):
        tip = f"{sup.get('reason', '')} ({sup.get('author', '?')})"
        out.append(f'<span class="chip" title="{e(tip)}">suppressed: {e(sup.get("name"))}</span>')
    if th := sw.get("threshold"):
        out.append(f'<span class="chip">threshold: {e(th.get("name"))} x{e(th.get("count", "?"))}</span>')
    return "".join(out)


def anchor(table: str, ref: str) -> str:
    """The element id of a record's row or card in the report."""
    return {"findings": "f-", "host_findings": "h-", "incidents": "inc-"}.get(table, "x-") + ref


def link_box(link: Link, anchored: Mapping[str, str]) -> str:
    """One piece of evidence on a chain: kind, id (linked when the report shows that record), time, what."""
    ref = e(short_ref(link.ref))
    target = anchored.get(link.ref)
    ref_html = (
        f'<a href="#{e(target)}" title="{e(link.ref)}">{ref}</a>'
        if target
        else f'<span title="{e(link.ref)}">{ref}</span>'
    )
    return (
        f'<div class="ev k-{e(link.kind)}"><b>{e(link.kind)}</b> {ref_html} <span class="t">{e(when(link.ts))}</span>'
        f"<div>{e(link.text)}</div></div>"
    )


def chain_html(process: str, links: Mapping[str, Sequence[Link]], anchored: Mapping[str, str]) -> str:
    """Three columns, process -> staged file -> transfer; an empty stage says so."""
    cols = []
    for stage in STAGES:
        head = f'<div class="proc">{e(process)}</div>' if stage == "process" and process else ""
        boxes = "".join(link_box(x, anchored) for x in links.get(stage, ())) or '<div class="muted">none seen</div>'
        cols.append(f'<div class="stage"><h4>{e(STAGE_TITLES[stage])}</h4>{head}{boxes}</div>')
    return '<div class="chain">' + '<div class="arrow">&rarr;</div>'.join(cols) + "</div>"


def incident_card(chain: Chain, anchored: Mapping[str, str]) -> str:
    """An incident: host, time, score and each reason, process, files, destinations, chain and evidence list."""
    r = chain.incident
    inc = r.get("stagewatch", {}).get("incident", {})
    ev = r.get("event", {})
    host = r.get("host", {})
    proc = r.get("process", {})
    facts = [
        ("id", f"<code>{e(ev.get('id'))}</code>"),
        ("host", f'{e(host.get("name", "?"))} <span class="muted">{e(", ".join(host.get("ip", [])))}</span>'),
        ("host named by", e(inc.get("host_named_by", ""))),
        ("time", f"{e(when(ev.get('start')))} &ndash; {e(when(ev.get('end')))}"),
        ("evidence kinds", reason_chips(inc.get("kinds", []))),
        ("techniques", e(", ".join(r.get("threat", {}).get("technique", {}).get("id", [])))),
        ("command line", f"<code>{e(proc.get('command_line', ''))}</code>"),
        ("user", e(r.get("user", {}).get("name", ""))),
        ("files", "<br>".join(f"<code>{e(f)}</code>" for f in inc.get("files", []))),
        ("destinations", e(", ".join(inc.get("destinations", [])))),
        ("related incidents", _related(inc)),
    ]
    dl = "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in facts if v and v != "<code></code>")
    rows = "".join(
        f"<tr><td>{e(x.get('kind'))}</td><td class=mono>{e(x.get('id'))}</td><td>{e(when(x.get('@timestamp')))}</td>"
        f"<td>{e(x.get('summary'))}</td><td class=mono>{e(x.get('sha256', ''))}</td><td class=mono>"
        f"{e(x.get('source', ''))}</td></tr>"
        for x in inc.get("evidence", [])
    )
    return (
        f'<section class="box" id="{e(anchor("incidents", str(ev.get("id", ""))))}">'
        f"<h3>{score(inc.get('score'))} {e(host.get('name', '?'))}: {e(chain.process)}</h3>"
        f"<dl>{dl}</dl><b>score reasons</b>{reason_list(inc.get('reasons', []))}"
        f"{chain_html(chain.process, chain.links, anchored)}"
        f"<details><summary>evidence list ({len(inc.get('evidence', []))})</summary><table><thead><tr><th>kind</th>"
        f"<th>id</th><th>time</th><th>summary</th><th>sha256</th><th>source</th></tr></thead><tbody>{rows}"
        f"</tbody></table></details></section>"
    )


def _related(inc: Mapping[str, Any]) -> str:
    """Links to the incidents of the same campaign (another host, a shared member), with the shared hashes."""
    ids = inc.get("related", [])
    if not ids:
        return ""
    links = " ".join(f'<a href="#{e(anchor("incidents", i))}">{e(i[:8])}</a>' for i in ids)
    shared = ", ".join(x[:16] for x in inc.get("related_sha256", []))
    return f'{links} <span class="muted">one campaign: they share sha256 {e(shared)}</span>'


def evidence_details(record: Mapping[str, Any]) -> str:
    dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in flatten(dict(record)))
    return f"<details><summary>evidence</summary><dl>{dl}</dl></details>"


def _incident_links(ref: str, cited: Mapping[str, Sequence[str]]) -> str:
    return " ".join(f'<a href="#{e(anchor("incidents", i))}">{e(i[:8])}</a>' for i in cited.get(ref, ()))


def findings_table(records: Sequence[Mapping[str, Any]], cited: Mapping[str, Sequence[str]]) -> str:
    """Every finding: time, kind and severity, format, rule, where, name, size, reasons, incidents, evidence."""
    head = "".join(
        f"<th>{h}</th>"
        for h in ("time", "kind", "sev", "format", "rule", "where", "name", "size", "reasons", "incident", "evidence")
    )
    rows = []
    for r in records:
        ev, sw, f = r.get("event", {}), r.get("stagewatch", {}), r.get("file", {})
        ref = str(ev.get("id", ""))
        kind = str(ev.get("kind", ""))
        fmt = str(sw.get("format", "?")) + (" +" + "+".join(sw["encoding"]) if sw.get("encoding") else "")
        rows.append(
            f'<tr id="{e(anchor("findings", ref))}" data-kind="{e(kind)}"><td>{e(when(r.get("@timestamp")))}</td>'
            f'<td class="kind-{e(kind)}">{e(kind)}</td><td class="num">{e(ev.get("severity"))}</td><td>{e(fmt)}</td>'
            f"<td>{e(r.get('rule', {}).get('name'))}</td><td class=mono>{e(finding_where(r))}</td>"
            f"<td class=mono>{e(f.get('name', ''))}</td><td class=num>{e(size(f.get('size')))}</td>"
            f"<td>{reason_chips(sw.get('reasons', []))}{tuning_chips(sw)}</td><td>{_incident_links(ref, cited)}</td>"
            f"<td>{evidence_details(r)}</td></tr>"
        )
    return f'<table id="findings-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def host_findings_table(records: Sequence[Mapping[str, Any]], cited: Mapping[str, Sequence[str]]) -> str:
    """Every host-rule hit: time, host, severity, rule and what it saw, reasons, incidents, evidence."""
    head = "".join(f"<th>{h}</th>" for h in ("time", "host", "sev", "rule", "what", "reasons", "incident", "evidence"))
    rows = []
    for r in records:
        ev = r.get("event", {})
        ref = str(ev.get("id", ""))
        rows.append(
            f'<tr id="{e(anchor("host_findings", ref))}"><td>{e(when(r.get("@timestamp")))}</td>'
            f"<td>{e(r.get('host', {}).get('name', '?'))}</td><td class=num>{e(ev.get('severity'))}</td>"
            f"<td>{e(r.get('rule', {}).get('name'))}</td><td class=mono>{e(host_finding_line(r))}</td>"
            f"<td>{reason_chips(r.get('stagewatch', {}).get('reasons', []))}</td><td>{_incident_links(ref, cited)}</td>"
            f"<td>{evidence_details(r)}</td></tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def runs_table(runs: Sequence[Mapping[str, Any]]) -> str:
    """The store's runs: when, which sensor, status, and what each processed."""
    rows = []
    for run in runs:
        stats = run.get("stats") or {}
        argv = " ".join(str(a) for a in run.get("argv") or [])
        rows.append(
            f"<tr><td class=num>{e(run.get('id'))}</td><td>{e(_epoch(run.get('started')))}</td>"
            f"<td>{e(run.get('observer'))}</td><td>{e(run.get('status'))}</td><td class=num>{e(stats.get('files', 0))}"
            f"</td><td class=num>{e(stats.get('packets', 0))}</td><td class=num>{e(stats.get('findings', 0))}</td>"
            f"<td class=mono>{e(argv)}</td></tr>"
        )
    cols = ("run", "started", "observer", "status", "files", "packets", "findings", "command")
    head = "".join(f"<th>{h}</th>" for h in cols)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _epoch(ts: object) -> str:
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ts else ""
