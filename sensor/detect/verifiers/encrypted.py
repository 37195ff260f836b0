"""What the verifiers of encrypted formats share: the Verified they return, and tests of ciphertext."""

from __future__ import annotations

from sensor.detect.verifiers.base import Verified
from sensor.model import Format, Proof

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


__all__ = ["encrypted", "looks_random"]
