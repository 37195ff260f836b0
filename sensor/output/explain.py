"""`stagewatch explain ID`: one stored record on the terminal, with its reasons, its evidence chain and every field.

Any id stagewatch prints resolves, whole or by a prefix of MIN_PREFIX+ characters: a finding's or host finding's
event.id, an incident id, a flow id, a host event's key, and the evidence ids an incident cites (a host event's
`source#record#action`). Each view ends with "other fields": whatever the record holds that the lines above
did not show, so nothing is hidden. `explain_record` gives the same as one JSON object.

Labels are rich `Text` objects, never markup strings: names from captured traffic may hold `[bold]`
or escape sequences and must print as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text
from rich.tree import Tree

from sensor.errors import InputError
from sensor.model import HostEvent
from sensor.output.chain import (
    STAGE_TITLES,
    STAGES,
    endpoint,
    evidence_of,
    finding_what,
    finding_where,
    flatten,
    host_event_line,
    host_event_record,
    host_finding_line,
    incident_chain,
    record_line,
    split_host_event_ref,
    ts_of,
)
from sensor.output.reasons import explain_reason
from sensor.store.db import FindingStore

MIN_PREFIX = 8  # shorter prefixes of a UUID match too much to be worth guessing
TABLES = ("findings", "incidents", "host_findings", "flows", "host_events", "objects")

Record = dict[str, Any]


# -- finding the record -----------------------------------------------------------------------------------------


def _host_events_by_ref(store: FindingStore, ref: str) -> list[tuple[str, HostEvent]]:
    parts = split_host_event_ref(ref)
    return store.host_events_at(*parts) if parts else []


def resolve(store: FindingStore, ident: str) -> tuple[str, str, Record]:
    """(table, full id, record) for an id, a host event's evidence id, or an unambiguous prefix of at least
    MIN_PREFIX characters."""
    ident = ident.strip()
    exact = store.records_by_id([ident]).get(ident)
    if exact and exact[0] in TABLES:
        return exact[0], ident, exact[1]
    if events := _host_events_by_ref(store, ident):
        key, event = events[0]  # several events of one record and action: the first; the view lists the rest
        return "host_events", key, host_event_record(key, event)
    if len(ident) < MIN_PREFIX:
        raise InputError(ident, f"no record has this id (give it whole or its first {MIN_PREFIX}+ chars)")
    found = [x for x in store.match_id(ident) if x[0] in TABLES]
    found += [("host_events", key, host_event_record(key, e)) for key, e in store.match_host_events(ident)]
    if not found:
        raise InputError(ident, "no finding, host finding, host event, flow or incident has this id or starts with it")
    if len(found) > 1:
        ids = ", ".join(f"{t} {i}" for t, i, _ in found[:3])
        raise InputError(ident, f"ambiguous: {len(found)} ids start with it ({ids}...); give more of the id")
    return found[0]


def resolve_evidence(store: FindingStore, incident: Mapping[str, Any]) -> dict[str, tuple[str, Record]]:
    """The stored records an incident's evidence names: {evidence id: (table, record)}; gone ones left out."""
    evidence = evidence_of(incident)
    out = store.records_by_id(str(x.get("id")) for x in evidence)
    for x in evidence:
        ref = str(x.get("id"))
        if ref not in out and (events := _host_events_by_ref(store, ref)):
            out[ref] = ("host_events", host_event_record(*events[0]))
    return out


def explain_record(store: FindingStore, ident: str) -> dict[str, Any]:
    """What `explain` shows, as one JSON object (`explain ID --jsonl -`).

    {"table", "id", "record": the stored record} and, by table: an incident's "evidence" (each with its stored
    record, null when the store no longer holds it); a finding's "incidents" citing it and "same_sha256" (the
    other findings of the same member); a host finding's "host_event" and "incidents"; a host event's
    "host_findings" and "incidents"; a flow's "findings" and "incidents".
    """
    table, full, record = resolve(store, ident)
    out: dict[str, Any] = {"table": table, "id": full, "record": record}
    if table == "incidents":
        resolved = resolve_evidence(store, record)
        out["evidence"] = []
        for x in evidence_of(record):
            found, stored = resolved.get(str(x.get("id")), (None, None))
            out["evidence"].append({"kind": x.get("kind"), "id": x.get("id"), "table": found, "record": stored})
    elif table == "findings":
        out["incidents"] = store.incidents_citing(full)
        out["same_sha256"] = _twins(store, record)
    elif table == "host_findings":
        flagged = store.host_event_flagged_by(full)
        out["host_event"] = host_event_record(*flagged) if flagged else None
        out["incidents"] = store.incidents_citing(full)
    elif table == "host_events":
        out["host_findings"] = store.host_findings_flagging(full)
        out["incidents"] = store.incidents_citing(str(record.get("stagewatch", {}).get("evidence_id", "")))
    else:
        out["findings"] = _flow_findings(store, record)
        out["incidents"] = store.incidents_citing(full)
    return out


def explain(store: FindingStore, ident: str) -> Tree:
    """The terminal view of one stored finding, host finding, host event, flow or incident."""
    table, full, record = resolve(store, ident)
    if table == "incidents":
        return incident_tree(store, record)
    if table == "host_findings":
        return host_finding_tree(store, record)
    if table == "host_events":
        return host_event_tree(store, record)
    if table == "flows":
        return flow_tree(store, record, full)
    if table == "objects":
        return object_tree(record, full)
    return finding_tree(store, record)


# -- shared pieces ----------------------------------------------------------------------------------------------


def _line(*parts: tuple[str, str] | str) -> Text:
    return Text.assemble(*parts)


def _get(record: Mapping[str, Any], dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _joined_list(value: Any) -> str | None:
    if isinstance(value, list):
        return ", ".join(str(x) for x in value) or None
    return None if value is None else str(value)


class _Shown:
    """The dotted keys the view has shown, so that "other fields" lists exactly the rest."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def fact(self, node: Tree, label: str, value: object, *keys: str) -> None:
        """A `label: value` line (left out when the value is empty); `keys` are the fields it shows."""
        self.keys.update(keys)
        if value is None or value == "" or value == []:
            return
        node.add(_line((f"{label}: ", "dim"), str(value)))

    def covers(self, key: str) -> bool:
        return key in self.keys or any(key.startswith(k + ".") for k in self.keys)

    def rest(self, tree: Tree, record: Mapping[str, Any]) -> None:
        """The final branch: every field of the record not shown above, as dotted keys."""
        left = [(k, v) for k, v in flatten(dict(record)) if not self.covers(k)]
        if left:
            branch = tree.add(Text("other fields", style="bold"))
            for key, value in left:
                branch.add(_line((f"{key}: ", "dim"), value))


def _reasons(tree: Tree, codes: list[str], title: str) -> None:
    branch = tree.add(Text(title, style="bold"))
    for code in codes:
        branch.add(_line((code, "cyan"), "  ", explain_reason(code)))
    if not codes:
        branch.add(Text("(none recorded)", style="dim"))


def _joined(store: FindingStore, tree: Tree, ref: str) -> None:
    incidents = store.incidents_citing(ref) if ref else []
    if not incidents:
        tree.add(Text("no incident joins it (run `stagewatch correlate` after the host telemetry is in)", style="dim"))
    for inc in incidents:
        incident_tree(store, inc, tree.add(Text("part of", style="bold")))


def _tuned(entry: dict[str, Any] | None) -> str | None:
    if not entry:
        return None
    extra = f" x{entry['count']}" if "count" in entry else ""
    why = f": {entry['reason']}" if entry.get("reason") else ""
    return f"{entry.get('name', '?')}{extra}{why}" + (f" ({entry['author']})" if entry.get("author") else "")


def bridge_text(r: Mapping[str, Any]) -> str | None:
    """Who logged the object when another sensor did: "zeek (uid C..., fuid F...) in LOG, its file FILE"."""
    b = r.get("stagewatch", {}).get("bridge")
    if not b:
        return None
    ids = r.get(b.get("sensor", ""), {})
    idtext = ", ".join(f"{k} {v}" for k, v in ids.items())
    text = f"{b.get('sensor', '?')}" + (f" ({idtext})" if idtext else "") + f" in {b.get('log', '?')}"
    return text + (f", its file {b['file']}" if b.get("file") else ", its bytes not kept")


def checksum_text(sw: Mapping[str, Any]) -> str | None:
    """`stagewatch.checksum`, and for a bad one which archive entries failed: "bad (2 of 5 entries failed
    their CRC: a.txt, b.bin)"."""
    value = sw.get("checksum")
    count = sw.get("checksum_failed_count")
    if value != "bad" or not count:
        return None if value is None else str(value)
    names = [str(n) for n in sw.get("checksum_failed", [])]
    more = count - len(names)
    which = (": " + ", ".join(names) + (f" and {more} more" if more > 0 else "")) if names else ""
    entries = "entry" if sw.get("checksum_checked") == 1 else "entries"
    verb = "failed its" if count == 1 else "failed their"
    return f"bad ({count} of {sw.get('checksum_checked', '?')} {entries} {verb} CRC{which})"


def _limits(value: Any) -> str | None:
    if not value:
        return None
    return ", ".join(f"{x.get('limit', '?')}={x.get('value', '?')}" if isinstance(x, dict) else str(x) for x in value)


def _twins(store: FindingStore, r: Mapping[str, Any]) -> list[Record]:
    sha = str(r.get("file", {}).get("hash", {}).get("sha256", ""))
    me = r.get("event", {}).get("id")
    return [x for x in store.findings_with_sha256(sha) if x.get("event", {}).get("id") != me] if sha else []


def _flow_findings(store: FindingStore, r: Mapping[str, Any]) -> list[Record]:
    cid = r.get("network", {}).get("community_id")
    if not cid:
        return []
    ev = r.get("event", {})
    start, end = ts_of({"@timestamp": ev.get("start")}), ts_of({"@timestamp": ev.get("end")})
    return store.findings_in_flow(str(cid), start, end)


# -- the views ----------------------------------------------------------------------------------------------------


def incident_tree(store: FindingStore, r: Record, tree: Tree | None = None) -> Tree:
    """An incident: host, time, score and reasons, process, then process -> staged file -> transfer with ids."""
    inc = r.get("stagewatch", {}).get("incident", {})
    ev, host = r.get("event", {}), r.get("host", {})
    head = _line(
        ("incident ", "bold"),
        (str(ev.get("id", "?")), "bold"),
        "  score ",
        (str(inc.get("score", "?")), "bold red"),
        f"  on {host.get('name', '?')} {', '.join(host.get('ip', []))}",
    )
    node = tree.add(head) if tree is not None else Tree(head)
    shown = _Shown()
    shown.keys.update(("event.id", "host.name", "host.ip", "stagewatch.incident.score"))
    shown.fact(node, "time", f"{ev.get('start', '?')} .. {ev.get('end', '?')}", "event.start", "event.end")
    techniques = ", ".join(r.get("threat", {}).get("technique", {}).get("id", []))
    kinds = f"{', '.join(inc.get('kinds', []))}; techniques: {techniques}"
    shown.fact(node, "evidence kinds", kinds, "stagewatch.incident.kinds", "threat.technique.id")
    shown.fact(node, "command line", r.get("process", {}).get("command_line"), "process.command_line")
    shown.fact(node, "user", r.get("user", {}).get("name"), "user.name")
    _reasons(node, list(inc.get("reasons", [])), "score reasons")
    shown.keys.add("stagewatch.incident.reasons")
    chain = incident_chain(r, resolve_evidence(store, r))
    shown.keys.update(("process.executable", "process.pid", "stagewatch.incident.evidence"))
    links = node.add(Text("chain: process -> staged file -> transfer", style="bold"))
    for stage in STAGES:
        title = STAGE_TITLES[stage] + (f": {chain.process}" if stage == "process" else "")
        branch = links.add(Text(title, style="bold magenta" if stage == "process" else "bold"))
        for x in chain.links[stage]:
            branch.add(_line((f"{x.kind} ", "yellow"), (x.ref, "cyan"), f"  {x.ts}\n", x.text))
        if not chain.links[stage]:
            branch.add(Text("none seen", style="dim"))
    shown.fact(node, "files", ", ".join(inc.get("files", [])), "stagewatch.incident.files")
    shown.fact(node, "destinations", ", ".join(inc.get("destinations", [])), "stagewatch.incident.destinations")
    if tree is None:  # nested under a finding, the incident's constant fields would only repeat
        shown.rest(node, r)
    return node


def finding_tree(store: FindingStore, r: Record) -> Tree:
    """A finding: what, where, when, the protocol's fields, severity and reasons, the decoding evidence, the
    incidents that joined it, the same member elsewhere, and every other field."""
    ev, sw, f = r.get("event", {}), r.get("stagewatch", {}), r.get("file", {})
    kind = str(ev.get("kind", "?"))
    style = "bold red" if kind == "alert" else "bold"
    severity = (str(ev.get("severity", "?")), "bold red")
    tree = Tree(_line((f"{kind} finding ", style), (str(ev.get("id", "?")), "bold"), "  severity ", severity))
    shown = _Shown()
    shown.keys.update(("event.id", "event.kind", "event.severity"))
    shown.fact(tree, "what", finding_what(r), "stagewatch.format", "file.size", "file.name")
    shown.fact(tree, "where", finding_where(r), *_where_keys(r))
    shown.fact(tree, "when", r.get("@timestamp", "?"), "@timestamp")
    shown.fact(tree, "sha256", f.get("hash", {}).get("sha256", "?"), "file.hash.sha256")
    email = r.get("email", {})
    shown.fact(tree, "mail from", _joined_list(_get(email, "from.address")), "email.from.address")
    shown.fact(tree, "mail to", _joined_list(_get(email, "to.address")), "email.to.address")
    shown.fact(tree, "subject", email.get("subject"), "email.subject")
    http = r.get("http", {})
    shown.fact(tree, "http method", _get(http, "request.method"), "http.request.method")
    shown.fact(tree, "http status", _get(http, "response.status_code"), "http.response.status_code")
    shown.fact(tree, "user agent", _get(r, "user_agent.original"), "user_agent.original")
    shown.fact(tree, "tls server name", _get(r, "tls.client.server_name"), "tls.client.server_name")
    shown.fact(tree, "ftp command", _get(r, "ftp.command"), "ftp.command")
    shown.fact(tree, "community id", _get(r, "network.community_id"), "network.community_id")
    shown.fact(tree, "file owner", f.get("owner"), "file.owner")
    shown.fact(tree, "file modified", f.get("mtime"), "file.mtime")
    _reasons(tree, list(sw.get("reasons", [])), "severity reasons")
    shown.keys.add("stagewatch.reasons")
    proof = tree.add(Text("evidence", style="bold"))
    src = sw.get("source", {})
    where = f"{src.get('path', '?')}" + (f" packet {src['packet']}" if "packet" in src else "")
    shown.fact(proof, "rule", r.get("rule", {}).get("name"), "rule.name")
    shown.fact(proof, "source", where, "stagewatch.source.path", "stagewatch.source.packet")
    shown.fact(proof, "logged by", bridge_text(r), "stagewatch.bridge", "zeek", "suricata")
    shown.fact(proof, "proof", sw.get("proof"), "stagewatch.proof")
    failed = ("stagewatch.checksum_failed", "stagewatch.checksum_failed_count", "stagewatch.checksum_checked")
    shown.fact(proof, "checksum", checksum_text(sw), "stagewatch.checksum", *failed)
    shown.fact(proof, "encoding", "+".join(sw.get("encoding", [])), "stagewatch.encoding")
    shown.fact(proof, "offset", sw.get("offset"), "stagewatch.offset")
    shown.fact(proof, "encoded run at", sw.get("encoding_offset"), "stagewatch.encoding_offset")
    box = sw.get("container", {})
    parts = (f"{box.get('size', '?')} bytes", box.get("mime_type"), box.get("sha256"))
    container = " ".join(str(x) for x in parts if x)
    shown.fact(proof, "container", container, "stagewatch.container")
    inner = sw.get("inner", {})
    shown.fact(proof, "inside", ", ".join(str(n) for n in inner.get("names", [])), "stagewatch.inner.names")
    decoded = [inner.get("mime_type"), f"{inner['size']} bytes" if "size" in inner else None]
    if "complete" in inner:
        decoded.append("complete" if inner["complete"] else "partial")
    keys = ("stagewatch.inner.mime_type", "stagewatch.inner.size", "stagewatch.inner.complete")
    shown.fact(proof, "decoded", ", ".join(str(x) for x in decoded if x), *keys)
    shown.fact(proof, "content rules", ", ".join(inner.get("rules", [])), "stagewatch.inner.rules")
    shown.fact(proof, "sensitive", ", ".join(sw.get("sensitive", [])), "stagewatch.sensitive")
    shown.fact(proof, "encrypted", sw.get("encrypted"), "stagewatch.encrypted")
    shown.fact(proof, "truncated", sw.get("truncated"), "stagewatch.truncated")
    shown.fact(proof, "compressed", sw.get("compressed"), "stagewatch.compressed")
    shown.fact(proof, "limits", _limits(sw.get("limits")), "stagewatch.limits")
    shown.fact(proof, "writer", sw.get("writer"), "stagewatch.writer")
    shown.fact(proof, "stored name", sw.get("stored_name"), "stagewatch.stored_name")
    shown.fact(proof, "header time", sw.get("header_time"), "stagewatch.header_time")
    shown.fact(proof, "detail", sw.get("detail"), "stagewatch.detail")
    shown.fact(proof, "suppressed", _tuned(sw.get("suppressed")), "stagewatch.suppressed")
    shown.fact(proof, "threshold", _tuned(sw.get("threshold")), "stagewatch.threshold")
    _joined(store, tree, str(ev.get("id", "")))
    same = _twins(store, r)
    if same:
        branch = tree.add(Text("the same member elsewhere", style="bold"))
        for x in same:
            branch.add(_line((str(x["event"]["id"]), "cyan"), f"  {x.get('@timestamp', '?')}  {finding_where(x)}"))
    shown.rest(tree, r)
    return tree


def _where_keys(r: Mapping[str, Any]) -> list[str]:
    """The fields `finding_where` puts on its line."""
    if "ip" not in r.get("source", {}):
        return ["file.path", "host.name"]
    keys = ["source.ip", "source.port", "destination.ip", "destination.port", "network.direction"]
    net = r.get("network", {})
    keys.append("network.protocol" if net.get("protocol") else "network.transport")
    if r.get("url", {}).get("original"):
        keys += ["url.original", "url.domain"]
    return keys


def host_finding_tree(store: FindingStore, r: Record) -> Tree:
    """A host-rule hit: the rule, the process and what it touched, the host event it flags, the reasons, the
    incidents that joined it, and every other field."""
    ev = r.get("event", {})
    severity = (str(ev.get("severity", "?")), "bold red")
    tree = Tree(_line(("host finding ", "bold"), (str(ev.get("id", "?")), "bold"), "  severity ", severity))
    shown = _Shown()
    shown.keys.update(("event.id", "event.severity"))
    what = ("stagewatch.label", "stagewatch.operation", "process.executable", "process.pid", "file.path", "dll.path")
    shown.fact(tree, "what", host_finding_line(r), *what)
    shown.fact(tree, "rule", r.get("rule", {}).get("name", "?"), "rule.name")
    host = f"{r.get('host', {}).get('name', '?')}  {r.get('@timestamp', '?')}"
    shown.fact(tree, "host", host, "host.name", "@timestamp")
    shown.fact(tree, "command line", r.get("process", {}).get("command_line"), "process.command_line")
    src = r.get("stagewatch", {}).get("source", {})
    where = f"{src.get('path', '?')} record {src.get('record_id', '?')}"
    shown.fact(tree, "source", where, "stagewatch.source.path", "stagewatch.source.record_id")
    flagged = store.host_event_flagged_by(str(ev.get("id", "")))
    if flagged:
        key, event = flagged
        tree.add(_line(("host event: ", "dim"), (key, "cyan"), "  ", host_event_line(host_event_record(key, event))))
    _reasons(tree, list(r.get("stagewatch", {}).get("reasons", [])), "reasons")
    shown.keys.add("stagewatch.reasons")
    _joined(store, tree, str(ev.get("id", "")))
    shown.rest(tree, r)
    return tree


def host_event_tree(store: FindingStore, r: Record) -> Tree:
    """A stored host event: time, host, process, parent, user, what it touched, where it was read, the host
    findings that flag it and the incidents that cite it."""
    ev, proc = r.get("event", {}), r.get("process", {})
    kind = f"  {ev.get('action', '?')} ({ev.get('provider', '?')} {ev.get('code', '?')})"
    tree = Tree(_line(("host event ", "bold"), (str(ev.get("id", "?")), "bold"), kind))
    shown = _Shown()
    shown.keys.update(("event.id", "event.action", "event.provider", "event.code"))
    shown.fact(tree, "time", r.get("@timestamp"), "@timestamp")
    host = r.get("host", {})
    shown.fact(tree, "host", " ".join([str(host.get("name", "?")), *host.get("ip", [])]), "host.name", "host.ip")
    pid = f" (pid {proc['pid']})" if "pid" in proc else ""
    shown.fact(tree, "process", f"{proc['executable']}{pid}" if "executable" in proc else None, "process.executable")
    shown.fact(tree, "pid", proc.get("pid") if "executable" not in proc else None, "process.pid")
    shown.fact(tree, "command line", proc.get("command_line"), "process.command_line")
    parent = proc.get("parent", {})
    ppid = f" (pid {parent['pid']})" if "pid" in parent else ""
    shown.fact(tree, "parent", f"{parent.get('executable', '?')}{ppid}" if parent else None, "process.parent")
    shown.fact(tree, "user", r.get("user", {}).get("name"), "user.name")
    shown.fact(tree, "target file", r.get("file", {}).get("path"), "file.path")
    shown.fact(tree, "loaded image", r.get("dll", {}).get("path"), "dll.path")
    net = None
    if "ip" in r.get("destination", {}):
        net = f"{r.get('network', {}).get('transport', '?')} {endpoint(r['source'])} > {endpoint(r['destination'])}"
    shown.fact(tree, "network", net, "source", "destination", "network.transport")
    sw = r.get("stagewatch", {})
    shown.fact(tree, "hashes", sw.get("hashes"), "stagewatch.hashes")
    shown.fact(tree, "label", sw.get("label"), "stagewatch.label")
    src = sw.get("source", {})
    where = f"{src.get('path', '?')} record {src.get('record_id', '?')}"
    shown.fact(tree, "source", where, "stagewatch.source.path", "stagewatch.source.record_id")
    ref = str(sw.get("evidence_id", ""))
    shown.fact(tree, "evidence id", ref, "stagewatch.evidence_id")
    others = [key for key, _ in _host_events_by_ref(store, ref) if key != ev.get("id")]
    shown.fact(tree, "the same evidence id names also", ", ".join(others))
    hits = store.host_findings_flagging(str(ev.get("id", "")))
    if hits:
        branch = tree.add(Text("flagged by", style="bold"))
        for h in hits:
            branch.add(_line((str(h["event"]["id"]), "cyan"), "  ", host_finding_line(h)))
    _joined(store, tree, ref)
    shown.rest(tree, r)
    return tree


def flow_tree(store: FindingStore, r: Record, flow_id: str) -> Tree:
    """A flow (its --flows record): who talked to whom and when, the bytes each way, how reassembly went, the
    findings it carried and the incidents that cite it."""
    ev, net = r.get("event", {}), r.get("network", {})
    s, d = r.get("source", {}), r.get("destination", {})
    tree = Tree(_line(("flow ", "bold"), (flow_id, "bold")))
    shown = _Shown()
    what = f"{net.get('transport', '?')} {endpoint(s)} > {endpoint(d)} {net.get('direction', '')}".strip()
    keys = ("network.transport", "source.ip", "source.port", "destination.ip", "destination.port")
    shown.fact(tree, "what", what, *keys, "network.direction")
    when = f"{ev.get('start', '?')} .. {ev.get('end', '?')}"
    shown.fact(tree, "when", when, "event.start", "event.end", "@timestamp")
    shown.fact(tree, "community id", net.get("community_id"), "network.community_id")
    sent = f"{s.get('bytes', '?')} bytes in {s.get('packets', '?')} packets"
    shown.fact(tree, "client to server", sent, "source.bytes", "source.packets")
    back = f"{d.get('bytes', '?')} bytes in {d.get('packets', '?')} packets"
    shown.fact(tree, "server to client", back, "destination.bytes", "destination.packets")
    shown.fact(tree, "tls server name", _get(r, "tls.client.server_name"), "tls.client.server_name")
    stats = r.get("stagewatch", {}).get("flow", {})
    shown.fact(tree, "reassembly", ", ".join(f"{k} {v}" for k, v in stats.items()), "stagewatch.flow")
    shown.fact(tree, "source", _get(r, "stagewatch.source.path"), "stagewatch.source.path")
    carried = _flow_findings(store, r)
    if carried:
        branch = tree.add(Text("findings in this flow", style="bold"))
        for x in carried:
            branch.add(_line((str(x["event"]["id"]), "cyan"), "  ", record_line("findings", x)))
    _joined(store, tree, flow_id)
    shown.rest(tree, r)
    return tree


def object_tree(r: Record, object_id: str) -> Tree:
    """An application object (its --objects record): what it is, the flow that carried it, its layers."""
    f, s, d = r.get("file", {}), r.get("source", {}), r.get("destination", {})
    tree = Tree(_line(("object ", "bold"), (object_id, "bold")))
    shown = _Shown()
    what = f"{f.get('name') or '(no name)'}, {f.get('size', '?')} bytes, {f.get('mime_type') or '?'}"
    shown.fact(tree, "what", what, "file.name", "file.size", "file.mime_type")
    shown.fact(tree, "sha256", _get(r, "file.hash.sha256"), "file.hash.sha256")
    where = f"{_get(r, 'network.protocol') or '?'} {endpoint(s)} > {endpoint(d)} {_get(r, 'network.direction') or ''}"
    keys = ("network.protocol", "source.ip", "source.port", "destination.ip", "destination.port", "network.direction")
    shown.fact(tree, "where", where.strip(), *keys)
    shown.fact(tree, "when", r.get("@timestamp"), "@timestamp")
    shown.fact(tree, "flow", _get(r, "stagewatch.flow.id"), "stagewatch.flow.id")
    shown.fact(tree, "layers", " > ".join(_get(r, "stagewatch.encoding") or []) or None, "stagewatch.encoding")
    shown.rest(tree, r)
    return tree
