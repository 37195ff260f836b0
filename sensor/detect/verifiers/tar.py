"""tar (ustar/GNU): an archive without compression; header checksums walked to the end blocks."""

from __future__ import annotations

from typing import ClassVar

from sensor.detect.tarwalk import BLOCK, TarWalker, is_tar_header, parse_size
from sensor.detect.verifiers.base import Context, Verified, verifiers
from sensor.model import Buffer, Candidate, Checksum, Format, Proof

STEP = 1 << 20
RECORD = 20 * BLOCK
ZERO = bytes(BLOCK)


@verifiers.register(Format.TAR)
class TarVerifier:
    """The first header's magic and checksum prove it; the walk gives names and the end."""

    format: ClassVar[Format] = Format.TAR

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        if off < 0:
            return None
        first = bytes(data[off : off + BLOCK])
        if not is_tar_header(first):
            return None
        walker = TarWalker(ctx.limits.max_names)
        pos = off
        while not walker.done and pos < len(data):
            walker.feed(bytes(data[pos : pos + STEP]))
            pos += STEP
        end = off + walker.position
        if walker.done and walker.ok:
            end = min(off + walker.position + BLOCK, len(data))  # the second zero block
            # writers pad the archive with zero blocks to a 10240-byte record: carve them too,
            # so a .tar found whole hashes like the file
            record_end = off + -(-(end - off) // RECORD) * RECORD
            while end < min(record_end, len(data)) and bytes(data[end : end + BLOCK]) == ZERO:
                end += BLOCK
        elif not walker.ok:
            if walker.headers < 2:
                return None  # one header followed by garbage: a lone 512-byte accident, not an archive
            end = off + walker.position - BLOCK  # stop before the header that failed
        size = parse_size(first[124:136]) or 0
        data_head = bytes(data[off + BLOCK : off + BLOCK + min(size, ctx.limits.inner_head)])
        return Verified(
            format=Format.TAR,
            offset=off,
            length=end - off,
            proof=Proof.STRUCTURE,  # header checksums are structure: tar has no check over the data
            truncated=not (walker.done and walker.ok),
            checksum=Checksum.NONE,
            compressed=False,
            head=data_head or None,
            inner_size=walker.sizes,
            inner_complete=walker.done,
            names=walker.names,
            detail=f"{walker.headers} headers",
        )
