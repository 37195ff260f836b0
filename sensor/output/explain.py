"""`stagewatch explain ID`: one finding or incident on the terminal, with its score's reasons and evidence chain.

Labels are rich `Text` objects, never markup strings: names from captured traffic may hold `[bold]`
or escape sequences and must print as they are.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from rich.tree import Tree

from sensor.errors import InputError
from sensor.output.chain import (
    STAGE_TITLES,
    STAGES,
    evidence_of,
    finding_what,
    finding_where,
    host_finding_line,
    incident_chain,
)
from sensor.output.reasons import explain_reason
from sensor.store.db import FindingStore

MIN_PREFIX = 8  # shorter prefixes of a UUID match too much to be worth guessing
TABLES = ("findings", "incidents", "host_findings")


def resolve(store: FindingStore, ident: str) -> tuple[str, str, dict[str, Any]]:
    """(table, full id, record) for an id or an unambiguous prefix of at least MIN_PREFIX characters."""
    ident = ident.strip()
    exact = store.records_by_id([ident]).get(ident)
    if exact and exact[0] in TABLES:
        return exact[0], ident, exact[1]
    if len(ident) < MIN_PREFIX:
        raise InputError(ident, f"no finding or incident has this id (give it whole or its first {MIN_PREFIX}+ chars)")
    found = store.match_id(ident)
    if not found:
        raise InputError(ident, "no finding, host finding or incident has this id or starts with it")
    if len(found) > 1:
        ids = ", ".join(i for _, i, _ in found[:3])
        raise InputError(ident, f"ambiguous: {len(found)} ids start with it ({ids}...); give more of the id")
    return found[0]


def _line(*parts: tuple[str, str] | str) -> Text:
    return Text.assemble(*parts)


def _reasons(tree: Tree, codes: list[str], title: str) -> None:
    branch = tree.add(Text(title, style="bold"))
    for code in codes:
        branch.add(_line((code, "cyan"), "  ", explain_reason(code)))
    if not codes:
        branch.add(Text("(none recorded)", style="dim"))


def incident_tree(store: FindingStore, r: dict[str, Any], tree: Tree | None = None) -> Tree:
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
    node.add(f"{ev.get('start', '?')} .. {ev.get('end', '?')}")
    techniques = ", ".join(r.get("threat", {}).get("technique", {}).get("id", []))
    node.add(f"evidence kinds: {', '.join(inc.get('kinds', []))}; techniques: {techniques}")
    proc = r.get("process", {})
    if proc.get("command_line"):
        node.add(_line(("command line: ", "dim"), proc["command_line"]))
    if r.get("user", {}).get("name"):
        node.add(_line(("user: ", "dim"), r["user"]["name"]))
    _reasons(node, list(inc.get("reasons", [])), "score reasons")
    resolved = store.records_by_id(str(x.get("id")) for x in evidence_of(r))
    chain = incident_chain(r, resolved)
    links = node.add(Text("chain: process -> staged file -> transfer", style="bold"))
    for stage in STAGES:
        title = STAGE_TITLES[stage] + (f": {chain.process}" if stage == "process" else "")
        branch = links.add(Text(title, style="bold magenta" if stage == "process" else "bold"))
        for x in chain.links[stage]:
            branch.add(_line((f"{x.kind} ", "yellow"), (x.ref, "cyan"), f"  {x.ts}\n", x.text))
        if not chain.links[stage]:
            branch.add(Text("none seen", style="dim"))
    if inc.get("destinations"):
        node.add(_line(("destinations: ", "dim"), ", ".join(inc["destinations"])))
    return node


def finding_tree(store: FindingStore, r: dict[str, Any]) -> Tree:
    """A finding: what, where, severity and reasons, the decoding evidence, and the incidents that joined it."""
    ev, sw, f = r.get("event", {}), r.get("stagewatch", {}), r.get("file", {})
    kind = str(ev.get("kind", "?"))
    style = "bold red" if kind == "alert" else "bold"
    severity = (str(ev.get("severity", "?")), "bold red")
    tree = Tree(_line((f"{kind} finding ", style), (str(ev.get("id", "?")), "bold"), "  severity ", severity))
    tree.add(_line(("what: ", "dim"), finding_what(r)))
    tree.add(_line(("where: ", "dim"), finding_where(r)))
    tree.add(_line(("when: ", "dim"), str(r.get("@timestamp", "?"))))
    tree.add(_line(("sha256: ", "dim"), str(f.get("hash", {}).get("sha256", "?"))))
    _reasons(tree, list(sw.get("reasons", [])), "severity reasons")
    proof = tree.add(Text("evidence", style="bold"))
    src = sw.get("source", {})
    facts = {
        "rule": r.get("rule", {}).get("name"),
        "source": f"{src.get('path', '?')}" + (f" packet {src['packet']}" if "packet" in src else ""),
        "proof": sw.get("proof"),
        "checksum": sw.get("checksum"),
        "encoding": "+".join(sw.get("encoding", [])),
        "offset": sw.get("offset"),
        "container": f"{sw.get('container', {}).get('size', '?')} bytes {sw.get('container', {}).get('sha256', '')}",
        "inside": ", ".join(sw.get("inner", {}).get("names", [])[:10]),
        "sensitive": ", ".join(sw.get("sensitive", [])),
        "encrypted": sw.get("encrypted") or None,
        "limits": ", ".join(sw.get("limits", [])),
        "writer": sw.get("writer"),
        "content rules": ", ".join(sw.get("inner", {}).get("rules", [])),
        "suppressed": _tuned(sw.get("suppressed")),
        "threshold": _tuned(sw.get("threshold")),
    }
    for key, value in facts.items():
        if value not in (None, ""):
            proof.add(_line((f"{key}: ", "dim"), str(value)))
    _joined(store, tree, str(ev.get("id", "")))
    twins = store.findings_with_sha256(str(f.get("hash", {}).get("sha256", "")))
    same = [x for x in twins if x["event"]["id"] != ev.get("id")]
    if same:
        branch = tree.add(Text("the same member elsewhere", style="bold"))
        for x in same:
            branch.add(_line((str(x["event"]["id"]), "cyan"), f"  {x.get('@timestamp', '?')}  {finding_where(x)}"))
    return tree


def host_finding_tree(store: FindingStore, r: dict[str, Any]) -> Tree:
    """A host-rule hit: the rule, the process and what it touched, the reasons, and the incidents that joined it."""
    ev = r.get("event", {})
    severity = (str(ev.get("severity", "?")), "bold red")
    tree = Tree(_line(("host finding ", "bold"), (str(ev.get("id", "?")), "bold"), "  severity ", severity))
    tree.add(_line(("what: ", "dim"), host_finding_line(r)))
    tree.add(_line(("rule: ", "dim"), str(r.get("rule", {}).get("name", "?"))))
    tree.add(_line(("host: ", "dim"), str(r.get("host", {}).get("name", "?")), f"  {r.get('@timestamp', '?')}"))
    if r.get("process", {}).get("command_line"):
        tree.add(_line(("command line: ", "dim"), r["process"]["command_line"]))
    src = r.get("stagewatch", {}).get("source", {})
    tree.add(_line(("source: ", "dim"), f"{src.get('path', '?')} record {src.get('record_id', '?')}"))
    _reasons(tree, list(r.get("stagewatch", {}).get("reasons", [])), "reasons")
    _joined(store, tree, str(ev.get("id", "")))
    return tree


def _tuned(entry: dict[str, Any] | None) -> str | None:
    if not entry:
        return None
    extra = f" x{entry['count']}" if "count" in entry else ""
    why = f": {entry['reason']}" if entry.get("reason") else ""
    return f"{entry.get('name', '?')}{extra}{why}" + (f" ({entry['author']})" if entry.get("author") else "")


def _joined(store: FindingStore, tree: Tree, ref: str) -> None:
    incidents = store.incidents_citing(ref)
    if not incidents:
        tree.add(Text("no incident joins it (run `stagewatch correlate` after the host telemetry is in)", style="dim"))
    for inc in incidents:
        incident_tree(store, inc, tree.add(Text("part of", style="bold")))


def explain(store: FindingStore, ident: str) -> Tree:
    """The terminal view of one stored finding, host finding or incident."""
    table, _, record = resolve(store, ident)
    if table == "incidents":
        return incident_tree(store, record)
    if table == "host_findings":
        return host_finding_tree(store, record)
    return finding_tree(store, record)
