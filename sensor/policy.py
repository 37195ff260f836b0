"""Where staging happens and which names are sensitive: asked by detect, staging and hostevents."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

# Runs of path components (lower-case) that mark a staging folder, matched anywhere in the
# path so a tree copied off a host (WS-01/Users/bob/AppData/Local/Temp/x.gz) still counts.
STAGING_COMPONENTS: tuple[tuple[str, ...], ...] = (
    ("temp",),
    ("tmp",),
    ("appdata",),
    ("programdata",),
    ("users", "public"),
    ("dev", "shm"),
    ("var", "tmp"),
)
LOG_COMPONENTS: tuple[tuple[str, ...], ...] = (("var", "log"),)

_SPLIT = re.compile(r"[\\/]+")


def path_components(path: str) -> list[str]:
    """Lower-cased components of a Windows or POSIX path."""
    return [c.lower() for c in _SPLIT.split(path) if c]


def _deepest(parts: list[str], runs: Iterable[tuple[str, ...]]) -> int:
    """Index just past the deepest occurrence of any run in `parts`, or -1."""
    best = -1
    for run in runs:
        n = len(run)
        for i in range(len(parts) - n + 1):
            if tuple(parts[i : i + n]) == run:
                best = max(best, i + n)
    return best


def folder_kind(path: str) -> str | None:
    """ "staging", "log" or None for the folders of `path` (the file name excluded).

    The deepest match wins, so /tmp/case/var/log/syslog.2.gz is a log and
    /var/log/../tmp/x is staging.
    """
    parts = path_components(path)[:-1]
    staging, log = _deepest(parts, STAGING_COMPONENTS), _deepest(parts, LOG_COMPONENTS)
    if staging < 0 and log < 0:
        return None
    return "staging" if staging > log else "log"


def is_staging_path(path: str) -> bool:
    """True when a folder of the path is a temp-like staging location."""
    return folder_kind(path) == "staging"


def is_log_path(path: str) -> bool:
    """True under /var/log, where rotated logs are compressed as a matter of course."""
    return folder_kind(path) == "log"


class SensitiveNames:
    """Case-insensitive glob match of member base names against the sensitive-name list."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(p.lower() for p in patterns)
        self._exact = {p for p in self.patterns if not any(c in p for c in "*?[")}
        self._globs = [p for p in self.patterns if p not in self._exact]

    def match(self, names: Iterable[str]) -> tuple[str, ...]:
        """The names (as given) whose base name matches a pattern, in order, without repeats."""
        hits: list[str] = []
        for name in names:
            base = path_components(name)[-1] if name else ""
            matched = base and (base in self._exact or any(fnmatch.fnmatchcase(base, g) for g in self._globs))
            if matched and name not in hits:
                hits.append(name)
        return tuple(hits)
