"""Names as the other end wrote them: attacker-chosen bytes kept exactly, shown as valid text.

Inside the pipeline a name from disk, an archive or the wire is a str in which each byte that does not
decode as UTF-8 is kept as a lone surrogate (Python's surrogateescape, as `os.fsdecode` does), so nothing
is lost and nothing raises. Where text leaves the process (JSON lines, the store, syslog, the console), `text`
gives what every reader accepts: valid UTF-8 with U+FFFD for each byte that does not decode and for NUL
(PostgreSQL refuses NUL in text), and `exact_hex` the exact bytes, in hex, whenever they differ from it;
`clean_record` puts the two side by side in an ECS record (`file.path` and `file.path_bytes`).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

BYTES_SUFFIX = "_bytes"


def from_bytes(raw: bytes) -> str:
    """A name read as bytes, as a str that gives back exactly those bytes (`to_bytes`)."""
    return raw.decode("utf-8", "surrogateescape")


def to_bytes(name: str) -> bytes:
    """The exact bytes of a name made by `from_bytes` or `os.fsdecode`."""
    try:
        return name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte (unpaired UTF-16 from a Windows log)
        return name.encode("utf-8", "surrogatepass")


def is_text(name: str) -> bool:
    """True when `name` is already valid UTF-8 text without NUL (the common case, checked cheaply)."""
    if "\x00" in name:
        return False
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text(name: str) -> str:
    """Valid UTF-8 text for `name`: U+FFFD for each byte that does not decode, and for NUL."""
    if is_text(name):
        return name
    return to_bytes(name).decode("utf-8", "replace").replace("\x00", "\ufffd")


def exact_hex(name: str) -> str | None:
    """The exact bytes of `name` in hex when its `text` differs from them, else None."""
    return None if is_text(name) else to_bytes(name).hex()


def stable_id(namespace: uuid.UUID, key: str) -> str:
    """uuid5(namespace, key) over the key's exact bytes: the same id as uuid.uuid5 for any valid text, and
    a distinct one for names that are not (uuid.uuid5 raises on them)."""
    try:
        return str(uuid.uuid5(namespace, key))
    except UnicodeEncodeError:  # its exact bytes are not UTF-8, so no text key gives the same ones
        pass
    digest = hashlib.sha1(namespace.bytes + to_bytes(key), usedforsecurity=False).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


def clean_record(record: dict[str, Any]) -> dict[str, Any]:
    """`record` (an ECS record, changed in place) with every string made `text`; where one was not, a sibling
    `<key>_bytes` holds its exact bytes in hex (for a list of strings, a list with null where they agree)."""
    changed: list[tuple[str, Any]] | None = None
    for key, value in record.items():
        kind = type(value)
        if kind is str:
            if not (value.isascii() and "\x00" not in value) and not is_text(value):  # the cheap test first
                changed = changed or []
                changed.append((key, value))
        elif kind is dict:
            clean_record(value)
        elif kind is list and value:
            if any(type(x) is str and not (x.isascii() and "\x00" not in x) and not is_text(x) for x in value):
                changed = changed or []
                changed.append((key, value))
            for x in value:
                if type(x) is dict:
                    clean_record(x)
    for key, value in changed or ():
        if type(value) is str:
            record[key] = text(value)
            record[key + BYTES_SUFFIX] = to_bytes(value).hex()
        else:
            record[key + BYTES_SUFFIX] = [exact_hex(x) if type(x) is str else None for x in value]
            record[key] = [text(x) if type(x) is str else x for x in value]
    return record
