"""JSON lines to a file or stdout, one finding per line, flushed per line so nothing is lost on exit."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any, ClassVar, TextIO

from sensor.errors import InputError
from sensor.model import Finding
from sensor.output.base import sinks

try:
    import orjson
except ImportError:  # an optional speed-up: the stdlib writes the same lines
    orjson = None  # type: ignore[assignment]

# orjson would write dataclasses and datetimes the stdlib refuses; passed through, they fail as before
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME if orjson is not None else 0


def dumps(record: dict[str, Any]) -> str:
    """One compact JSON line without its newline, non-ASCII kept as UTF-8.

    orjson writes our records about 10x faster than json and gives the same text for them (bench_start.py
    checks). What it refuses (non-str keys, ints beyond 64 bits, lone surrogates, other types) goes to the
    stdlib, which converts or raises as it always did.
    """
    if orjson is not None:
        try:
            return orjson.dumps(record, option=_ORJSON_OPTIONS).decode()
        except TypeError:  # orjson.JSONEncodeError
            pass
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def open_lines(target: str, truncate: bool = False) -> TextIO:
    """A JSON lines file to append to (or rewrite with `truncate`); `-` is stdout. InputError names the file."""
    if target == "-":
        return sys.stdout
    try:
        return open(target, "w" if truncate else "a", encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        raise InputError(target, f"cannot write JSON lines: {e.strerror or e}") from None


def write_lines(target: str, records: Iterable[dict[str, Any]], truncate: bool = False) -> int:
    """Append (or rewrite) `records` as JSON lines to a file or stdout; returns how many were written."""
    f = open_lines(target, truncate)
    n = 0
    try:
        for r in records:
            f.write(dumps(r) + "\n")
            n += 1
        f.flush()
    finally:
        if f is not sys.stdout:
            f.close()
    return n


@sinks.register("jsonl")
class JsonlSink:
    """`--jsonl`, `--flows` or `--objects FILE|-`: one kind of record appended to FILE (a restarted sensor
    never wipes what a shipper has not sent yet), or rewritten with `truncate`; `-` is stdout."""

    name: ClassVar[str] = "jsonl"

    def __init__(self, target: str, kind: type | tuple[type, ...] = Finding, truncate: bool = False) -> None:
        self.kind = kind
        self.kinds = kind if isinstance(kind, tuple) else (kind,)
        self._target = target
        self._own = target != "-"
        self._f: TextIO = open_lines(target, truncate)

    def write(self, item: object, record: dict[str, Any]) -> None:
        if not isinstance(item, self.kind):
            return
        self._f.write(dumps(record) + "\n")
        self._f.flush()

    def reopen(self) -> None:
        """After log rotation (SIGHUP): the file at the same path is opened again (created anew)."""
        if self._own:
            self._f.close()
            self._f = open(self._target, "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        if self._own:
            self._f.close()
