"""Which host-event parser reads a file, by content; and a zip that holds one such file (OTRF, SIEM exports).

A zip is opened only when its members are few and the first one sniffs as telemetry, so a staged
archive still goes to the detector as the compressed member it is.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace

from sensor.errors import InputError
from sensor.hostevents.base import ALIASES, HEAD_BYTES, parsers
from sensor.model import HostEvent
from sensor.stats import RunStats

ZIP_MAGIC = b"PK\x03\x04"
MAX_ZIP_MEMBERS = 4  # exports hold one file (and maybe a readme); more is an archive to scan
MAX_MEMBER = 4 << 30  # bytes extracted from a telemetry zip


@dataclass(frozen=True, slots=True)
class Telemetry:
    """A file a parser claimed; `member` names the zip member that holds the records."""

    parser: str
    member: str | None = None


def _claim(head: bytes, path: str) -> str | None:
    ordered = sorted(parsers.items(), key=lambda kv: getattr(kv[1], "priority", 50))
    for name, cls in ordered:
        try:
            if cls.sniff(head, path):
                return name
        except Exception:  # noqa: BLE001 - a sniffer must never stop the walk; it just does not claim
            continue
    return None


def which(path: str, head: bytes) -> Telemetry | None:
    """The parser for `path` (whose first bytes are `head`), or None when it is not host telemetry."""
    name = _claim(head, path)
    if name is not None:
        return Telemetry(name)
    if not head.startswith(ZIP_MAGIC):
        return None
    try:
        with zipfile.ZipFile(path) as z:
            infos = [i for i in z.infolist() if not i.filename.endswith("/")]
            if not 0 < len(infos) <= MAX_ZIP_MEMBERS or infos[0].flag_bits & 1:
                return None
            with z.open(infos[0]) as m:
                inner = m.read(HEAD_BYTES)
    except Exception:  # noqa: BLE001 - zipfile raises what it likes on a hostile archive; the sniffer only declines
        return None
    name = _claim(inner, infos[0].filename)
    return Telemetry(name, infos[0].filename) if name else None


def read(path: str, what: Telemetry, stats: RunStats, tz: dt.tzinfo) -> Iterator[HostEvent]:
    """The HostEvents of a claimed file (a zip member is extracted to a temporary file first)."""
    parser = parsers.get(what.parser)()
    stats.host["files"] += 1
    stats.host[f"files.{what.parser}"] += 1
    if what.member is None:
        yield from parser.parse(path, stats, tz)
        return
    tmp = tempfile.mkdtemp(prefix="stagewatch-zip-")
    try:
        target = os.path.join(tmp, "member")
        try:
            with zipfile.ZipFile(path) as z, z.open(what.member) as src, open(target, "wb") as dst:
                copied = 0
                while chunk := src.read(1 << 20):
                    copied += len(chunk)
                    if copied > MAX_MEMBER:
                        raise InputError(path, f"{what.member} is larger than {MAX_MEMBER >> 30} GiB")
                    dst.write(chunk)
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001 - zipfile's errors on a hostile archive: one line naming it
            raise InputError(path, f"cannot extract {what.member!r}: {type(e).__name__}: {e}") from None
        name = f"{path}!{what.member}"
        ALIASES[target] = name
        try:
            for he in parser.parse(target, stats, tz):
                yield replace(he, source=name)
        except InputError as e:
            raise InputError(name, e.what, e.reason) from None
    finally:
        ALIASES.pop(os.path.join(tmp, "member"), None)
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["Telemetry", "read", "which"]
