"""An Internet message (RFC 5322, MIME) to objects: the message recorded, each leaf part scanned, named by its
filename, its transfer encoding undone (`stagewatch.encoding`: `mime`, then `base64` or `quoted-printable`).

Shared by every protocol that moves whole messages (SMTP DATA/BDAT, IMAP APPEND and FETCH, POP3 RETR). The
message itself is recorded (--objects) but not scanned whole: its encoded parts would be found twice.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import replace
from email.message import Message

from sensor.model import AppMeta

MAX_PARTS = 500

Emit = Callable[..., int]  # Wire.emit bound to a direction and offset: emit(data, **kw) -> index


def emit_message(emit: Emit, body: bytes, truncated: bool, app: AppMeta, count: Callable[[str, int], None]) -> None:
    """Parse `body` with the standard library's email package and hand the message and each leaf part to `emit`
    (keyword arguments as Wire.emit takes them after direction and offset); `count(what, n)` counts."""
    try:
        msg = email.message_from_bytes(body, policy=email.policy.default)
        subject = str(msg.get("Subject", "") or "") or None
    except Exception:  # noqa: BLE001 - the email package's errors are many; the message goes raw
        msg, subject = None, None
    app = replace(app, subject=subject) if subject and not app.subject else app
    count("messages", 1)
    name = f"{subject}.eml" if subject else None
    index = emit(body, name=name, truncated=truncated, app=app, scan=False)
    if msg is None:
        count("anomaly.mime", 1)
        emit(body, name=name, truncated=truncated, app=app, index=index)
        return
    parts = 0
    for n, part in enumerate(msg.walk()):
        if part.is_multipart():
            continue
        parts += 1
        if parts > MAX_PARTS:
            count("anomaly.too_many_parts", 1)
            break
        data, layers = payload(part)
        if data:
            emit(data, name=filename(part), truncated=truncated, layers=layers, app=app, layer_offset=n, index=index)
    if getattr(msg, "defects", None):
        count("mime_defects", len(msg.defects))


def filename(part: Message) -> str | None:
    """The part's filename (Content-Disposition or Content-Type name, RFC 2231 too), None when it has none."""
    try:
        return part.get_filename()
    except (ValueError, LookupError, TypeError):
        return None


def payload(part: Message) -> tuple[bytes, tuple[str, ...]]:
    """The part's bytes with its transfer encoding undone, and the layers that took."""
    cte = str(part.get("Content-Transfer-Encoding", "") or "").strip().lower()
    try:
        data = part.get_payload(decode=True)
    except (ValueError, LookupError, TypeError, AssertionError):
        data = None
    if not isinstance(data, bytes):
        raw = part.get_payload()
        data = raw.encode("latin-1", "replace") if isinstance(raw, str) else b""
        return data, ("mime",)
    if cte in ("base64", "quoted-printable"):
        return data, ("mime", cte)
    return data, ("mime",)


__all__ = ["emit_message", "filename", "payload"]
