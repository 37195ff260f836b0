"""Real faults on a real Dask cluster: worker plugins that SIGKILL a worker or the driver at a chosen task.

Each fault fires once across all worker processes (an O_EXCL marker file), so the restarted worker and
the rescheduled task run undisturbed."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin


def claim(marker: Path) -> bool:
    """True for the first process to create the marker, in any process on this machine."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def is_ours(key: Any) -> bool:
    return str(key).startswith("stagewatch-")


class KillWorker(WorkerPlugin):
    """SIGKILL this worker process as a stagewatch task starts (`at="start"`) or once it has its result
    but before the scheduler hears of it (`at="end"`)."""

    def __init__(self, marker: Path, at: str) -> None:
        self.marker, self.at = marker, at

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        hit = finish == "executing" if self.at == "start" else (start, finish) == ("executing", "memory")
        if hit and is_ours(key) and claim(self.marker):
            os.kill(os.getpid(), signal.SIGKILL)


class KillDriver(WorkerPlugin):
    """SIGKILL the driver (its pid in a file) from a worker starting a task, once the driver's store
    records a finished segment: the run dies with some segments done and this one not."""

    def __init__(self, marker: Path, pid_file: Path, db: Path) -> None:
        self.marker, self.pid_file, self.db = marker, pid_file, db

    def _done(self) -> int:
        try:
            with sqlite3.connect(self.db, timeout=5) as conn:
                return conn.execute("SELECT count(*) FROM segments").fetchone()[0]
        except sqlite3.Error:
            return 0  # the driver has not created the schema yet

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish != "executing" or not is_ours(key) or self.marker.exists():
            return
        deadline = time.monotonic() + 60
        while self._done() == 0 and time.monotonic() < deadline:
            if self.marker.exists():
                return
            time.sleep(0.05)
        if self._done() and claim(self.marker):
            os.kill(int(self.pid_file.read_text()), signal.SIGKILL)
