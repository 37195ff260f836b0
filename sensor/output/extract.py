"""`--extract DIR`: carved members written by their sha256, never by a name the traffic chose.

DIR/ab/abcdef... (the first two hex digits as a folder, as git and Suricata's filestore do), written
to a temporary name and renamed, so parallel workers and re-scans never leave a half-written file and
a member seen twice is written once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from loguru import logger

from sensor.errors import InputError
from sensor.model import Buffer
from sensor.stats import RunStats


class MemberFiles:
    """Writes each carved member once, under its sha256."""

    def __init__(self, root: Path, stats: RunStats) -> None:
        self.root = Path(root)
        self.stats = stats
        self._warned = False
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(str(root), f"cannot create the extraction folder: {e.strerror or e}") from None
        if not os.access(self.root, os.W_OK):
            raise InputError(str(root), "the extraction folder is not writable")

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put(self, sha256: str, data: Buffer) -> None:
        """Write `data` as DIR/<sha256[:2]>/<sha256> unless it is there already."""
        target = self.path_of(sha256)
        if target.exists():
            return
        try:
            target.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
            self.stats.app["extracted"] += 1
        except OSError as e:
            self.stats.errors["extract"] += 1
            if not self._warned:
                self._warned = True
                logger.error("{}: cannot write carved member {}: {}", self.root, sha256, e.strerror or e)


__all__ = ["MemberFiles"]
