"""Values carried in forms, query strings and JSON bodies, decoded to the bytes they stand for.

A base64 blob posted as a form field arrives percent-encoded (`%2B`, `%2F`, `%3D`) and one in a
JSON string may have its slashes escaped (`\\/`): in both the encoded run is broken until the
wrapping is undone. Only values long enough to hold a compressed member are returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from sensor.names import from_bytes

MIN_VALUE = 24  # shorter values cannot hold a verifiable member in base64 or hex
MAX_VALUES = 10_000
MAX_JSON = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Value:
    """One decoded value and its name (form field, query key, or JSON path)."""

    name: str
    data: bytes


def urlencoded(body: bytes) -> Iterator[Value]:
    """Values of an application/x-www-form-urlencoded body or a query string, percent-decoded.

    Every long value is returned, changed or not: the form body itself is not scanned.
    """
    for n, pair in enumerate(body.split(b"&")):
        if n >= MAX_VALUES:
            return
        key, _, value = pair.partition(b"=")
        if len(value) < MIN_VALUE:
            continue
        data = unquote_to_bytes(value.replace(b"+", b" "))
        yield Value(from_bytes(unquote_to_bytes(key.replace(b"+", b" "))), data)


def json_strings(body: bytes) -> Iterator[Value]:
    """String values of a JSON document whose escapes changed them, by path (`$.a.b[2]`)."""
    if len(body) > MAX_JSON:
        return
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return
    count = 0
    stack: list[tuple[str, object]] = [("$", doc)]
    while stack and count < MAX_VALUES:
        path, node = stack.pop()
        if isinstance(node, dict):
            stack.extend((f"{path}.{k}", v) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(node))))
        elif isinstance(node, str) and len(node) >= MIN_VALUE:
            count += 1
            data = node.encode("utf-8", "surrogatepass")
            if data not in body:  # escaped in transit (\/, \u002b...): the raw body hides the run
                yield Value(path, data)


def looks_json(content_type: str | None, body: bytes) -> bool:
    """A JSON body by its type, or by its first non-blank byte when the type says nothing useful."""
    if content_type and "json" in content_type.lower():
        return True
    head = body[:64].lstrip()
    return head[:1] in (b"{", b"[") and (not content_type or "octet-stream" in content_type or "text" in content_type)


__all__ = ["MIN_VALUE", "Value", "json_strings", "looks_json", "urlencoded"]
