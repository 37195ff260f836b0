"""Zstandard: the frame's blocks are walked first (exact end, bounded output per block), then decoded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import zstandard

from sensor.content.decompress import Meter
from sensor.detect.tarwalk import TarWalker
from sensor.detect.verifiers.base import MIN_RATIO, TRUNCATED_MIN_OUTPUT, Context, Verified, verifiers
from sensor.model import Buffer, Candidate, Checksum, Format, LimitHit, Proof

MAGIC = b"\x28\xb5\x2f\xfd"
MAX_BLOCK = 128 * 1024


@dataclass(frozen=True, slots=True)
class Frame:
    """A walked frame: block cut points, its end, whether it is whole, and its header's promises."""

    cuts: list[int]
    end: int
    complete: bool
    checksum: bool
    content_size: int | None


def walk_frame(data: Buffer, off: int) -> Frame | None:
    """Walk the frame header and block headers at `off` without decoding; None if they are invalid."""
    h = bytes(data[off : off + 18])
    if len(h) < 6 or h[:4] != MAGIC or h[4] & 0x08:
        return None
    fhd = h[4]
    single = bool(fhd & 0x20)
    pos = 5 + (0 if single else 1) + (0, 1, 2, 4)[fhd & 3]
    fcs_len = (1 if single else 0, 2, 4, 8)[fhd >> 6]
    if len(h) < pos + fcs_len:
        return None
    content_size = int.from_bytes(h[pos : pos + fcs_len], "little") if fcs_len else None
    if fcs_len == 2:
        content_size += 256  # type: ignore[operator]  # the 2-byte form is stored minus 256
    pos += fcs_len + off
    has_checksum = bool(fhd & 4)
    cuts = [pos]
    n = len(data)
    while True:
        bh = bytes(data[pos : pos + 3])
        if len(bh) < 3:
            return Frame(cuts, n, False, has_checksum, content_size)
        v = int.from_bytes(bh, "little")
        last, btype, size = v & 1, (v >> 1) & 3, v >> 3
        if btype == 3 or size > MAX_BLOCK:
            return None
        pos += 3 + (1 if btype == 1 else size)
        if pos > n:
            return Frame(cuts, n, False, has_checksum, content_size)
        cuts.append(pos)
        if last:
            break
    if has_checksum:
        pos += 4
        if pos > n:
            return Frame(cuts, n, False, True, content_size)
        cuts.append(pos)
    return Frame(cuts, pos, True, has_checksum, content_size)


@verifiers.register(Format.ZSTD)
class ZstdVerifier:
    """A checksummed frame that decodes whole is proven; otherwise it must not be a raw or RLE copy."""

    format: ClassVar[Format] = Format.ZSTD

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        frame = walk_frame(data, off)
        if frame is None:
            return None
        cuts, end, complete, has_checksum = frame.cuts, frame.end, frame.complete, frame.checksum
        walker = TarWalker(ctx.limits.max_names)
        observers = (walker.feed,)
        distinct: set[int] = set()

        def variety(piece: bytes) -> None:
            if len(distinct) < 2:
                distinct.update(piece[:64])

        meter = Meter(ctx.limits, ctx.where, observers + (variety,))
        dobj = zstandard.ZstdDecompressor().decompressobj()
        hit: LimitHit | None = None
        prev = off
        for cut in cuts:  # one block per call: at most 128 KiB of output each
            try:
                piece = dobj.decompress(bytes(data[prev:cut]))
            except zstandard.ZstdError:
                return None
            hit = meter.add(piece, cut - off)
            prev = cut
            if hit is not None:
                break
        consumed = prev - off
        eof = complete and hit is None
        ratio = meter.output / max(consumed, 1)
        plausible = meter.output >= 64 and ratio >= MIN_RATIO and len(distinct) > 1
        if eof and has_checksum:
            proof, checksum, truncated = Proof.CHECKSUM, Checksum.OK, False
        elif eof and (plausible or (frame.content_size is not None and frame.content_size == meter.output > 0)):
            # without a checksum: real compression, or the declared content size met exactly (up to
            # 64 bits more than the block walk), which carries stored incompressible data too
            proof, checksum, truncated = Proof.STREAM_END, Checksum.NONE, False
        elif hit is not None and meter.output >= 1 << 20:
            proof, checksum, truncated = Proof.OUTPUT, Checksum.NONE, False
        elif not complete and plausible and meter.output >= TRUNCATED_MIN_OUTPUT:
            proof, checksum, truncated = Proof.OBJECT_END, Checksum.NONE, True
        else:
            return None
        return Verified(
            format=Format.ZSTD,
            offset=off,
            length=(end if eof else prev) - off,
            proof=proof,
            truncated=truncated,
            checksum=checksum,
            head=bytes(meter.head),
            inner_size=meter.output,
            inner_complete=eof,
            names=walker.names,
            limits=[hit] if hit else [],
        )
