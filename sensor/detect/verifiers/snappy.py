"""Snappy framing format: chunks walked here, each data chunk decoded alone so its CRC-32C is checked."""

from __future__ import annotations

from typing import ClassVar

import cramjam

from sensor.content.decompress import Meter
from sensor.detect.tarwalk import TarWalker
from sensor.detect.verifiers.base import Context, Verified, verifiers
from sensor.model import Buffer, Candidate, Checksum, Format, LimitHit, Proof

STREAM_ID = b"\xff\x06\x00\x00sNaPpY"
MAX_CHUNK = 65536 + 4 + 4096  # data chunks hold at most 64 KiB uncompressed plus the CRC


@verifiers.register(Format.SNAPPY)
class SnappyVerifier:
    """Proven once a data chunk's masked CRC-32C matches; the stream ends at the first chunk that fails."""

    format: ClassVar[Format] = Format.SNAPPY

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        if bytes(data[off : off + 10]) != STREAM_ID:
            return None
        walker = TarWalker(ctx.limits.max_names)
        observers = (walker.feed,)
        meter = Meter(ctx.limits, ctx.where, observers)
        pos, n, good, hit = off + 10, len(data), 0, None
        truncated = False
        while pos + 4 <= n:
            ctype = bytes(data[pos : pos + 1])[0]
            size = int.from_bytes(bytes(data[pos + 1 : pos + 4]), "little")
            if pos + 4 + size > n:
                truncated = True
                break
            if ctype in (0x00, 0x01):
                if size < 4 or size > MAX_CHUNK:
                    break
                try:
                    piece = bytes(cramjam.snappy.decompress(STREAM_ID + bytes(data[pos : pos + 4 + size])))
                except cramjam.DecompressionError:
                    break
                good += 1
                hit = meter.add(piece, pos + 4 + size - off)
            elif ctype == 0xFF:
                if bytes(data[pos : pos + 10]) != STREAM_ID:
                    break
            elif 0x02 <= ctype <= 0x7F:
                break  # reserved unskippable: not part of this stream
            pos += 4 + size
            if hit is not None:
                break
        if good == 0:
            return None
        limits: list[LimitHit] = [hit] if hit else []
        return Verified(
            format=Format.SNAPPY,
            offset=off,
            length=pos - off,
            proof=Proof.CHECKSUM,
            truncated=truncated,
            checksum=Checksum.OK,
            head=bytes(meter.head),
            inner_size=meter.output,
            inner_complete=not truncated and hit is None,
            names=walker.names,
            limits=limits,
        )
