"""`stagewatch report --html FILE`: the store's findings and incidents as one self-contained HTML page.

Styles, the filter script and the SVG plots are inline: the file opens offline, in a case folder
or an air-gapped SOC, and fetches nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sensor.errors import InputError
from sensor.flow.direction import endpoint_text
from sensor.output.chain import Chain, Link, evidence_of, host_key, incident_chain, record_line, ts_of
from sensor.output.report_assets import CSS, SCRIPT
from sensor.output.report_html import (
    anchor,
    chain_html,
    e,
    findings_table,
    host_findings_table,
    incident_card,
    runs_table,
    score,
    size,
    when,
)
from sensor.output.svgplot import TimelineRow, stacked_bars, timeline
from sensor.store.db import FindingStore

RUNS_SHOWN = 20  # a live sensor records a run per start: the latest ones say enough
TIMELINE_ROWS = 60


@dataclass
class ReportData:
    """What the report shows, read from the store in one go."""

    where: str
    since: float | None
    generated: float
    findings: list[dict[str, Any]]
    incidents: list[dict[str, Any]]
    host_findings: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    resolved: dict[str, tuple[str, dict[str, Any]]]  # evidence id -> (table, record)
    # When the window holds nothing: what the whole store holds, {table: (rows, newest time)}, so the page can
    # say that the filter emptied it; and the --since text as given (7d), to name the filter.
    stored: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    since_flag: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.findings or self.incidents or self.host_findings)


def collect(store: FindingStore, since: float | None, now: float, since_flag: str | None = None) -> ReportData:
    """Findings, host findings and incidents at or after `since`, and every record their evidence names.

    `since_flag` is the --since text as given (7d, an ISO time): an empty page names it.
    """
    findings = list(store.findings(since=since))
    incidents = store.incident_records(since=since)
    host_findings = store.host_finding_records_since(since)
    resolved = {str(r["event"]["id"]): ("findings", r) for r in findings}
    resolved |= {str(r["event"]["id"]): ("host_findings", r) for r in host_findings}
    # An incident inside the window may cite evidence seen before it began.
    missing = {str(x.get("id")) for i in incidents for x in evidence_of(i)} - resolved.keys()
    resolved |= store.records_by_id(missing)
    empty = not (findings or incidents or host_findings)
    stored = store.extent() if empty and since is not None else {}
    runs = store.runs()[-RUNS_SHOWN:]
    return ReportData(store.where, since, now, findings, incidents, host_findings, runs, resolved, stored, since_flag)


@dataclass
class HostView:
    """One host: its incidents' chains, and the evidence on it that no incident took."""

    name: str
    ips: set[str] = field(default_factory=set)
    chains: list[Chain] = field(default_factory=list)
    loose: dict[str, list[Link]] = field(default_factory=lambda: defaultdict(list))
    events: int = 0  # findings of kind `event` left out of the view (they are in the findings table)
    address_only: bool = False  # network findings from an address no host name was learned for


def _home_ip(r: dict[str, Any]) -> str:
    """The home_net side of a network finding: the sender of outbound data, else the receiver."""
    direction = r.get("network", {}).get("direction")
    side = r.get("destination") if direction == "inbound" else r.get("source")
    return str((side or {}).get("ip", "?"))


def host_views(data: ReportData, chains: list[Chain]) -> list[HostView]:
    """Group incidents and the remaining alerts by host; network findings by their home-side address."""
    views: dict[str, HostView] = {}
    by_ip: dict[str, str] = {}

    def view(name: str | None) -> HostView:
        key = host_key(name) or "(no host)"
        v = views.setdefault(key, HostView(name or "(no host)"))
        if name and len(name) > len(v.name):
            v.name = name  # the fullest spelling: WS-09.corp.example over WS-09
        return v

    for r in [c.incident for c in chains] + data.host_findings:
        for ip in r.get("host", {}).get("ip", []):
            by_ip.setdefault(str(ip), host_key(r["host"].get("name")) or str(ip))
            view(r["host"].get("name")).ips.add(str(ip))
    cited = {str(x.get("id")) for c in chains for x in evidence_of(c.incident)}
    for c in chains:
        view(c.incident.get("host", {}).get("name")).chains.append(c)
    for r in data.host_findings:
        if str(r["event"]["id"]) not in cited:
            link = Link(
                "process", "host_rule", str(r["event"]["id"]), r["@timestamp"], record_line("host_findings", r), r
            )
            view(r.get("host", {}).get("name")).loose["process"].append(link)
    for r in data.findings:
        ref = str(r["event"]["id"])
        if ref in cited:
            continue
        network = "ip" in r.get("source", {})
        ip = _home_ip(r) if network else ""
        if not network:
            v = view(r.get("host", {}).get("name"))
        elif by_ip.get(ip) in views:
            v = views[by_ip[ip]]
        else:
            v = view(ip)
            v.address_only = True
        if r["event"].get("kind") != "alert":
            v.events += 1
            continue
        stage, kind = ("transfer", "network") if network else ("staged", "staged_file")
        v.loose[stage].append(Link(stage, kind, ref, r["@timestamp"], record_line("findings", r), r))

    def rank(v: HostView) -> tuple[int, int, str]:
        top = max((c.incident["stagewatch"]["incident"]["score"] for c in v.chains), default=0)
        return (-top, -sum(len(x) for x in v.loose.values()), v.name)

    ranked = sorted(views.values(), key=rank)
    return [v for v in ranked if v.chains or any(v.loose.values()) or v.events]


def _timeline(chains: list[Chain]) -> str:
    rows = []
    for c in chains[:TIMELINE_ROWS]:
        r = c.incident
        links = [x for stage in c.links.values() for x in stage]
        marks = [(ts_of({"@timestamp": x.ts}), x.kind, f"{x.kind} {when(x.ts)}: {x.text}") for x in links]
        start, end = ts_of({"@timestamp": r["event"]["start"]}), ts_of({"@timestamp": r["event"]["end"]})
        label = f"{r.get('host', {}).get('name', '?')} ({r['stagewatch']['incident']['score']})"
        points = int(r["stagewatch"]["incident"]["score"])
        rows.append(TimelineRow(label, start, end, points, anchor("incidents", r["event"]["id"]), marks))
    return timeline(rows)


def _plots(data: ReportData) -> str:
    formats = [(ts_of(r), str(r.get("stagewatch", {}).get("format", "?")), 1.0) for r in data.findings]
    dests = []
    for r in data.findings:
        if r.get("network", {}).get("direction") == "outbound":
            dst = r.get("destination", {})
            name = r.get("url", {}).get("domain") or dst.get("ip", "?")
            dests.append((ts_of(r), endpoint_text(name, dst.get("port", "?")), float(r.get("file", {}).get("size", 0))))
    out = ['<div class="box"><h3>Formats over time (findings)</h3>', stacked_bars(formats, "formats", "findings")]
    out.append("</div><div class=box><h3>Outbound destinations over time (member bytes)</h3>")
    out.append(stacked_bars(dests, "destinations", "bytes") or '<p class="muted">No outbound network findings.</p>')
    return "".join(out) + "</div>"


def _host_section(views: list[HostView], anchored: dict[str, str]) -> str:
    out = []
    for v in views:
        note = ", ".join(sorted(v.ips))
        if v.address_only:
            note = "address only: no host name is known for it (correlate --host-map)"
        out.append(f'<section class="box"><h3>{e(v.name)} <span class="muted">{e(note)}</span></h3>')
        for c in v.chains:
            inc = c.incident["stagewatch"]["incident"]
            ev = c.incident["event"]
            link = f'<a href="#{e(anchor("incidents", ev["id"]))}">incident {e(ev["id"][:8])}</a>'
            out.append(f"<div>{score(inc['score'])} {link} {e(when(ev['start']))}</div>")
            out.append(chain_html(c.process, c.links, anchored))
        if any(v.loose.values()):
            out.append('<div class="muted">alerts on this host that no incident joined:</div>')
            out.append(chain_html("", v.loose, anchored))
        if v.events:
            out.append(f'<div class="muted">{v.events} low-severity events: see Findings.</div>')
        out.append("</section>")
    return "".join(out)


def _cards(data: ReportData, views: list[HostView]) -> str:
    alerts = sum(1 for r in data.findings if r["event"].get("kind") == "alert")
    outbound = [r for r in data.findings if r.get("network", {}).get("direction") == "outbound"]
    out_bytes = sum(int(r.get("file", {}).get("size", 0)) for r in outbound)
    cards = [
        (len(data.incidents), "incidents"),
        (alerts, "alerts"),
        (len(data.findings) - alerts, "events"),
        (len(data.host_findings), "host findings"),
        (sum(1 for v in views if not v.address_only), "hosts"),
        (size(out_bytes), "sent out"),
    ]
    return (
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{e(n)}</b><span>{e(t)}</span></div>' for n, t in cards)
        + "</div>"
    )


def _campaign_of(incident: dict[str, Any]) -> str:
    """The campaign an incident belongs to: the least id among it and its related incidents."""
    return min([str(incident["event"]["id"]), *incident["stagewatch"]["incident"].get("related", [])])


def _campaigns(incidents: list[dict[str, Any]]) -> str:
    """Incidents on several hosts linked by a shared member: one line per campaign."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i in incidents:
        if i["stagewatch"]["incident"].get("related"):
            groups[_campaign_of(i)].append(i)
    if not groups:
        return ""
    rows = []
    for members in groups.values():
        members.sort(key=ts_of)
        hops = " &rarr; ".join(
            f'<a href="#{e(anchor("incidents", m["event"]["id"]))}">{e(m.get("host", {}).get("name", "?"))}</a>'
            for m in members
        )
        shared = sorted({x for m in members for x in m["stagewatch"]["incident"].get("related_sha256", [])})
        rows.append(f'<li>{hops} <span class="muted">sharing sha256 {e(", ".join(x[:16] for x in shared))}</span></li>')
    return f"<h2>Campaigns: incidents on several hosts sharing a member</h2><ul>{''.join(rows)}</ul>"


def render(data: ReportData) -> str:
    """The whole page as one string."""
    window = f"since {_iso(data.since)}" if data.since is not None else "everything stored"
    meta = f"store {e(data.where)} &middot; {e(window)} &middot; generated {e(_iso(data.generated))}"
    body: list[str] = []
    if data.empty:
        body.append(f'<p class="empty">{e(empty_note(data))}</p>')
    else:
        chains = [incident_chain(i, data.resolved) for i in data.incidents]
        anchored = {ref: anchor(t, ref) for ref, (t, _) in data.resolved.items() if t in ("findings", "host_findings")}
        cited: dict[str, list[str]] = defaultdict(list)
        for i in data.incidents:
            for x in evidence_of(i):
                cited[str(x.get("id"))].append(str(i["event"]["id"]))
        views = host_views(data, chains)
        body.append(_cards(data, views))
        body.append("<h2>Incident timeline</h2>")
        body.append(_timeline(chains) or '<p class="muted">No incidents: run <code>stagewatch correlate</code>.</p>')
        body.append("<h2>Hosts: process &rarr; staged file &rarr; transfer</h2>" + _host_section(views, anchored))
        body.append("<h2>Over time</h2>" + _plots(data))
        if chains:
            body.append(_campaigns(data.incidents))
            together = sorted(
                chains, key=lambda c: (_campaign_of(c.incident), ts_of(c.incident))
            )  # a campaign's cards side by side
            body.append("<h2>Incidents</h2>" + "".join(incident_card(c, anchored) for c in together))
        body.append(f'<h2>Findings ({len(data.findings)})</h2><div id="findings-tools"></div>')
        body.append(findings_table(data.findings, cited))
        if data.host_findings:
            body.append(f"<h2>Host findings ({len(data.host_findings)})</h2>")
            body.append(host_findings_table(data.host_findings, cited))
    if data.runs:
        body.append(f"<h2>Runs (latest {len(data.runs)})</h2>" + runs_table(data.runs))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>stagewatch report</title><style>{CSS}</style></head><body>"
        f'<header><h1>stagewatch report</h1><div class="meta">{meta}</div>'
        f"</header><main>{''.join(body)}</main><script>{SCRIPT}</script></body></html>\n"
    )


_NOUNS = {
    "findings": ("finding", "findings"),
    "host_findings": ("host finding", "host findings"),
    "incidents": ("incident", "incidents"),
}


def empty_note(data: ReportData) -> str:
    """Why the page is empty: the store holds nothing, or the --since window left out everything it holds."""
    held = [(table, n, newest) for table, (n, newest) in data.stored.items() if n]
    if data.since is None or not held:
        window = f"since {_iso(data.since)}" if data.since is not None else "everything stored"
        return f"The store holds no findings, host findings or incidents ({window})."
    flag = f" (--since {data.since_flag})" if data.since_flag else ""
    parts = []
    for table, n, newest in held:
        noun = _NOUNS.get(table, (table, table))[n != 1]
        parts.append(f"{n} {noun}" + (f", the newest at {_iso(newest)}" if newest is not None else ""))
    holds = parts[0] if len(parts) == 1 else "; ".join(parts[:-1]) + "; and " + parts[-1]
    return f"No findings, host findings or incidents since {_iso(data.since)}{flag}; the store holds {holds}."


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def write_report(path: str | Path, text: str) -> None:
    """Write the page next to its final name, then rename: a reader never sees half a report."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".stagewatch-report-", suffix=".html", dir=target.parent or Path("."))
    except OSError as exc:
        raise InputError(str(path), f"cannot write the report: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp's 0600 would differ from any other file the CLI writes
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(str(path), f"cannot write the report: {exc.strerror or exc}") from None
