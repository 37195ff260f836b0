"""TLS ClientHello server name (SNI) from the first bytes a client sends, for flow records."""

from __future__ import annotations


def client_hello_sni(data: bytes) -> str | None:
    """The server_name of a ClientHello at the start of `data`, or None (not TLS, or no SNI)."""
    if len(data) < 48 or data[0] != 0x16 or data[1] != 3 or data[5] != 1:
        return None
    try:
        pos = 9 + 2 + 32  # record header 5, handshake header 4, version 2, random 32
        pos += 1 + data[pos]  # session id
        pos += 2 + int.from_bytes(data[pos : pos + 2], "big")  # cipher suites
        pos += 1 + data[pos]  # compression methods
        end = pos + 2 + int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        while pos + 4 <= min(end, len(data)):
            etype = int.from_bytes(data[pos : pos + 2], "big")
            elen = int.from_bytes(data[pos + 2 : pos + 4], "big")
            if etype == 0:  # server_name: list length 2, type 1 (host_name), length 2, name
                name_len = int.from_bytes(data[pos + 7 : pos + 9], "big")
                name = data[pos + 9 : pos + 9 + name_len]
                return name.decode("ascii", "replace") if data[pos + 6] == 0 and name else None
            pos += 4 + elen
    except IndexError:
        return None
    return None
