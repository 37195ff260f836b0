"""SMB2 messages as MS-SMB2 lays them out, for crafted conversations: NetBIOS framing, headers, TREE_CONNECT,
CREATE, WRITE, READ, CLOSE, compounds (related or not), SMB3 transform headers and an SMB1 NEGOTIATE.
Used by tests/test_smb.py and the fuzz seeds; real clients and servers (smbclient, smbd) are tested beside."""

from __future__ import annotations

import struct

RESPONSE, RELATED = 0x1, 0x4
ALL_ONES = b"\xff" * 16


def nbss(payload: bytes) -> bytes:
    """One NetBIOS session message (RFC 1002; port 445's direct TCP uses the same 4 bytes)."""
    return b"\x00" + len(payload).to_bytes(3, "big") + payload


def header(command: int, mid: int, *, response: bool = False, tree: int = 1, status: int = 0, flags: int = 0,
           nxt: int = 0, session: int = 0x1000) -> bytes:  # fmt: skip
    flags |= RESPONSE if response else 0
    return struct.pack("<4sHHIHHIIQIIQ16s", b"\xfeSMB", 64, 1, status, command, 1, flags, nxt, mid, 0, tree,
                       session, b"\x00" * 16)  # fmt: skip


def compound(*messages: bytes) -> bytes:
    """Messages chained by NextCommand, each padded to 8 bytes (all but the last)."""
    out = b""
    for i, m in enumerate(messages):
        if i + 1 < len(messages):
            m += b"\x00" * (-len(m) % 8)
            m = m[:20] + struct.pack("<I", len(m)) + m[24:]
        out += m
    return out


def utf16(name: str) -> bytes:
    return name.encode("utf-16-le", "surrogatepass")


def tree_connect(mid: int, path: str) -> bytes:
    p = utf16(path)
    return header(3, mid, tree=0) + struct.pack("<HHHH", 9, 0, 64 + 8, len(p)) + p


def tree_connect_response(mid: int, tree: int) -> bytes:
    return header(3, mid, response=True, tree=tree) + struct.pack("<HBBIII", 16, 1, 0, 0, 0, 0x1F01FF)


def create(mid: int, name: str, tree: int = 1, flags: int = 0) -> bytes:
    n = utf16(name)
    body = struct.pack("<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, 0x12019F, 0x80, 7, 5, 0x40, 64 + 56, len(n), 0, 0)
    return header(5, mid, tree=tree, flags=flags) + body + (n or b"\x00")


def create_response(mid: int, file_id: bytes, tree: int = 1, status: int = 0, flags: int = 0) -> bytes:
    if status:
        return header(5, mid, response=True, tree=tree, status=status, flags=flags) + struct.pack("<HBB", 9, 0, 0)
    body = struct.pack("<HBBI", 89, 0, 0, 2) + b"\x00" * 32 + struct.pack("<QQII", 0, 0, 0x80, 0) + file_id
    return header(5, mid, response=True, tree=tree, flags=flags) + body + struct.pack("<II", 0, 0)


def write(mid: int, file_id: bytes, offset: int, data: bytes, tree: int = 1, flags: int = 0) -> bytes:
    body = struct.pack("<HHIQ16sIIHHI", 49, 64 + 48, len(data), offset, file_id, 0, 0, 0, 0, 0)
    return header(9, mid, tree=tree, flags=flags) + body + data


def write_response(mid: int, count: int, tree: int = 1, flags: int = 0) -> bytes:
    return header(9, mid, response=True, tree=tree, flags=flags) + struct.pack("<HHIIHH", 17, 0, count, 0, 0, 0)


def read(mid: int, file_id: bytes, offset: int, length: int, tree: int = 1, flags: int = 0) -> bytes:
    body = struct.pack("<HBBIQ16sIIIHH", 49, 0, 0, length, offset, file_id, 0, 0, 0, 0, 0) + b"\x00"
    return header(8, mid, tree=tree, flags=flags) + body


def read_response(mid: int, data: bytes, tree: int = 1, flags: int = 0) -> bytes:
    body = struct.pack("<HBBIII", 17, 64 + 16, 0, len(data), 0, 0)
    return header(8, mid, response=True, tree=tree, flags=flags) + body + data


def close(mid: int, file_id: bytes, tree: int = 1, flags: int = 0) -> bytes:
    return header(6, mid, tree=tree, flags=flags) + struct.pack("<HHI16s", 24, 0, 0, file_id)


def close_response(mid: int, tree: int = 1, flags: int = 0) -> bytes:
    return header(6, mid, response=True, tree=tree, flags=flags) + struct.pack("<HHI", 60, 0, 0) + b"\x00" * 52


def negotiate_smb1() -> bytes:
    """An SMB1 NEGOTIATE offering SMB 2.002 and SMB 2.???, as older clients open."""
    dialects = b"".join(b"\x02" + d + b"\x00" for d in (b"NT LM 0.12", b"SMB 2.002", b"SMB 2.???"))
    hdr = b"\xffSMB" + bytes([0x72]) + b"\x00" * 4 + b"\x18" + b"\x53\xc8" + b"\x00" * 12 + b"\xff\xfe" + b"\x00" * 6
    return hdr + b"\x00" + struct.pack("<H", len(dialects)) + dialects


def negotiate_response() -> bytes:
    body = struct.pack("<HHHH16sIIII", 65, 1, 0x02FF, 0, b"\x11" * 16, 0, 1 << 20, 1 << 20, 1 << 20)
    return header(0, 0, response=True, tree=0) + body + b"\x00" * 24


def transform(payload_size: int) -> bytes:
    """An SMB3 transform header (encrypted message) over `payload_size` opaque bytes."""
    return (
        b"\xfdSMB"
        + b"\x00" * 16
        + b"\x00" * 16
        + struct.pack("<IHHQ", payload_size, 0, 1, 0x1000)
        + bytes((i * 37) & 0xFF for i in range(payload_size))
    )


def file_id(n: int) -> bytes:
    return struct.pack("<QQ", n, 0x1000 + n)


__all__ = [
    "ALL_ONES",
    "close",
    "close_response",
    "compound",
    "create",
    "create_response",
    "file_id",
    "header",
    "nbss",
    "negotiate_response",
    "negotiate_smb1",
    "read",
    "read_response",
    "transform",
    "tree_connect",
    "tree_connect_response",
    "utf16",
    "write",
    "write_response",
]
