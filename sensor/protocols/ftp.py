"""FTP: the control channel's commands and replies, and the data connections they announce.

The control channel announces a data channel (PASV/EPSV replies, PORT/EPRT commands) and then
says what it carries (STOR, STOU, APPE, RETR). The data connection is another TCP connection
between the same two hosts (`--workers` hash the IP pair, so both meet in one process). Captures
do not always show them in that order, so the two meet in a per-process `FtpRegistry`: whichever
comes second completes the link and the transfer becomes an object named by the command's path.
Waiting is bounded: a data connection nobody announces, or one whose command never comes, is
emitted unnamed after `WAIT` seconds of capture time, when more than `MAX_PENDING` wait, or at
the end of input; every such expiry is counted (`ftp.expired`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import ClassVar

from sensor.model import AppMeta
from sensor.names import from_bytes
from sensor.protocols.base import Wire, extractors

WAIT = 60.0  # seconds of capture time a transfer waits for its other half
MAX_PENDING = 256  # transfers waiting at once, per process
MAX_LINE = 8192
COMMAND = re.compile(rb"(?i)(USER|AUTH|FEAT|SYST|OPTS|PASS|ACCT|CLNT)[ \r\n]")
HOST_PORT = re.compile(r"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")
EPSV_PORT = re.compile(r"\((.)\1\1(\d{1,5})\1\)")
FINAL_REPLY = re.compile(r"[1-5]\d\d(?: |$)")  # not a "150-" continuation line
TRANSFERS = ("STOR", "STOU", "APPE", "RETR")
LISTINGS = ("LIST", "NLST", "MLSD")  # directory listings use a data channel too: linked, not named


@dataclass(slots=True)
class Done:
    """One direction of a finished data connection, waiting to be named."""

    wire: Wire
    d: int
    offset: int
    data: bytes
    truncated: bool
    stamp: tuple[float, int, str]


@dataclass(slots=True)
class Channel:
    """An announced data channel: the endpoint the data connection will use, and what it carries."""

    key: tuple[str, int]  # (ip, port) the data connection's responder listens on
    since: float
    command: str | None = None
    path: str | None = None
    waiting: list[Done] = field(default_factory=list)


class FtpRegistry:
    """Per process: control channels by IP pair, announced channels, data waiting for an announcement."""

    def __init__(self, stats: object) -> None:
        self.stats = stats
        self.controls: dict[frozenset[str], int] = {}
        self.channels: dict[tuple[str, int], Channel] = {}
        self.orphans: dict[tuple[str, int], list[Done]] = {}

    # -- from the control channel -------------------------------------------------------------
    def announce(self, key: tuple[str, int], now: float) -> Channel:
        self.expire(now)
        ch = Channel(key, now)
        old = self.channels.get(key)
        if old is not None:
            self._release(old.waiting, None)
        self.channels[key] = ch
        ch.waiting = self.orphans.pop(key, [])  # the data came first
        return ch

    def command(self, ch: Channel, verb: str, path: str | None) -> None:
        ch.command, ch.path = verb, path
        self._release(ch.waiting, ch)
        ch.waiting = []

    # -- from a data connection ---------------------------------------------------------------
    def done(self, key: tuple[str, int], item: Done, now: float) -> None:
        self.expire(now)
        ch = self.channels.get(key)
        if ch is not None and ch.command is not None:
            self._release([item], ch)
        elif ch is not None:
            ch.waiting.append(item)
        else:
            self.orphans.setdefault(key, []).append(item)
        if self._count() > MAX_PENDING:
            self._expire_oldest()

    # -- bounds -------------------------------------------------------------------------------
    def expire(self, now: float) -> None:
        """Emit unnamed what waited longer than WAIT seconds of capture time."""
        for key in [k for k, items in self.orphans.items() if items and items[0].stamp[0] < now - WAIT]:
            self._expired(self.orphans.pop(key))
        for key, ch in list(self.channels.items()):
            if ch.since < now - WAIT:
                if ch.waiting:
                    self._expired(ch.waiting)
                del self.channels[key]

    def flush(self) -> None:
        """End of input: whatever still waits is emitted unnamed."""
        for items in self.orphans.values():
            self._expired(items)
        self.orphans.clear()
        for ch in self.channels.values():
            if ch.waiting:
                self._expired(ch.waiting)
        self.channels.clear()

    def _count(self) -> int:
        return sum(len(v) for v in self.orphans.values()) + sum(len(c.waiting) for c in self.channels.values())

    def _expire_oldest(self) -> None:
        items = [(i.stamp[0], k) for k, v in self.orphans.items() for i in v[:1]]
        if items:
            _, key = min(items)
            self._expired(self.orphans.pop(key))

    def _expired(self, items: list[Done]) -> None:
        if items:
            self.stats.app["ftp.expired"] += len(items)  # type: ignore[attr-defined]
            self._release(items, None)

    def _release(self, items: list[Done], ch: Channel | None) -> None:
        for it in items:
            app = AppMeta("ftp", command=ch.command if ch else None, url=ch.path if ch else None)
            name = ch.path.replace("\\", "/").rsplit("/", 1)[-1] if ch and ch.path else None
            it.wire.emit(it.d, it.offset, it.data, name=name, truncated=it.truncated, app=app, stamp=it.stamp)
            it.wire.count("transfers")


def registry(wire: Wire) -> FtpRegistry:
    reg = wire.shared.get("ftp")
    if not isinstance(reg, FtpRegistry):
        reg = wire.shared["ftp"] = FtpRegistry(wire.stats)
    return reg


def pair_of(wire: Wire) -> frozenset[str]:
    """The connection's two hosts: a control channel and its data connections share them."""
    c, _, s, _ = wire.endpoints()
    return frozenset((c, s))


@extractors.register("ftp")
class Ftp:
    """The control channel: announcements, transfer commands, and the replies that carry ports."""

    name: ClassVar[str] = "ftp"
    ports: ClassVar[frozenset[int]] = frozenset({21})

    @staticmethod
    def sniff(client: bytes, server: bytes) -> bool | None:
        if client:
            if COMMAND.match(client):
                return True
            return None if len(client) < 5 and b"\n" not in client else False
        return None if server[:4] in (b"220 ", b"220-") or len(server) < 4 else False

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.reg = registry(wire)
        self.pair = pair_of(wire)
        self.reg.controls[self.pair] = self.reg.controls.get(self.pair, 0) + 1
        self.client, _, self.server, _ = wire.endpoints()
        self.current: Channel | None = None
        self.stou = False  # a STOU waits for the reply that names its file
        self.closed = False

    def parse(self, d: int) -> None:
        buf = self.wire.buf(d)
        while True:
            eol = buf.data.find(b"\n")
            if eol < 0:
                if len(buf.data) > MAX_LINE:
                    self.wire.raw(d, buf.base, "line_too_long")
                break
            line = from_bytes(bytes(buf.data[:eol]).rstrip(b"\r"))
            at = buf.base
            buf.consume(eol + 1)
            now = self.wire.stamp(d, at)[0]
            if d == 0:
                self._command(line, now)
            else:
                self._reply(line, now)
        if buf.ended and not self.closed and all(self.wire.buf(x).ended for x in (0, 1)):
            self.closed = True
            n = self.reg.controls.get(self.pair, 1) - 1
            if n:
                self.reg.controls[self.pair] = n
            else:
                self.reg.controls.pop(self.pair, None)

    def gap(self, d: int) -> None:
        self.wire.buf(d).consume(len(self.wire.buf(d).data))

    def _command(self, line: str, now: float) -> None:
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        self.wire.count("commands")
        if verb == "PORT":
            m = HOST_PORT.search(arg)
            key = self._host_port(m) if m else None
            if key is None:
                self.wire.anomaly("bad_port")
                return
            self.current = self.reg.announce(key, now)
        elif verb == "EPRT":
            parts = arg.split(arg[:1]) if arg else []
            try:
                ip = str(ipaddress.ip_address(parts[2]))
                key = (ip, int(parts[3]))
                if not 0 < key[1] < 65536:
                    raise ValueError(arg)
            except (IndexError, ValueError):
                self.wire.anomaly("bad_eprt")
                return
            self.current = self.reg.announce(key, now)
        elif verb in TRANSFERS or verb in LISTINGS:
            if self.current is None or self.current.command is not None:
                self.wire.anomaly("transfer_without_channel")
                return
            if verb == "STOU":
                self.stou = True  # the server names the file in its reply: "150 FILE: name"
                return
            self.reg.command(self.current, verb, arg.strip() or None if verb in TRANSFERS else None)

    def _reply(self, line: str, now: float) -> None:
        code = line[:3]
        if self.stou and self.current is not None and FINAL_REPLY.match(line):
            self.stou = False
            name = line.split("FILE:", 1)[1].strip() if code in ("150", "125") and "FILE:" in line else None
            self.reg.command(self.current, "STOU", name or None)
            return
        if code == "227":
            m = HOST_PORT.search(line)
            key = self._host_port(m) if m else None
            if key is None:
                self.wire.anomaly("bad_pasv")
                return
            self.current = self.reg.announce(key, now)
        elif code == "229":
            m = EPSV_PORT.search(line)
            if not m or not 0 < int(m.group(2)) < 65536:
                self.wire.anomaly("bad_epsv")
                return
            self.current = self.reg.announce((self.server, int(m.group(2))), now)

    def _host_port(self, m: re.Match[str]) -> tuple[str, int] | None:
        nums = [int(x) for x in m.groups()]
        if any(n > 255 for n in nums):
            return None
        port = nums[4] * 256 + nums[5]
        return (".".join(str(n) for n in nums[:4]), port) if port else None


__all__ = ["MAX_PENDING", "WAIT", "Done", "Ftp", "FtpRegistry", "pair_of", "registry"]
