"""Compiled-rule cache: compile once per (engine version, rule digest), load afterwards."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from loguru import logger

T = TypeVar("T")


def default_cache_dir() -> Path:
    """~/.cache/stagewatch, or $XDG_CACHE_HOME/stagewatch."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stagewatch"


def cached(
    cache_dir: Path | None,
    key: str,
    build: Callable[[], T],
    save: Callable[[T, Path], None],
    load: Callable[[Path], T],
) -> T:
    """Load `key` from the cache folder, or build it and store it there (atomically)."""
    folder = cache_dir or default_cache_dir()
    path = folder / key
    try:
        if path.is_file():
            return load(path)
    except Exception as e:  # an unreadable, stale or corrupt cache file is rebuilt, never fatal
        logger.debug("rule cache {}: {}; recompiling", path, e)
    obj = build()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        os.close(fd)
        save(obj, Path(tmp))
        os.replace(tmp, path)
    except OSError as e:  # a read-only home still scans, it just compiles every time
        logger.debug("rule cache {} not written: {}", path, e)
    return obj
