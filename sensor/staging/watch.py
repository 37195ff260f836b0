"""Staging folders watched with inotify (the `watchdog` package): which files are ready to scan, and when.

A file is ready once it has been closed after writing (inotify's IN_CLOSE_WRITE) or, for writers
that keep it open, once it has been quiet for `settle` seconds; so a half-written archive is
scanned whole, after its last byte. A file that changes again becomes ready again (the caller
replaces its findings). New sub-folders are followed (the watch is recursive). This module only
says which paths are ready; pipeline.py scans them.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator

from loguru import logger
from watchdog.events import (
    DirCreatedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from sensor.errors import InputError

POLL = 0.2  # seconds between looks at the pending files


class _Handler(FileSystemEventHandler):
    """inotify events -> (kind, path) on a queue the watcher thread drains."""

    def __init__(self, q: queue.Queue[tuple[str, str]]) -> None:
        self.q = q

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, DirCreatedEvent):
            self.q.put(("dir", str(event.src_path)))  # files already inside it were written before we watched it
        elif isinstance(event, FileClosedEvent):
            self.q.put(("closed", str(event.src_path)))
        elif isinstance(event, FileMovedEvent):
            self.q.put(("closed", str(event.dest_path)))  # a rename into the folder is a complete file
        elif isinstance(event, FileCreatedEvent | FileModifiedEvent):
            self.q.put(("changed", str(event.src_path)))


class Settler:
    """Paths being written, and when each is ready: closed after writing, or quiet for `settle` seconds."""

    def __init__(self, settle: float) -> None:
        self.settle = settle
        self.last: dict[str, float] = {}  # path -> last change (monotonic)
        self.ready: set[str] = set()

    def changed(self, path: str, now: float) -> None:
        self.last[path] = now
        self.ready.discard(path)

    def closed(self, path: str, now: float) -> None:
        self.last[path] = now
        self.ready.add(path)

    def due(self, now: float) -> list[str]:
        """Paths to scan now, each once per change."""
        out = [p for p, t in self.last.items() if p in self.ready or now - t >= self.settle]
        for p in out:
            del self.last[p]
            self.ready.discard(p)
        return sorted(out)


class Watcher:
    """Recursive inotify watches on `folders`; `ready()` yields paths to scan until `stop` is set."""

    def __init__(self, folders: Iterable[str], settle: float) -> None:
        self.folders = [os.path.abspath(f) for f in folders]
        for f in self.folders:
            if not os.path.isdir(f):
                raise InputError(f, "not a folder (watch takes folders)")
        self.settle = settle
        self.q: queue.Queue[tuple[str, str]] = queue.Queue()
        self.observer = Observer()

    def ready(self, stop: threading.Event) -> Iterator[str]:
        """Ready paths as they come; returns once `stop` is set (pending files are scanned first)."""
        settler = Settler(self.settle)
        handler = _Handler(self.q)
        for f in self.folders:
            try:
                self.observer.schedule(handler, f, recursive=True)
            except OSError as e:  # inotify limits, permissions
                raise InputError(f, f"cannot watch: {e.strerror or e}") from None
        self.observer.start()
        logger.info("watching {} (settle {} s)", ", ".join(self.folders), self.settle)
        try:
            while True:
                stopping = stop.is_set()
                self._drain(settler)
                now = time.monotonic()
                for path in settler.due(float("inf") if stopping else now):
                    if os.path.isfile(path) and not os.path.islink(path):
                        yield path
                if stopping:
                    return
                stop.wait(POLL)
        finally:
            self.observer.stop()
            self.observer.join(timeout=5)

    def _drain(self, settler: Settler) -> None:
        now = time.monotonic()
        while True:
            try:
                kind, path = self.q.get_nowait()
            except queue.Empty:
                return
            if kind == "closed":
                settler.closed(path, now)
            elif kind == "changed":
                settler.changed(path, now)
            else:  # a new folder: whatever a writer put in it before the watch saw it
                for root, _, files in os.walk(path):
                    for name in files:
                        settler.changed(os.path.join(root, name), now)


__all__ = ["Settler", "Watcher"]
