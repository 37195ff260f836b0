"""Bounded streaming decompression: output, ratio and time caps, and observers on the output."""

from __future__ import annotations

import bz2
import lzma
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import lz4.frame

from sensor.config import KiB, Limits, MiB
from sensor.model import Buffer, Limit, LimitHit

PROBE = 256  # first input step: random candidates die here cheaply (SIGNATURES.md §3)
STEP = 64 * KiB  # later input steps; never hand zlib a huge slice (it copies the tail)
OUT_STEP = 256 * KiB  # output per decoder call
RATIO_AFTER = 1 * MiB  # the ratio cap applies once this much has come out

# liblzma allocates the dictionary a header asks for, up to 4 GiB (fuzzing found a 12-byte .lzma asking for
# 2 GiB): 128 MiB decodes every xz/lzma preset (-9e: a 64 MiB dictionary); more is a memory limit hit
LZMA_MEMLIMIT = 128 << 20
DecodeErrors = (zlib.error, OSError, EOFError, lzma.LZMAError, RuntimeError, ValueError)


class Meter:
    """Counts output, keeps its head, feeds observers and says when a cap is hit."""

    def __init__(self, limits: Limits, where: str, observers: tuple[Callable[[bytes], None], ...] = ()):
        self.limits = limits
        self.where = where
        self.observers = observers
        self.output = 0
        self.head = bytearray()
        self.started = time.monotonic()

    def add(self, piece: bytes, consumed: int) -> LimitHit | None:
        """Account for `piece` after `consumed` input bytes; a LimitHit means stop now."""
        if piece:
            self.output += len(piece)
            room = self.limits.inner_head - len(self.head)
            if room > 0:
                self.head += piece[:room]
            for observe in self.observers:
                observe(piece)
        lim = self.limits
        if self.output >= lim.max_output:
            return LimitHit(Limit.OUTPUT_BYTES, self.where, self.output)
        if self.output >= RATIO_AFTER and self.output > lim.max_ratio * max(consumed, 1):
            return LimitHit(Limit.RATIO, self.where, self.output // max(consumed, 1))
        if time.monotonic() - self.started > lim.max_seconds:
            return LimitHit(Limit.TIME, self.where, int(time.monotonic() - self.started))
        return None


@dataclass
class Decoded:
    """How a bounded decode went: output and input counts, end of stream, error, cap hit."""

    output: int
    consumed: int  # input bytes the decoder used (to its end of stream when `eof`)
    eof: bool
    error: str | None
    limit: LimitHit | None
    head: bytes
    data_ended: bool  # the object ran out before the stream ended

    @property
    def ratio(self) -> float:
        return self.output / max(self.consumed, 1)


class Codec:
    """A streaming decoder with one calling convention (bz2/lzma/lz4 style)."""

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def feed(self, chunk: bytes, max_out: int) -> bytes:
        return self.obj.decompress(chunk, max_out)  # type: ignore[attr-defined]

    @property
    def needs_input(self) -> bool:
        return bool(self.obj.needs_input)  # type: ignore[attr-defined]

    @property
    def eof(self) -> bool:
        return bool(self.obj.eof)  # type: ignore[attr-defined]

    def pending(self) -> int:
        """Input fed but not consumed: unused data after the end of stream."""
        return len(self.obj.unused_data or b"") if self.eof else 0  # type: ignore[attr-defined]


class ZlibCodec(Codec):
    """zlib's decompressobj keeps unconsumed input in `unconsumed_tail`, so it is fed back here."""

    def __init__(self, wbits: int) -> None:
        super().__init__(zlib.decompressobj(wbits))
        self._tail = b""
        self._full = False

    def feed(self, chunk: bytes, max_out: int) -> bytes:
        d = self.obj
        out = d.decompress(self._tail + chunk if self._tail else chunk, max_out)  # type: ignore[attr-defined]
        self._tail = d.unconsumed_tail  # type: ignore[attr-defined]
        self._full = len(out) >= max_out
        return out

    @property
    def needs_input(self) -> bool:
        return not self._tail and not self._full

    def pending(self) -> int:
        return len(self.obj.unused_data) if self.eof else len(self._tail)  # type: ignore[attr-defined]


def inflate_codec(wbits: int = -15) -> Codec:
    return ZlibCodec(wbits)


def bz2_codec() -> Codec:
    return Codec(bz2.BZ2Decompressor())


def xz_codec() -> Codec:
    return Codec(lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=LZMA_MEMLIMIT))


def lzma_alone_codec() -> Codec:
    return Codec(lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=LZMA_MEMLIMIT))


def lz4_codec() -> Codec:
    return Codec(lz4.frame.LZ4FrameDecompressor())


def run(
    codec: Codec,
    data: Buffer,
    start: int,
    limits: Limits,
    where: str,
    observers: tuple[Callable[[bytes], None], ...] = (),
    end: int | None = None,
) -> Decoded:
    """Decode data[start:end] with `codec` until its end of stream, an error, a cap or the data's end."""
    stop = len(data) if end is None else min(end, len(data))
    meter = Meter(limits, where, observers)
    pos, fed, first = start, 0, True
    error: str | None = None
    hit: LimitHit | None = None
    while not codec.eof:
        if codec.needs_input:
            if pos >= stop:
                break
            n = PROBE if first else STEP
            first = False
            chunk = bytes(data[pos : min(pos + n, stop)])
            pos += len(chunk)
            fed += len(chunk)
        else:
            chunk = b""
        try:
            piece = codec.feed(chunk, OUT_STEP)
        except lzma.LZMAError as e:
            if "Memory usage limit" in str(e):
                hit = LimitHit(Limit.MEMORY, where, LZMA_MEMLIMIT)
            else:
                error = str(e) or type(e).__name__
            break
        except DecodeErrors as e:
            error = str(e) or type(e).__name__
            break
        hit = meter.add(piece, fed - codec.pending())
        if hit is not None:
            break
    consumed = fed - codec.pending()
    return Decoded(
        output=meter.output,
        consumed=consumed,
        eof=codec.eof,
        error=error,
        limit=hit,
        head=bytes(meter.head),
        data_ended=pos >= stop and not codec.eof and error is None and hit is None,
    )
