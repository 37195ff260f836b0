"""Human output on the terminal: progress on stderr, a findings table, the end-of-run summary."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sensor.flow.direction import endpoint_text
from sensor.stats import RunStats

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

# rich is imported on first use (~30 ms): `scan -q` and `--jsonl -` runs print no table and no progress.
err: Console  # stderr and stdout, each made on first use (module __getattr__)
out: Console


def _console(name: str) -> Console:
    """`err` or `out`, made once. Redirected output keeps full-width rows instead of folding paths into 80 columns."""
    made = globals().get(name)
    if made is None:
        from rich.console import Console

        if name == "err":
            made = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
        else:
            made = Console(width=None if sys.stdout.isatty() else 200)
        globals()[name] = made
    return made


def __getattr__(name: str) -> Console:
    if name in ("err", "out"):
        return _console(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def escape(text: str) -> str:
    """rich markup escaped (rich.markup.escape, imported with the tables)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def _table(*args: Any, **kwargs: Any) -> Table:
    from rich.table import Table

    return Table(*args, **kwargs)


class ScanProgress:
    """A spinner with files and bytes done, shown only when stderr is a terminal."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._p: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> ScanProgress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._p = Progress(
                SpinnerColumn(),
                TextColumn("{task.fields[files]} files"),
                BarColumn(bar_width=None),
                DownloadColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[path]}", style="dim"),
                console=_console("err"),
                transient=True,
            )
            self._p.start()
            self._task = self._p.add_task("scan", total=None, files=0, path="")
        return self

    def __call__(self, path: str, size: int) -> None:
        if self._p is not None:
            task = self._p.tasks[0]
            self._p.update(self._task, advance=size, files=task.fields["files"] + 1, path=path[-60:])

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.stop()


TABLE_ROWS = 40  # a terminal table of thousands of rows helps nobody (and cost a quarter of a run)


endpoint = endpoint_text  # 10.0.0.1:80, [2001:db8::1]:80


def short_id(r: dict[str, Any]) -> str:
    """The first 8 characters of a record's id: what `explain` accepts."""
    return str((r.get("event") or {}).get("id") or r.get("id") or "")[:8]


def when(r: dict[str, Any]) -> str:
    return str(r.get("@timestamp") or "")[:19].replace("T", " ")


def findings_table(records: Iterable[dict[str, Any]], limit: int = TABLE_ROWS, sort: bool = True) -> Table:
    """One row per finding, at most `limit` rows (alerts first by severity unless `sort` is False): the id
    `explain` takes, time, kind, severity, format, host or source > destination, size, what is inside, why."""
    records = list(records)
    if sort:
        records.sort(key=lambda r: (r["event"]["kind"] != "alert", -r["event"]["severity"]))
    hidden = max(0, len(records) - limit)
    records = records[:limit]
    caption = f"{hidden} more findings in the JSON lines and the store" if hidden else None
    t = _table(title="stagewatch findings", caption=caption, show_lines=False, expand=False)
    for col in ("id", "time", "kind", "sev", "format", "host / path", "source > destination", "size", "inside",
                "reasons"):  # fmt: skip
        t.add_column(col, overflow="fold")
    for r in records:
        sw = r["stagewatch"]
        inner = sw.get("inner", {})
        names = inner.get("names") or ([sw["stored_name"]] if sw.get("stored_name") else [])
        inside = ", ".join(names[:4]) + (" ..." if len(names) > 4 else "")
        if inner.get("mime_type"):
            inside = f"{inner['mime_type']} {inside}".strip()
        flags = [x for x in ("encrypted", "truncated") if sw.get(x)]
        enc = "+".join(sw.get("encoding") or [])
        fmt = sw["format"] + (f" ({enc})" if enc else "") + (f" [{','.join(flags)}]" if flags else "")
        style = "bold red" if r["event"]["kind"] == "alert" else None
        host = (r.get("host") or {}).get("name") or ""
        path = (r.get("file") or {}).get("path")
        cells = (
            short_id(r),
            when(r),
            r["event"]["kind"],
            str(r["event"]["severity"]),
            fmt,
            f"{host} {path}".strip() if path else host,
            _flow(r) if r.get("source") else "",
            str(r["file"]["size"]),
            inside,
            ", ".join(sw.get("reasons", [])),
        )
        t.add_row(*(escape(c) for c in cells), style=style)
    return t


def _flow(r: dict[str, Any]) -> str:
    src, dst = r.get("source", {}), r.get("destination", {})
    net = r.get("network", {})
    where = r.get("stagewatch", {}).get("source", {})
    packet = f" (packet {where['packet']})" if where.get("packet") else ""
    bridge = r.get("stagewatch", {}).get("bridge")
    if bridge:  # another sensor's file: its ids, not a packet, lead back to it
        ids = r.get(bridge.get("sensor", ""), {})
        packet = f" ({bridge.get('sensor')} {' '.join(str(v) for v in ids.values())})"
    proto = net.get("protocol") or net.get("transport") or ""
    return (
        f"{endpoint(src.get('ip'), src.get('port'))} > {endpoint(dst.get('ip'), dst.get('port'))} "
        f"{proto} {net.get('direction', '')}{packet}"
    ).replace("  ", " ")


def host_findings_table(records: list[dict[str, Any]], limit: int = TABLE_ROWS) -> Table:
    """One row per host finding: id, time, host, severity, rule label and operation, process, command line."""
    t = _table(title="stagewatch host findings")
    for col in ("id", "time", "host", "sev", "rule", "process", "command line / file"):
        t.add_column(col, overflow="fold")
    for r in records[:limit]:
        sw = r.get("stagewatch", {})
        proc = r.get("process", {})
        target = (r.get("file") or {}).get("path") or ""
        cells = (
            short_id(r),
            when(r),
            (r.get("host") or {}).get("name") or "?",
            str(r.get("event", {}).get("severity", "")),
            f"{sw.get('label') or (r.get('rule') or {}).get('name') or ''} ({sw.get('operation', '')})",
            str(proc.get("executable") or ""),
            str(proc.get("command_line") or target)[:200],
        )
        t.add_row(*(escape(c) for c in cells))
    if len(records) > limit:
        t.caption = f"first {limit} of {len(records)}; all of them with --jsonl"
    return t


def flows_table(records: list[dict[str, Any]], limit: int = TABLE_ROWS) -> Table:
    """One row per flow: id (`objects --flow` takes it), community id, start, client > server, protocol,
    direction, bytes each way, end."""
    t = _table(title="stagewatch flows")
    for col in ("id", "community id", "start", "client > server", "proto", "direction", "bytes out/in", "end reason"):
        t.add_column(col, overflow="fold")
    for r in records[:limit]:
        src, dst, net = r.get("source", {}), r.get("destination", {}), r.get("network", {})
        flow = r.get("stagewatch", {}).get("flow", {})
        cells = (
            short_id(r),
            str(net.get("community_id", "")),
            when(r),
            f"{endpoint(src.get('ip'), src.get('port'))} > {endpoint(dst.get('ip'), dst.get('port'))}",
            str(net.get("protocol") or net.get("transport") or ""),
            str(net.get("direction", "")),
            f"{src.get('bytes', 0)}/{dst.get('bytes', 0)}",
            str(flow.get("end_reason", "")),
        )
        t.add_row(*(escape(c) for c in cells))
    if len(records) > limit:
        t.caption = f"first {limit} of {len(records)}; all of them with --jsonl"
    return t


def objects_table(records: list[dict[str, Any]], limit: int = TABLE_ROWS) -> Table:
    """One row per application object: time, flow, protocol, name, size, type, layers, sha256."""
    t = _table(title="stagewatch objects")
    for col in ("id", "time", "source > destination", "proto", "name", "size", "mime", "layers", "sha256"):
        t.add_column(col, overflow="fold")
    for r in records[:limit]:
        src, dst, f = r.get("source", {}), r.get("destination", {}), r.get("file", {})
        cells = (
            short_id(r),
            when(r),
            f"{endpoint(src.get('ip'), src.get('port'))} > {endpoint(dst.get('ip'), dst.get('port'))}",
            str(r.get("network", {}).get("protocol", "")),
            str(f.get("name") or ""),
            str(f.get("size", "")),
            str(f.get("mime_type") or ""),
            "+".join(r.get("stagewatch", {}).get("encoding") or []),
            str((f.get("hash") or {}).get("sha256", ""))[:16],
        )
        t.add_row(*(escape(c) for c in cells))
    if len(records) > limit:
        t.caption = f"first {limit} of {len(records)}; all of them with --jsonl"
    return t


def summary_table(stats: RunStats, seconds: float, stored: int | None, updated: int = 0) -> Table:
    """The end-of-run counts: inputs, findings, verification, limits, skips and errors."""
    t = _table(title="scan summary", show_header=False)
    t.add_column("what")
    t.add_column("count", justify="right")
    mb = stats.bytes / 1e6
    if stats.files or not stats.captures:
        t.add_row("files scanned", f"{stats.files} ({mb:.1f} MB, {mb / max(seconds, 1e-9):.1f} MB/s)")
    t.add_row("findings (alerts)", f"{stats.findings} ({stats.alerts})")
    if stats.opaque:
        t.add_row("opaque staged files", str(stats.opaque))
    if stored is not None:
        t.add_row("new in store", f"{stored}" + (f" ({updated} stored earlier, judged anew)" if updated else ""))
    if stats.captures:
        t.add_row(
            "captures",
            f"{stats.captures} ({stats.packets} packets, {stats.packet_bytes / 1e6:.1f} MB, "
            f"{stats.packet_bytes / 1e6 / max(seconds, 1e-9):.1f} MB/s)",
        )
        if stats.truncated_records or stats.snapped:
            t.add_row("cut records / snapped frames", f"{stats.truncated_records} / {stats.snapped}")
    for label, counter in (
        ("network", stats.net),
        ("application", stats.app),
        ("host telemetry", stats.host),
        ("zeek / suricata", stats.bridge),
        ("tuning", stats.tuning),
        ("not decoded", stats.undecoded),
        ("verified", stats.verified),
        ("candidates", stats.candidates),
        ("not verified", stats.rejected),
        ("limits hit", stats.limits),
        ("skipped", stats.skipped),
        ("errors", stats.errors),
    ):
        if counter:
            t.add_row(label, ", ".join(f"{k} {v}" for k, v in sorted(counter.items())))
    return t


def hosts_table(records: list[dict[str, Any]]) -> Table:
    """One row per identity: the address, the name the wire gave it, its MAC, how and when."""
    t = _table(title="stagewatch hosts (identities from the wire)")
    for col in ("address", "name", "mac", "source", "since", "until", "how"):
        t.add_column(col, overflow="fold")
    for r in records[:TABLE_ROWS]:
        host, ident = r.get("host", {}), r.get("stagewatch", {}).get("identity", {})
        t.add_row(
            (host.get("ip") or ["?"])[0],
            host.get("name") or "(no name)",
            (host.get("mac") or [""])[0],
            ident.get("source", ""),
            when(r),
            str(ident.get("until", "")).replace("T", " ")[:19],
            ident.get("detail", ""),
        )
    if len(records) > TABLE_ROWS:
        t.caption = f"first {TABLE_ROWS} of {len(records)}; all of them with --jsonl"
    return t


def incidents_table(records: list[dict[str, Any]]) -> Table:
    """One row per incident: when, host, score, process, what left and where to."""
    t = _table(title="stagewatch incidents")
    for col in ("id", "start", "host", "score", "process", "files", "to", "kinds", "related"):
        t.add_column(col, overflow="fold")
    for r in records[:TABLE_ROWS]:
        inc = r["stagewatch"]["incident"]
        proc = r.get("process", {})
        t.add_row(
            short_id(r),
            when(r),
            r.get("host", {}).get("name") or "?",
            str(inc["score"]),
            f"{proc.get('executable', '')} {proc.get('pid', '')}".strip(),
            ", ".join(inc["files"])[:120],
            ", ".join(inc["destinations"]),
            ", ".join(inc["kinds"]),
            ", ".join(x[:8] for x in inc.get("related", [])),
        )
    if len(records) > TABLE_ROWS:
        t.caption = f"first {TABLE_ROWS} of {len(records)}; all of them with --jsonl"
    return t
