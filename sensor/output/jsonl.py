"""JSON lines to a file or stdout, one finding per line, flushed per line so nothing is lost on exit."""

from __future__ import annotations

import json
import sys
from typing import Any, ClassVar, TextIO

from sensor.errors import InputError
from sensor.model import Finding
from sensor.output.base import sinks


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


@sinks.register("jsonl")
class JsonlSink:
    """`--jsonl`, `--flows` or `--objects FILE|-`: one kind of record; FILE is rewritten, `-` is stdout."""

    name: ClassVar[str] = "jsonl"

    def __init__(self, target: str, kind: type | tuple[type, ...] = Finding) -> None:
        self.kind = kind
        self._target = target
        self._own = target != "-"
        try:
            self._f: TextIO = open(target, "w", encoding="utf-8") if self._own else sys.stdout  # noqa: SIM115
        except OSError as e:
            raise InputError(target, f"cannot write JSON lines: {e.strerror or e}") from None

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
