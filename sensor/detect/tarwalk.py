"""Streaming tar header walk: member names and sizes from a byte stream fed in pieces."""

from __future__ import annotations

from sensor.names import from_bytes

BLOCK = 512
_MAGICS = (b"ustar\x0000", b"ustar  \x00")


def header_checksum_ok(h: bytes) -> bool:
    """The header's octal checksum equals the byte sum with the checksum field read as spaces."""
    try:
        want = int(h[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    total = sum(h[:148]) + 32 * 8 + sum(h[156:BLOCK])
    return want == total


def parse_size(field: bytes) -> int | None:
    """Octal size, or GNU base-256 for large files; None when unreadable."""
    if field and field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    text = field.replace(b"\x00", b" ").strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        return None


def header_name(h: bytes) -> str:
    name = h[0:100].split(b"\x00", 1)[0]
    if h[257:265] == _MAGICS[0]:
        prefix = h[345:500].split(b"\x00", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return from_bytes(name)


_TYPES = frozenset(b"0123456789LKxgADSVMNE\x00")


def _numeric(field: bytes) -> bool:
    """An octal field (digits, then spaces/NULs) or GNU base-256 (first byte 0x80 or 0xFF)."""
    if field[:1] in (b"\x80", b"\xff"):
        return True
    text = field.rstrip(b" \x00").lstrip(b" ")
    return all(0x30 <= c <= 0x37 for c in text)


def is_tar_header(h: bytes) -> bool:
    """Magic, checksum, octal numeric fields, a known type and a printable name: not just 8 magic bytes."""
    if len(h) < BLOCK or h[257:265] not in _MAGICS or not header_checksum_ok(h):
        return False
    if not all(_numeric(h[a:b]) for a, b in ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148))):
        return False
    name = h[0:100].split(b"\x00", 1)[0]
    return h[156] in _TYPES and bool(name) and all(c >= 0x20 for c in name)


class TarWalker:
    """Feed bytes; collects names of tar members until the end blocks, a bad header or `max_names`."""

    def __init__(self, max_names: int = 1000) -> None:
        self.max_names = max_names
        self.names: list[str] = []
        self.sizes = 0
        self.headers = 0
        self.done = False  # end-of-archive seen, or not a tar stream
        self.ok = True  # every header seen had a valid checksum
        self.position = 0  # bytes consumed
        self._buf = bytearray()
        self._skip = 0
        self._long: str | None = None  # GNU 'L' / pax path for the next member
        self._pending_long: int = 0  # bytes of a long-name payload still to read
        self._long_buf = bytearray()

    def feed(self, data: bytes) -> None:
        mv = memoryview(data)
        while mv and not self.done:
            if self._skip:
                take = min(self._skip, len(mv))
                if self._pending_long:
                    n = min(self._pending_long, take)
                    self._long_buf += mv[:n]
                    self._pending_long -= n
                self._skip -= take
                self.position += take
                mv = mv[take:]
                if not self._skip and self._long_buf:
                    self._finish_long()
                continue
            need = BLOCK - len(self._buf)
            self._buf += mv[:need]
            self.position += min(need, len(mv))
            mv = mv[need:]
            if len(self._buf) == BLOCK:
                self._header(bytes(self._buf))
                self._buf.clear()

    def _finish_long(self) -> None:
        raw = bytes(self._long_buf)
        self._long_buf.clear()
        if self._long == "pax":
            self._long = None
            for rec in raw.split(b"\n"):
                _, _, kv = rec.partition(b" ")
                if kv.startswith(b"path="):
                    self._long = from_bytes(kv[5:])
        else:
            self._long = from_bytes(raw.split(b"\x00", 1)[0])

    def _header(self, h: bytes) -> None:
        if h == b"\x00" * BLOCK:
            self.done = True
            return
        if not is_tar_header(h):
            self.ok = False
            self.done = True
            return
        self.headers += 1
        size = parse_size(h[124:136])
        if size is None:
            self.ok = False
            self.done = True
            return
        kind = h[156:157]
        padded = (size + BLOCK - 1) // BLOCK * BLOCK
        if kind in (b"L", b"x"):
            self._long = "pax" if kind == b"x" else "gnu"
            self._pending_long = min(size, 64 * 1024)
        elif kind not in (b"g", b"K"):
            name = self._long or header_name(h)
            self._long = None
            self.sizes += size
            if len(self.names) < self.max_names:
                self.names.append(name)
        self._skip = padded
