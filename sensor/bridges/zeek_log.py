"""Zeek's log files, in both of its writers' formats: TSV with its header (#separator, #set_separator,
#empty_field, #unset_field, #path, #fields, #types; values escaped \\xNN) and JSON lines (LogAscii::use_json,
flat dotted keys, ISO 8601 or epoch times), either one gzip-compressed (rotated logs). Rows come out as typed
values keyed by Zeek's field names: one log kind's columns are Zeek's own contract, not ours to rename."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from sensor.bridges.base import json_objects, lines
from sensor.errors import InputError

KINDS = ("files", "conn", "http", "smtp", "ftp")
_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")
_TSV_ESCAPE = re.compile(rb"\\(\\|x([0-9a-fA-F]{2}))")  # TSV also doubles a literal backslash
# what tells a JSON log's kind when no #path says it: fields only that log has
_JSON_KEYS = (
    ("files", {"fuid", "seen_bytes"}),
    ("files", {"fuid", "source", "analyzers"}),
    ("conn", {"uid", "conn_state"}),
    ("smtp", {"uid", "mailfrom"}),
    ("smtp", {"uid", "rcptto"}),
    ("smtp", {"uid", "helo"}),
    ("ftp", {"uid", "command", "arg"}),
    ("http", {"uid", "trans_depth"}),  # after smtp: smtp.log has trans_depth too
)
REQUIRED = {
    "files": ("ts", "fuid"),
    "conn": ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto"),
    "http": ("ts", "uid"),
    "smtp": ("ts", "uid"),
    "ftp": ("ts", "uid"),
}


class BadLog(InputError):
    """A Zeek log that cannot be read as one (its header, a row)."""


@dataclass(frozen=True, slots=True)
class ZeekLog:
    """One log file: its kind (files, conn, http, smtp, ftp), format and path."""

    path: str
    kind: str
    json: bool


def _kind_of_name(path: str) -> str | None:
    name = PurePath(path).name.split(".", 1)[0]
    return name if name in KINDS else None


def sniff(path: str, text: bytes) -> ZeekLog | None:
    """A ZeekLog when `text` (the file's first bytes, through head_text when gzip) starts a Zeek log of a kind
    we read."""
    if text.startswith(b"#separator "):
        m = re.search(rb"^#path\t([^\t\r\n]+)", text, re.M)
        kind = m.group(1).decode("ascii", "replace") if m else _kind_of_name(path)
        return ZeekLog(path, kind, False) if kind in KINDS else None
    line = text.split(b"\n", 1)[0].strip()
    if not line.startswith(b"{"):
        return None
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    if not isinstance(rec, dict) or "ts" not in rec or "event_type" in rec:
        return None
    keys = set(rec)
    for kind, need in _JSON_KEYS:
        if need <= keys:
            return ZeekLog(path, kind, True)
    return None


def head_text(head: bytes) -> bytes:
    """A file's first bytes as text: a gzip-compressed (rotated) log decompressed as far as the head goes."""
    if head[:2] != b"\x1f\x8b":
        return head
    try:
        return zlib.decompressobj(31).decompress(head, 65536)
    except zlib.error:
        return b""


def rows(log: ZeekLog) -> Iterator[dict[str, Any]]:
    """The log's rows, values typed (time -> epoch float, count/int/port -> int, bool, set/vector -> tuple;
    unset fields absent). A header that lacks #fields or the fields a kind needs is a BadLog naming the file;
    a bad row is skipped and counted by the caller through the BadLog it raises after the others."""
    yield from (_json_rows(log) if log.json else _tsv_rows(log))


def _tsv_rows(log: ZeekLog) -> Iterator[dict[str, Any]]:
    sep, set_sep, empty, unset = b"\t", b",", b"(empty)", b"-"
    fields: list[str] | None = None
    types: list[str] = []
    bad = 0
    for n, raw in enumerate(lines(log.path), 1):
        line = raw.rstrip(b"\r\n")
        if line.startswith(b"#"):
            key, _, value = line[1:].partition(b" " if line.startswith(b"#separator") else sep)
            if key == b"separator":
                sep = _unescape(value)
            elif key == b"set_separator":
                set_sep = value
            elif key == b"empty_field":
                empty = value
            elif key == b"unset_field":
                unset = value
            elif key == b"fields":
                fields = [f.decode("utf-8", "replace") for f in value.split(sep)]
                _required(log, fields)
            elif key == b"types":
                types = [t.decode("ascii", "replace") for t in value.split(sep)]
                if fields is not None:
                    _agree(log, fields, types)
            continue
        if not line:
            continue
        if fields is None:
            raise BadLog(log.path, f"line {n}: a row before any #fields line: not a Zeek log header", "zeek_log")
        values = line.split(sep)
        if len(values) != len(fields):
            bad += 1
            continue
        row: dict[str, Any] = {}
        try:
            for i, (name, value) in enumerate(zip(fields, values, strict=True)):
                if value == unset:
                    continue
                kind = types[i] if i < len(types) else "string"
                if value == empty:
                    row[name] = () if kind.startswith(("set", "vector")) else ""
                    continue
                row[name] = _typed(kind, value, set_sep)
        except ValueError:  # a value that is not its #types type: columns and header disagree
            bad += 1
            continue
        yield row
    if fields is None:
        raise BadLog(log.path, "no #fields line: not a Zeek log header", "zeek_log")
    if bad:
        raise BadLog(log.path, f"{bad} rows whose columns do not fit #fields and #types: skipped", "zeek_rows")


# the types Zeek gives the columns we join on: a #fields line reordered against its #types shows here
TYPES = {"ts": "time", "uid": "string", "fuid": "string", "id.orig_h": "addr", "id.orig_p": "port",
         "id.resp_h": "addr", "id.resp_p": "port"}  # fmt: skip


def _agree(log: ZeekLog, fields: list[str], types: list[str]) -> None:
    if len(types) != len(fields):
        raise BadLog(log.path, f"#types has {len(types)} columns, #fields {len(fields)}", "zeek_log")
    wrong = [f"{f} is {t}" for f, t in zip(fields, types, strict=True) if TYPES.get(f, t) != t]
    if wrong:
        raise BadLog(log.path, f"#fields and #types disagree ({', '.join(wrong)}): columns reordered?", "zeek_log")


def _required(log: ZeekLog, fields: list[str]) -> None:
    missing = [f for f in REQUIRED.get(log.kind, ()) if f not in fields]
    if missing:
        raise BadLog(log.path, f"#fields lacks {', '.join(missing)}: cannot read it as a {log.kind}.log", "zeek_log")


def _unescape(value: bytes) -> bytes:
    """TSV text: \\xNN is a byte, \\\\ a backslash."""
    return _TSV_ESCAPE.sub(lambda m: b"\\" if m.group(2) is None else bytes((int(m.group(2), 16),)), value)


def _typed(kind: str, value: bytes, set_sep: bytes) -> Any:  # noqa: ANN401 - one value per Zeek type
    if kind.startswith(("set[", "vector[")):
        inner = kind[kind.index("[") + 1 : -1]
        return tuple(_typed(inner, v, set_sep) for v in value.split(set_sep))
    if kind in ("time", "interval", "double"):
        return float(value)
    if kind in ("count", "int", "port"):
        return int(value)
    if kind == "bool":
        if value not in (b"T", b"F"):
            raise ValueError(value)
        return value == b"T"
    if kind == "addr":
        text = value.decode("ascii")
        ipaddress.ip_address(text)
        return text
    return _unescape(value).decode("utf-8", "surrogateescape")


def _json_text(value: Any) -> Any:  # noqa: ANN401
    """Zeek's JSON writer escapes a non-printable byte as \\xNN like the TSV writer, but leaves a literal
    backslash alone, so the text "\\x07" and the byte 0x07 are written alike: read as the byte (TSV tells them
    apart; where the two logs of one run differ, the TSV reading is the exact one)."""
    if isinstance(value, str) and "\\x" in value:
        raw = _ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), value.encode("utf-8", "surrogateescape"))
        return raw.decode("utf-8", "surrogateescape")
    return value


def _json_rows(log: ZeekLog) -> Iterator[dict[str, Any]]:
    bad = 0
    first = True
    for rec in json_objects(log.path):
        if rec is None:
            bad += 1
            continue
        if first:
            _required(log, list(rec))
            first = False
        if isinstance(rec.get("ts"), str):
            try:
                rec["ts"] = dt.datetime.fromisoformat(rec["ts"].replace("Z", "+00:00")).timestamp()
            except ValueError:
                bad += 1
                continue
        for key, value in rec.items():
            if isinstance(value, list):
                rec[key] = tuple(_json_text(v) for v in value)
            else:
                rec[key] = _json_text(value)
        yield rec
    if bad:
        raise BadLog(log.path, f"{bad} lines that are not JSON objects: skipped", "zeek_rows")


__all__ = ["KINDS", "BadLog", "ZeekLog", "head_text", "rows", "sniff"]
