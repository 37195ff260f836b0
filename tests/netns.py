"""Real programs talking over loopback inside a throwaway network namespace, captured by tcpdump.

`loopback_capture` gives a namespace whose `lo` carries a client address inside home_net (10.0.0.10) and a
server address outside it (203.0.113.80), so what the client sends is outbound; it yields a function that runs
a command inside the namespace, and when the block ends the capture is in `pcap`. Needs root, iproute2 and
tcpdump (`missing` says which is absent, for conftest.need)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

CLIENT, SERVER = "10.0.0.10", "203.0.113.80"


def missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root for ip netns and tcpdump"
    for tool in ("ip", "tcpdump"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make test installs iproute2 and tcpdump)"
    return None


@contextmanager
def loopback_capture(pcap: Path, bpf: str) -> Iterator[Callable[..., subprocess.CompletedProcess]]:
    """A namespace with CLIENT and SERVER on its loopback, tcpdump writing `pcap` (filter `bpf`) while the block
    runs; yields `inside(argv, **run_kwargs)`, subprocess.run inside the namespace."""
    ns = f"sw-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    enter = ["ip", "netns", "exec", ns]

    def inside(argv: Sequence[str], **kw: object) -> subprocess.CompletedProcess:
        return subprocess.run([*enter, *argv], **kw)  # type: ignore[call-overload]

    try:
        inside(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
        for addr in (CLIENT, SERVER):
            inside(["ip", "addr", "add", f"{addr}/32", "dev", "lo"], check=True, capture_output=True)
        # --immediate-mode: packets still in the ring when tcpdump is stopped would be lost otherwise
        dump = subprocess.Popen(
            [*enter, "tcpdump", "-i", "lo", "-U", "--immediate-mode", "-w", str(pcap), bpf],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert dump.stderr is not None
            dump.stderr.readline()  # "listening on lo ...": capturing from here
            yield inside
            time.sleep(0.3)
        finally:
            dump.send_signal(signal.SIGINT)
            dump.wait(timeout=10)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
