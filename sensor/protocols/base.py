"""The extractor seam: one class per application protocol, registered by name.

A session (protocols/session.py) owns a TCP connection's two directions and, once the client has
spoken, asks each registered extractor whether the bytes are its protocol (content first, ports
second). The chosen extractor parses both directions out of `DirBuffer`s and hands application
objects back through the `Wire`; when the bytes stop making sense it asks for raw scanning from a
stream offset on, so nothing it cannot parse goes unscanned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Protocol

from sensor.config import Limits
from sensor.model import AppMeta, Format, NetworkOrigin
from sensor.registry import Registry
from sensor.stats import RunStats


class DirBuffer:
    """One direction's unparsed bytes: `data[0]` is stream offset `base`."""

    __slots__ = ("data", "base", "ended", "budget")

    def __init__(self, budget: object) -> None:
        self.data = bytearray()
        self.base = 0
        self.ended = False  # no more bytes will come (FIN, RST, idle, depth, end of input)
        self.budget = budget  # the flow table's Budget: buffered bytes count against the memcap

    @property
    def end(self) -> int:
        """Stream offset just past the buffered bytes."""
        return self.base + len(self.data)

    def append(self, payload: bytes) -> None:
        self.data += payload
        self.budget.used += len(payload)  # type: ignore[attr-defined]

    def consume(self, n: int) -> None:
        """Forget the first `n` buffered bytes."""
        n = min(n, len(self.data))
        if n > 0:
            del self.data[:n]
            self.base += n
            self.budget.used -= n  # type: ignore[attr-defined]

    def restart(self, offset: int) -> None:
        """Drop everything and continue at stream offset `offset` (after a gap)."""
        self.budget.used -= len(self.data)  # type: ignore[attr-defined]
        self.data = bytearray()
        self.base = offset


class Wire(Protocol):
    """What a session offers its extractor."""

    limits: Limits
    stats: RunStats
    shared: dict[str, object]  # per-process state shared by extractors (one dict per scanner)
    origin: Callable[[int], NetworkOrigin]  # direction d's endpoints and flow (ts: the flow's start)

    def endpoints(self) -> tuple[str, int, str, int]: ...

    def buf(self, d: int) -> DirBuffer: ...

    def emit(
        self,
        d: int,
        offset: int,
        data: bytes,
        *,
        name: str | None = None,
        truncated: bool = False,
        layers: tuple[str, ...] = (),
        app: AppMeta | None = None,
        declared: Format | None = None,
        layer_offset: int | None = None,
        index: int | None = None,
        stamp: tuple[float, int, str] | None = None,
        scan: bool = True,
        found_alike: set[str] | None = None,
    ) -> int: ...

    def next_index(self, d: int) -> int: ...

    def stamp(self, d: int, offset: int) -> tuple[float, int, str]: ...

    def raw(
        self,
        d: int,
        offset: int,
        why: str | None,
        replay: bytes = b"",
        stamp: tuple[float, int, str] | None = None,
        found_alike: set[str] | None = None,
    ) -> None: ...

    def anomaly(self, what: str) -> None: ...

    def count(self, what: str, n: int = 1) -> None: ...


class Extractor(Protocol):
    """Parses one protocol from both directions of a connection; d 0 is client to server."""

    name: ClassVar[str]
    ports: ClassVar[frozenset[int]]

    @staticmethod
    def sniff(client: bytes, server: bytes) -> bool | None:
        """True: this protocol; False: not it; None: too few bytes to say yet.

        An extractor may also define `claim(wire, client, server) -> bool`, asked before any
        sniff: a connection that another connection announced (an FTP data channel) is claimed
        by context, whatever its bytes look like.
        """
        ...

    def parse(self, d: int) -> None:
        """New bytes in direction d's buffer (or it ended): consume what can be parsed."""
        ...

    def gap(self, d: int) -> bool | None:
        """Bytes were lost in direction d: flush what was being built; raw scanning takes over, unless this
        returns True (the extractor goes on at the first byte past the gap and checks what it finds there)."""
        ...


extractors: Registry[type] = Registry("extractor")


def discard_ciphertext(wire: Wire) -> None:
    """After a STARTTLS the server accepted, both directions are ciphertext: counted, neither parsed nor scanned
    (as Zeek and Suricata do); SMTP, IMAP and POP3 call this."""
    for d in (0, 1):
        buf = wire.buf(d)
        wire.count("encrypted_bytes", len(buf.data))
        buf.consume(len(buf.data))


__all__ = ["DirBuffer", "Extractor", "Wire", "discard_ciphertext", "extractors"]
