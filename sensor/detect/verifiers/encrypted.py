"""What the verifiers of encrypted formats share: the Verified they return, and tests of ciphertext."""

from __future__ import annotations

import re

from sensor.detect.verifiers.base import Verified
from sensor.model import Buffer, Format, Proof

TEXTLIKE = frozenset(range(32, 127)) | {9, 10, 13}


def encrypted(fmt: Format, offset: int, length: int, *, truncated: bool = False, writer: str | None = None,
              detail: str | None = None) -> Verified:  # fmt: skip
    """A proven encrypted member: nothing to decompress, so the proof is its structure."""
    return Verified(
        format=fmt,
        offset=offset,
        length=length,
        proof=Proof.STRUCTURE,
        truncated=truncated,
        encrypted=True,
        compressed=False,
        writer=writer,
        detail=detail,
    )


def looks_random(sample: bytes) -> bool:
    """Ciphertext, not text: of its first bytes, not nearly all printable, and many distinct values."""
    if len(sample) < 16:
        return False
    printable = sum(1 for b in sample if b in TEXTLIKE)
    return printable < 0.9 * len(sample) and len(set(sample)) >= min(len(sample) // 2, 64)


def armored(data: Buffer, off: int, end: bytes, cap: int) -> tuple[bytes, bool]:
    """The armored text at `off` through its `end` line (and the one newline after it), and whether that line
    was found within `cap` bytes: only those bytes are copied, not the rest of a large object."""
    limit = min(len(data), off + cap)
    m = re.compile(re.escape(end) + rb"\r?\n?").search(data, off, limit)  # type: ignore[call-overload]
    stop = m.end() if m else limit
    return bytes(data[off:stop]), m is not None


__all__ = ["armored", "encrypted", "looks_random"]
