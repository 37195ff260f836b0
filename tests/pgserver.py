"""A real, throwaway PostgreSQL server for the store tests: Debian's postgresql binaries, a cluster in a
temporary folder, trust authentication on 127.0.0.1 and a free port. As root the server runs as the
`postgres` user (PostgreSQL refuses root). Missing binaries skip the tests with the reason; under CI
(CI=true) they fail instead."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def missing() -> str | None:
    """Why a server cannot start here, or None."""
    if _bin("initdb") is None or _bin("pg_ctl") is None:
        return "PostgreSQL server binaries are not installed (Debian package postgresql; make test installs it)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'stagewatch[postgres]')"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start PostgreSQL as another user"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server() -> Iterator[str]:
    """Yields a SQLAlchemy URL of a fresh database; the cluster is deleted afterwards."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    assert initdb and pg_ctl
    root = tempfile.mkdtemp(prefix="sw-pg-")
    data, sock = os.path.join(root, "data"), os.path.join(root, "sock")
    os.makedirs(sock)
    as_user: list[str] = []
    user = "stagewatch"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, cwd=root)

    run(initdb, "-D", data, "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync")
    opts = f"-k {sock} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(pg_ctl, "-D", data, "-o", opts, "-w", "-l", os.path.join(root, "log"), "start")
    try:
        run(_bin("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", user, "stagewatch")
        yield f"postgresql+psycopg://{user}@127.0.0.1:{port}/stagewatch"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", data, "-m", "fast", "-w", "stop"], capture_output=True, cwd=root)
        shutil.rmtree(root, ignore_errors=True)


__all__ = ["missing", "server"]
