"""The verifier seam: one class per format proves a candidate and finds the member's end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from sensor.config import KiB, Limits, MiB
from sensor.content import decompress
from sensor.content.decompress import Decoded
from sensor.model import Buffer, Candidate, Checksum, ChecksumFailures, Format, LimitHit, Proof, StreamDecode
from sensor.registry import Registry

TRUNCATED_MIN_OUTPUT = 4 * KiB  # rule (b): output needed when the data ends mid-stream
OUTPUT_PROOF = 1 * MiB  # rule (c): error-free output that proves a stream
MIN_RATIO = 1.05  # rule (b): not a verbatim stored copy


@dataclass
class Verified:
    """A proven member before hashing and typing: bounds, proof and what the header told."""

    format: Format
    offset: int
    length: int
    proof: Proof
    truncated: bool = False
    checksum: Checksum = Checksum.NONE
    checksum_failures: ChecksumFailures | None = None  # which entries made `checksum` bad (archives)
    encrypted: bool = False
    compressed: bool = True
    head: bytes | None = None  # decompressed head, typed by libmagic later
    inner_size: int = 0
    inner_complete: bool = False
    names: list[str] = field(default_factory=list)
    limits: list[LimitHit] = field(default_factory=list)
    stored_name: str | None = None
    header_mtime: int | None = None
    writer: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """What a verifier may know about the object besides its bytes."""

    limits: Limits
    where: str  # location for LimitHit and log lines
    at_object_start: bool
    declared: Format | None = None  # the protocol says the object is this (Content-Encoding)
    decoded: StreamDecode | None = None  # the member at the object's start, already decoded by the protocol layer
    nesting: int = 0  # archives this one sits inside (a zip in a zip is listed too, to [limits] max_depth)
    # bounds that stopped a candidate before it could be proven: the detector counts them (a verifier that
    # returns None has no other way to say "I was stopped", and a limit must never be silent)
    unproven: list[LimitHit] | None = None


def inflate_stream(
    data: Buffer,
    fmt: Format,
    offset: int,
    start: int,
    ctx: Context,
    checksum: Callable[..., int],
    names: Callable[[bytes], None],
) -> tuple[Decoded, int]:
    """Raw-inflate the `fmt` member at `offset` whose deflate stream begins at `start`: how it went, and
    `checksum` (zlib.crc32 or zlib.adler32) of its output; `names` sees the output (the tar walker).

    When the protocol layer already decoded exactly this stream (the member at the object's start, under
    this verifier's output cap: an HTTP body's Content-Encoding), that decode and its checksum are used and
    nothing is inflated again; the result is the same."""
    pre = ctx.decoded
    # over this verifier's own cap, its decode would have stopped earlier than the protocol layer's
    if pre is None or pre.format is not fmt or offset or pre.start != start or len(pre.output) >= ctx.limits.max_output:
        acc = [checksum(b"")]  # zlib.crc32 starts at 0, zlib.adler32 at 1

        def observe(piece: bytes) -> None:
            acc[0] = checksum(piece, acc[0])

        dec = decompress.run(decompress.inflate_codec(-15), data, start, ctx.limits, ctx.where, (observe, names))
        return dec, acc[0]
    names(pre.output)
    return Decoded(len(pre.output), pre.consumed, pre.eof, pre.error, None, pre.head, pre.data_ended), pre.check


class Verifier(Protocol):
    """Proves one format: `verify` returns the member, or None when the candidate is not one."""

    format: ClassVar[Format]

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None: ...


verifiers: Registry[type] = Registry("verifier")


def stream_member(
    fmt: Format,
    offset: int,
    length: int,
    verdict: tuple[Proof, Checksum, bool],
    dec: Decoded,
    names: list[str],
    **header: str | int | None,
) -> Verified:
    """A decoded stream's Verified: bounds, verdict, what the decode saw, and header facts."""
    proof, checksum, truncated = verdict
    return Verified(
        format=fmt,
        offset=offset,
        length=length,
        proof=proof,
        truncated=truncated,
        checksum=checksum,
        head=dec.head,
        inner_size=dec.output,
        inner_complete=dec.eof,
        names=names,
        limits=[dec.limit] if dec.limit else [],
        **header,  # type: ignore[arg-type]
    )


def judge_stream(dec: Decoded, check: bool | None, has_check: bool = True) -> tuple[Proof, Checksum, bool] | None:
    """SIGNATURES.md §0 rule 5 for decoded streams: (proof, checksum, truncated) or None.

    `check` is the format's integrity check at the end of stream: True/False, or None when the
    format has none (`has_check` False) or its trailer was cut off by the end of the data.
    """
    if dec.eof and dec.output == 0:
        return None  # an empty stream proves a header, and carries nothing
    if dec.eof and check is None and has_check:
        # the stream ended but its trailer is missing: judged like data cut mid-stream
        if dec.output >= TRUNCATED_MIN_OUTPUT and dec.ratio >= MIN_RATIO:
            return Proof.OBJECT_END, Checksum.NONE, True
        return None
    if dec.eof:
        if check is True:
            return Proof.CHECKSUM, Checksum.OK, False
        if check is False:
            # ended cleanly but the check failed: a damaged member, still proven by volume
            if dec.output >= TRUNCATED_MIN_OUTPUT and dec.ratio >= MIN_RATIO:
                return Proof.OBJECT_END, Checksum.BAD, False
            return None
        return Proof.STREAM_END, Checksum.NONE, False
    if dec.output >= OUTPUT_PROOF and (dec.limit is not None or dec.error is not None or dec.data_ended):
        return Proof.OUTPUT, Checksum.NONE, dec.data_ended
    if dec.data_ended and dec.output >= TRUNCATED_MIN_OUTPUT and dec.ratio >= MIN_RATIO:
        return Proof.OBJECT_END, Checksum.NONE, True
    return None
