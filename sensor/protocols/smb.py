"""SMB2/3 (MS-SMB2) over TCP 445 and NetBIOS 139: files written to and read from shares, as objects.

Each NetBIOS session message holds one SMB2 message or a compound of them (NextCommand). TREE_CONNECT names the
share, CREATE the file (UTF-16 names: a lone surrogate is kept, as names from Windows logs are), WRITE requests
and READ responses carry its bytes at offsets, CLOSE (its request and its response both seen) or the end of
the connection ends it: the written bytes are an object from the client (outbound when it writes from inside to
outside), the read bytes one from the server, named `\\\\server\\share\\path`. A request and its response are
paired by MessageId, in whichever order the two directions arrive; in a related compound a FileId of all ones
is the preceding CREATE's. SMB3 encrypted messages (transform header) and compressed ones are counted, not
read; SMB1 is counted, and an SMB1 NEGOTIATE answered in SMB2 is followed. Bytes lost in a direction leave holes
in the files being moved; reading resumes at the next message header.
"""

from __future__ import annotations

import re
import struct
from collections import OrderedDict
from dataclasses import replace
from typing import ClassVar

from sensor.model import AppMeta
from sensor.protocols.base import Wire, extractors
from sensor.protocols.identity import Identities, ntlm
from sensor.protocols.smb_files import Pieces

SMB2, SMB1, TRANSFORM, COMPRESSED = b"\xfeSMB", b"\xffSMB", b"\xfdSMB", b"\xfcSMB"
HEADER = struct.Struct("<4sHHIHHIIQIIQ16s")  # 64 bytes
RESPONSE, ASYNC, RELATED = 0x1, 0x2, 0x4
NEGOTIATE, SESSION_SETUP, TREE_CONNECT, CREATE, CLOSE, READ, WRITE = 0x0, 0x1, 0x3, 0x5, 0x6, 0x8, 0x9
PENDING = 0x00000103  # STATUS_PENDING: an interim answer, the final one follows
ALL_ONES = b"\xff" * 16
MAX_PENDING = 4096  # requests (and early responses) waiting for their other half
MAX_FILES = 1024  # files open at once in one connection
RESYNC = re.compile(rb"\x00[\x00-\xff]{3}[\xfe\xfd\xfc\xff]SMB")

FileKey = bytes | tuple[str, int]  # a FileId, or ("mid", m): the file a related compound's CREATE m opens


def utf16(raw: bytes) -> str:
    """A UTF-16LE name; unpaired surrogates kept (names.to_bytes writes them back with surrogatepass)."""
    return raw[: len(raw) & ~1].decode("utf-16-le", "surrogatepass")


class File:
    """A file opened in the connection: its name and the pieces each direction moved."""

    __slots__ = ("name", "written", "read", "closing")

    def __init__(self, cap: int) -> None:
        self.name: str | None = None
        self.written = Pieces(cap)
        self.read = Pieces(cap)
        self.closing = False


@extractors.register("smb")
class Smb:
    """SMB2/3: files by CREATE, WRITE, READ and CLOSE, in both directions."""

    name: ClassVar[str] = "smb"
    ports: ClassVar[frozenset[int]] = frozenset({445, 139})

    @staticmethod
    def sniff(client: bytes, server: bytes) -> bool | None:
        if len(client) < 8:
            return None
        if client[0] == 0x81:  # a NetBIOS session request (port 139), then SMB
            return int.from_bytes(client[1:4], "big") <= 512
        return client[0] == 0 and client[4:8] in (SMB2, SMB1)

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.cap = wire.limits.stream_depth
        self.trees: dict[int, str] = {}
        self.files: OrderedDict[FileKey, File] = OrderedDict()
        self.requests: OrderedDict[int, tuple[int, object]] = OrderedDict()  # MessageId -> (command, what)
        self.early: OrderedDict[int, tuple[int, int, bytes, int, tuple[float, int, str]]] = OrderedDict()
        self.created: dict[int, bytes] = {}  # CREATE MessageId -> the FileId its response gave
        self.server = wire.endpoints()[2]
        self.resync = [False, False]
        self.compound_create: FileKey | None = None
        found = wire.shared.get("identities")
        self.identities = found if isinstance(found, Identities) else None

    # -- Extractor ----------------------------------------------------------------------------
    def parse(self, d: int) -> None:
        buf = self.wire.buf(d)
        while True:
            if self.resync[d] and not self._resync(d):
                break
            if len(buf.data) < 4:
                break
            kind, size = buf.data[0], int.from_bytes(buf.data[1:4], "big")
            if kind != 0:
                if kind not in (0x81, 0x82, 0x83, 0x84, 0x85):
                    self.wire.anomaly("not_netbios")
                    self.wire.raw(d, buf.base, "not_smb")
                    return
                if len(buf.data) < 4 + size:
                    break
                buf.consume(4 + size)  # session request, answers and keep-alives
                continue
            if len(buf.data) < 4 + size and not (buf.ended and len(buf.data) >= 4 + 64):
                break
            at = buf.base
            msg = bytes(buf.data[4 : 4 + size])
            buf.consume(4 + len(msg))
            if not self._message(d, msg, at + 4):
                self.wire.raw(d, buf.base, "not_smb")
                return
        if self.wire.buf(0).ended and self.wire.buf(1).ended:
            self._end()

    def gap(self, d: int) -> bool:
        self.resync[d] = True
        self.wire.count("resyncs")
        return True

    def _resync(self, d: int) -> bool:
        """After lost bytes: skip to the next NetBIOS header that holds an SMB message."""
        buf = self.wire.buf(d)
        m = RESYNC.search(buf.data)
        if m is None:
            buf.consume(max(0, len(buf.data) - 7))
            return False
        buf.consume(m.start())
        self.resync[d] = False
        return True

    # -- messages -----------------------------------------------------------------------------
    def _message(self, d: int, msg: bytes, at: int) -> bool:
        """One session message; False when it is not SMB."""
        magic = msg[:4]
        if magic == TRANSFORM:
            self.wire.count("encrypted_messages")
            self.wire.count("encrypted_bytes", len(msg))
            return True
        if magic == COMPRESSED:
            self.wire.count("compressed_messages")
            return True
        if magic == SMB1:
            self.wire.count("smb1_messages")
            return True
        if magic != SMB2:
            return False
        off = 0
        self.compound_create = None
        while off + 64 <= len(msg):
            fields = HEADER.unpack_from(msg, off)
            if fields[0] != SMB2:
                self.wire.anomaly("bad_compound")
                break
            status, command, flags, nxt, mid, tree = fields[3], fields[4], fields[6], fields[7], fields[8], fields[10]
            end = off + nxt if nxt else len(msg)
            if end > len(msg) or (nxt and nxt < 64):
                self.wire.anomaly("bad_next_command")
                end = len(msg)
            stamp = self.wire.stamp(d, at + off)
            if flags & RESPONSE:
                if not (flags & ASYNC and status == PENDING):
                    self._response(command, status, mid, tree, msg, off, end, stamp)
            else:
                self._request(command, flags, mid, tree, msg, off, end, stamp)
            if not nxt:
                break
            off += nxt
        return True

    def _request(self, command: int, flags: int, mid: int, tree: int, msg: bytes, off: int, end: int, stamp) -> None:  # type: ignore[no-untyped-def]
        body = off + 64
        self.wire.count("requests")
        what: object = None
        if command == SESSION_SETUP and end - body >= 24:
            if self.identities is not None:  # the NTLMSSP AUTHENTICATE names the client's workstation
                b_off, b_len = struct.unpack_from("<HH", msg, body + 12)
                origin = self.wire.origin(0)
                origin = replace(origin, ts=stamp[0], packet=stamp[1], source=stamp[2])
                found = ntlm.identity(msg[off + b_off : off + b_off + b_len], origin, "SMB SESSION_SETUP")
                if found is not None:
                    self.identities.add(found)
            return
        if command == TREE_CONNECT and end - body >= 8:
            p_off, p_len = struct.unpack_from("<HH", msg, body + 4)
            what = utf16(msg[off + p_off : off + p_off + p_len])
        elif command == CREATE and end - body >= 56:
            n_off, n_len = struct.unpack_from("<HH", msg, body + 44)
            name = utf16(msg[off + n_off : off + n_off + n_len]).lstrip("\\")
            share = self.trees.get(tree) or f"\\\\{self.server}\\tree-{tree}"
            what = f"{share}\\{name}" if name else share
            self.compound_create = ("mid", mid)
        elif command == WRITE and end - body >= 48:
            d_off, length, offset = struct.unpack_from("<HIQ", msg, body + 2)
            key = self._key(msg[body + 16 : body + 32], flags)
            data = msg[off + d_off : off + d_off + length]
            if len(data) < length:
                self.wire.count("write_cut_off")
            self._file(key).written.add(offset, data, stamp)
            self.wire.count("write_bytes", len(data))
        elif command == READ and end - body >= 48:
            length, offset = struct.unpack_from("<IQ", msg, body + 4)
            what = (self._key(msg[body + 16 : body + 32], flags), offset)
        elif command == CLOSE and end - body >= 24:
            key = self._key(msg[body + 8 : body + 24], flags)
            self._file(key).closing = True
            what = key
        else:
            return
        self._pend(mid, command, what)

    def _key(self, file_id: bytes, flags: int) -> FileKey:
        if file_id == ALL_ONES and flags & RELATED and self.compound_create is not None:
            created = self.created.get(self.compound_create[1])  # type: ignore[index]
            return created if created is not None else self.compound_create
        return file_id

    def _pend(self, mid: int, command: int, what: object) -> None:
        early = self.early.pop(mid, None)
        if early is not None:
            self.requests[mid] = (command, what)
            self._response(*early)
            return
        self.requests[mid] = (command, what)
        if len(self.requests) > MAX_PENDING:
            self.requests.popitem(last=False)
            self.wire.anomaly("unanswered_requests")

    def _response(self, command: int, status: int, mid: int, tree: int, msg: bytes, off: int, end: int, stamp) -> None:  # type: ignore[no-untyped-def]
        request = self.requests.pop(mid, None)
        if request is None:
            if command in (TREE_CONNECT, CREATE, READ, CLOSE):
                self.wire.count("responses_first")  # the server's bytes came up before the client's request
                self.early[mid] = (command, status, mid, tree, msg, off, end, stamp)
                if len(self.early) > MAX_PENDING:
                    self.early.popitem(last=False)
                    self.wire.anomaly("unpaired_responses")
            return
        body = off + 64
        _, what = request
        if command == TREE_CONNECT and status == 0 and isinstance(what, str):
            self.trees[tree] = what
        elif command == CREATE and isinstance(what, str):
            if status != 0 or end - body < 80:
                self.files.pop(("mid", mid), None)
                return
            file_id = msg[body + 64 : body + 80]
            self.created[mid] = file_id
            f = self.files.pop(("mid", mid), None) or self.files.get(file_id) or File(self.cap)
            if file_id in self.files and self.files[file_id] is not f:
                self._close(file_id)
            f.name = what
            self.files[file_id] = f
            self.wire.count("files")
        elif command == READ and status in (0, 0x80000005) and isinstance(what, tuple) and end - body >= 16:
            key, offset = what
            d_off, length = msg[body + 2], int.from_bytes(msg[body + 4 : body + 8], "little")
            data = msg[off + d_off : off + d_off + length]
            self._file(key).read.add(offset, data, stamp)
            self.wire.count("read_bytes", len(data))
        elif command == CLOSE:
            if isinstance(what, tuple) and what[0] == "mid":
                what = self.created.get(what[1], what)  # type: ignore[index]
            self._close(what)  # type: ignore[arg-type]

    # -- files --------------------------------------------------------------------------------
    def _file(self, key: FileKey) -> File:
        f = self.files.get(key)
        if f is None:
            f = self.files[key] = File(self.cap)
            if len(self.files) > MAX_FILES:
                self._close(next(iter(self.files)))
                self.wire.anomaly("too_many_open_files")
        return f

    def _close(self, key: FileKey) -> None:
        f = self.files.pop(key, None)
        if f is None:
            return
        for d, pieces, command in ((0, f.written, "WRITE"), (1, f.read, "READ")):
            if not pieces.pieces:
                continue
            assert pieces.stamp is not None
            runs = pieces.runs()
            whole = len(runs) == 1 and runs[0].offset == 0 and not pieces.dropped
            if not whole:
                self.wire.count("sparse_files" if len(runs) > 1 or runs[0].offset else "capped_files")
            app = AppMeta("smb", command=command)
            for run in runs:
                self.wire.emit(d, 0, run.data, name=f.name, truncated=not whole, app=app, stamp=pieces.stamp)

    def _end(self) -> None:
        for key in list(self.files):
            self._close(key)


__all__ = ["Smb", "utf16"]
