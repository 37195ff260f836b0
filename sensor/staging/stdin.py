"""`stagewatch scan -`: standard input spooled to a file, so a capture, a log or a staged file piped in is
scanned like any other path (`tcpdump -w - | stagewatch scan -`, `zcat day1.pcap.gz | stagewatch scan -`).

The file is named by its content's SHA-256 under the cache folder, not under /tmp: a path in a staging
folder would make every member piped in a staging alert, and a content name keeps `event.id` the same
when the same bytes are piped in again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from sensor.errors import InputError

CHUNK = 1 << 20


def default_spool_dir() -> Path:
    """Where piped input waits while it is scanned (beside the compiled-rule cache)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "stagewatch" / "stdin"


def spool(folder: Path, source: BinaryIO | None = None) -> Path:
    """Copy `source` (standard input) to `folder`/<sha256>; InputError when it is empty or cannot be written."""
    src = source if source is not None else sys.stdin.buffer
    try:
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with tempfile.NamedTemporaryFile(dir=folder, delete=False) as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if size == 0:
            os.unlink(out.name)
            raise InputError("-", "standard input is empty")
        target = folder / digest.hexdigest()
        shutil.move(out.name, target)
    except OSError as e:
        raise InputError("-", f"cannot spool standard input to {folder}: {e.strerror or e}") from None
    return target
