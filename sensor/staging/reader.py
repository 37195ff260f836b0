"""A staged file read into a ContentObject with its FileOrigin (owner, mtime, host)."""

from __future__ import annotations

import mmap
import os
import pwd
import re
import socket
import stat

from loguru import logger

from sensor.errors import InputError
from sensor.model import ContentObject, FileOrigin
from sensor.stats import RunStats

# Files above this are mapped rather than read; below it a truncation mid-scan cannot SIGBUS us.
READ_LIMIT = 256 * 1024 * 1024


def owner_of(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


UNNAMED_HOST = "unknown"  # --host-from-path matched nothing: never this machine's name (case evidence)


class HostNamer:
    """`host.name` for a path: --host-name, else a group of --host-from-path, else this machine's name.

    A path the pattern does not match gets host "unknown", is counted (`skipped` is not: the file is
    scanned) under stats.host["unnamed_files"], and the first one of the run is a warning naming
    the path and the pattern.
    """

    def __init__(self, host: str | None, pattern: str | None, stats: RunStats | None = None) -> None:
        self.given_name = host
        self.fixed = host or socket.gethostname()
        try:
            self.regex = re.compile(pattern) if pattern else None
        except re.error as e:
            raise ValueError(f"--host-from-path {pattern!r}: {e}") from None
        if self.regex is not None and self.regex.groups == 0:
            raise ValueError("--host-from-path needs a capturing group, e.g. '(?:^|/)cases/([^/]+)/'")
        self.stats = stats
        self.unmatched = 0

    def given(self, path: str) -> str | None:
        """The name the command line gives `path` (--host-name, or a --host-from-path match), None when it gives
        none: host-event records without a host of their own take it (never this machine's name)."""
        if self.regex is None:
            return self.given_name
        m = self.regex.search(path)
        return ((m.group("host") if "host" in self.regex.groupindex else m.group(1)) if m else None) or None

    def __call__(self, path: str) -> str:
        if self.regex is None:
            return self.fixed
        m = self.regex.search(path)
        name = (m.group("host") if "host" in self.regex.groupindex else m.group(1)) if m else None
        if name:
            return name
        self.unmatched += 1
        if self.stats is not None:
            self.stats.host["unnamed_files"] += 1
        if self.unmatched == 1:
            logger.warning(
                "{}: --host-from-path {!r} does not match this path; host.name is {!r} for it and every other "
                "path it misses (counted as unnamed_files)",
                path,
                self.regex.pattern,
                UNNAMED_HOST,
            )
        return UNNAMED_HOST


def read_file(path: str, root: str, host: str) -> ContentObject:
    """Open, check and read one regular file; InputError names the file and the problem."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError(path, "vanished during the scan", "vanished") from None
    except PermissionError:
        raise InputError(path, "permission denied", "permission") from None
    except OSError as e:
        raise InputError(path, e.strerror or str(e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(path, "not a regular file", "special")
        if st.st_size == 0:
            raise InputError(path, "empty file (0 bytes)", "empty")
        if st.st_size > READ_LIMIT:
            data: bytes | mmap.mmap = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        else:
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read()
    except OSError as e:
        raise InputError(path, e.strerror or str(e)) from None
    finally:
        os.close(fd)
    origin = FileOrigin(path, st.st_size, st.st_mtime, owner_of(st.st_uid), host, root)
    return ContentObject(origin=origin, data=data, name=os.path.basename(path))
