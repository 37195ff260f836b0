"""What the verifiers of Windows' magic-less LZ77 formats (LZNT1, Xpress, Xpress Huffman) share: LZ77 decodes
almost any bytes, so decoding proves nothing by itself; the output has to look like something a compressor was
given, and the tokens like something a compressor would write."""

from __future__ import annotations

from typing import NamedTuple

from sensor.detect import inner, opaque
from sensor.detect.verifiers.base import Context, Verified
from sensor.model import Format, Limit, LimitHit, Proof

WINDOW_CHECK = 16 * 1024  # output bytes whose literals are checked against what a compressor would have matched
MISSED_SHARE = 1 / 3  # literals a compressor would have matched, above which the tokens were not written by one
SAME_RUN = 5  # identical bytes in a row all sent as literals: no LZ77 compressor does that (offset 1 matches)


class Decoding(NamedTuple):
    """What decoding a magic-less LZ77 stream gave: its output, the input bytes read, how it stopped, and the
    output positions of the literals in its first WINDOW_CHECK bytes."""

    output: bytes
    used: int
    status: str  # end | cap | data_end | invalid | not_compressed
    literals: list[int]
    wide: bool = False  # a 32-bit match length was read (Windows 8 and later write them; dissect.util's Huffman
    # decoder does not read them)


def typed_or_skewed(out: bytes) -> bool:
    """The issue's rule: the output is typed by libmagic, or its byte histogram is not uniform (random bytes
    decode into random bytes)."""
    mime = inner.mime_of(out[: inner.MAGIC_BYTES])
    return mime not in (None, "application/octet-stream") or opaque.uniformity(out) > opaque.UNIFORM_CHI2


def written_by_a_compressor(out: bytes, literals: list[int], window: int) -> bool:
    """False when the literals in the output's first WINDOW_CHECK bytes are ones any LZ77 compressor would have
    matched: a run of SAME_RUN identical bytes, or over MISSED_SHARE of them repeating a 3-byte string already
    within `window` bytes back. That is what bytes that merely happen to decode (zero-filled heads, tables of
    small integers) look like; a greedy or lazy compressor leaves few such literals."""
    if len(literals) < 64:
        return True
    missed = run = 0
    last = -2
    for p in literals:
        run = run + 1 if p == last + 1 and out[p] == out[last] else 1
        if run >= SAME_RUN:
            return False
        last = p
        if p >= 3 and p + 3 <= len(out) and out.rfind(out[p : p + 3], max(0, p - window), p + 2) >= 0:
            missed += 1
    return missed <= MISSED_SHARE * len(literals)


def verified(fmt: Format, dec: Decoding, ctx: Context, writer: str, detail: str) -> Verified:
    """A decoded Xpress stream as a member: how it stopped says its proof, whether it is truncated and whether
    the output cap was hit."""
    out = dec.output
    return Verified(
        format=fmt,
        offset=0,
        length=dec.used,
        proof={"end": Proof.STREAM_END, "cap": Proof.OUTPUT}.get(dec.status, Proof.OBJECT_END),
        truncated=dec.status in ("data_end", "invalid"),
        head=out[: ctx.limits.inner_head],
        inner_size=len(out),
        inner_complete=dec.status == "end",
        limits=[LimitHit(Limit.OUTPUT_BYTES, ctx.where, ctx.limits.max_output)] if dec.status == "cap" else [],
        writer=writer,
        detail=f"{detail}; stopped: {dec.status}",
    )


__all__ = [
    "MISSED_SHARE",
    "Decoding",
    "SAME_RUN",
    "WINDOW_CHECK",
    "typed_or_skewed",
    "verified",
    "written_by_a_compressor",
]
