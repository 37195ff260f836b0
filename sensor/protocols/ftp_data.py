"""FTP data connections: claimed by context (an FTP control channel between the same two hosts), each
direction one object, named once the control channel's registry links it (see protocols/ftp.py)."""

from __future__ import annotations

from typing import ClassVar

from sensor.protocols.base import Wire, extractors
from sensor.protocols.ftp import Done, Ftp, FtpRegistry, pair_of, registry


@extractors.register("ftp-data")
class FtpData:
    """A data connection between two hosts that hold an FTP control channel: one object per direction."""

    name: ClassVar[str] = "ftp-data"
    ports: ClassVar[frozenset[int]] = frozenset({20})

    @staticmethod
    def claim(wire: Wire, client: bytes, server: bytes) -> bool:
        reg = wire.shared.get("ftp")
        return isinstance(reg, FtpRegistry) and pair_of(wire) in reg.controls and not Ftp.sniff(client, server)

    @staticmethod
    def sniff(client: bytes, server: bytes) -> bool | None:
        return False  # only ever claimed by context

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.reg = registry(wire)
        _, _, ip, port = wire.endpoints()
        self.key = (ip, port)
        self.sent = [False, False]

    def parse(self, d: int) -> None:
        buf = self.wire.buf(d)
        if buf.ended and not self.sent[d]:
            self._done(d, truncated=False)

    def gap(self, d: int) -> None:
        if not self.sent[d]:
            self._done(d, truncated=True)

    def _done(self, d: int, truncated: bool) -> None:
        self.sent[d] = True
        buf = self.wire.buf(d)
        data = bytes(buf.data)
        if not data:
            return
        stamp = self.wire.stamp(d, buf.base)
        buf.consume(len(data))
        self.reg.done(self.key, Done(self.wire, d, buf.base - len(data), data, truncated, stamp), stamp[0])


__all__ = ["FtpData"]
