"""Composition root: builds the detector and sources from Settings; shared by the CLI and the API."""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterable, Iterator

from loguru import logger

from sensor.config import Settings
from sensor.detect.detector import Detector
from sensor.errors import InputError
from sensor.model import Finding
from sensor.staging.reader import HostNamer, read_file
from sensor.staging.walk import walk
from sensor.stats import RunStats

Progress = Callable[[str, int], None]


def scan_paths(
    paths: Iterable[str],
    settings: Settings | None = None,
    stats: RunStats | None = None,
    progress: Progress | None = None,
    detector: Detector | None = None,
) -> Iterator[Finding]:
    """Scan staged files and folders; yields findings as they are verified.

    Bad inputs are logged in one line each and counted in `stats`; the scan goes on.
    """
    settings = settings or Settings()
    stats = stats if stats is not None else RunStats()
    detector = detector or Detector(settings, stats)
    detector.stats = stats
    namer = HostNamer(settings.host, settings.host_from_path)
    for root in paths:
        for path, _st in walk(root, stats):
            try:
                obj = read_file(path, root, namer(path))
            except InputError as e:
                stats.skipped[e.reason] += 1
                logger.warning("{}", e)
                continue
            stats.files += 1
            stats.bytes += len(obj.data)
            try:
                yield from detector.scan(obj)
            except Exception as e:  # the boundary for one file: log where, count, go on
                stats.errors["scan"] += 1
                logger.opt(exception=e).debug("traceback")
                logger.error("{}: internal error while scanning: {}: {}", path, type(e).__name__, e)
            finally:
                if isinstance(obj.data, mmap.mmap):
                    obj.data.close()
            if progress is not None:
                progress(path, obj.origin.size)
