"""Human output on the terminal: progress on stderr, a findings table, the end-of-run summary."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from sensor.stats import RunStats

# Redirected output keeps full-width rows instead of folding paths into 80 columns.
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
out = Console(width=None if sys.stdout.isatty() else 200)


class ScanProgress:
    """A spinner with files and bytes done, shown only when stderr is a terminal."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._p: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> ScanProgress:
        if self.enabled:
            self._p = Progress(
                SpinnerColumn(),
                TextColumn("{task.fields[files]} files"),
                BarColumn(bar_width=None),
                DownloadColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[path]}", style="dim"),
                console=err,
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


def findings_table(records: Iterable[dict[str, Any]], limit: int = TABLE_ROWS) -> Table:
    """One row per finding, alerts first by severity, at most `limit` rows: kind, severity, format,
    where, size, what is inside, why."""
    records = sorted(records, key=lambda r: (r["event"]["kind"] != "alert", -r["event"]["severity"]))
    hidden = max(0, len(records) - limit)
    records = records[:limit]
    caption = f"{hidden} more findings in the JSON lines and the store" if hidden else None
    t = Table(title="stagewatch findings", caption=caption, show_lines=False, expand=False)
    for col in ("kind", "sev", "format", "path", "offset", "size", "inside", "reasons"):
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
        cells = (
            r["event"]["kind"],
            str(r["event"]["severity"]),
            fmt,
            r.get("file", {}).get("path") or _flow(r),
            str(sw["offset"]),
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
    return (
        f"{src.get('ip')}:{src.get('port')} > {dst.get('ip')}:{dst.get('port')} {net.get('direction', '')} "
        f"(packet {where.get('packet')})"
    )


def summary_table(stats: RunStats, seconds: float, stored: int | None) -> Table:
    """The end-of-run counts: inputs, findings, verification, limits, skips and errors."""
    t = Table(title="scan summary", show_header=False)
    t.add_column("what")
    t.add_column("count", justify="right")
    mb = stats.bytes / 1e6
    if stats.files or not stats.captures:
        t.add_row("files scanned", f"{stats.files} ({mb:.1f} MB, {mb / max(seconds, 1e-9):.1f} MB/s)")
    t.add_row("findings (alerts)", f"{stats.findings} ({stats.alerts})")
    if stored is not None:
        t.add_row("new in store", str(stored))
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


def incidents_table(records: list[dict[str, Any]]) -> Table:
    """One row per incident: when, host, score, process, what left and where to."""
    t = Table(title="stagewatch incidents")
    for col in ("start", "host", "score", "process", "files", "to", "kinds"):
        t.add_column(col, overflow="fold")
    for r in records[:TABLE_ROWS]:
        inc = r["stagewatch"]["incident"]
        proc = r.get("process", {})
        t.add_row(
            r["@timestamp"][:19].replace("T", " "),
            r.get("host", {}).get("name") or "?",
            str(inc["score"]),
            f"{proc.get('executable', '')} {proc.get('pid', '')}".strip(),
            ", ".join(inc["files"])[:120],
            ", ".join(inc["destinations"]),
            ", ".join(inc["kinds"]),
        )
    if len(records) > TABLE_ROWS:
        t.caption = f"first {TABLE_ROWS} of {len(records)}; all of them with --jsonl"
    return t
