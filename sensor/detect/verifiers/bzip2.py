"""bzip2: the decoder checks every block CRC and the stream CRC; the 76-bit header carries short members."""

from __future__ import annotations

from typing import ClassVar

from sensor.content import decompress
from sensor.detect.tarwalk import TarWalker
from sensor.detect.verifiers.base import Context, Verified, stream_member, verifiers
from sensor.model import Buffer, Candidate, Checksum, Format, Proof

BLOCK_MAGIC = b"\x31\x41\x59\x26\x53\x59"
EOS_MAGIC = b"\x17\x72\x45\x38\x50\x90"


@verifiers.register(Format.BZIP2)
class Bzip2Verifier:
    """Output at all means a block CRC passed; end of stream means the stream CRC passed too."""

    format: ClassVar[Format] = Format.BZIP2

    def verify(self, data: Buffer, cand: Candidate, ctx: Context) -> Verified | None:
        off = cand.offset
        h = bytes(data[off : off + 10])
        if len(h) < 10 or h[:3] != b"BZh" or not 0x31 <= h[3] <= 0x39 or h[4:10] not in (BLOCK_MAGIC, EOS_MAGIC):
            return None
        walker = TarWalker(ctx.limits.max_names)
        observers = (walker.feed,)
        dec = decompress.run(decompress.bz2_codec(), data, off, ctx.limits, ctx.where, observers)
        if dec.eof and dec.output == 0:
            return None  # an empty stream (BZh9 + end-of-stream + CRC 0) carries nothing to exfiltrate
        if dec.eof:
            proof, checksum, truncated = Proof.CHECKSUM, Checksum.OK, False
        elif dec.output > 0:
            # at least one block decoded, so its CRC matched; the rest was cut, damaged or capped
            proof, checksum, truncated = Proof.CHECKSUM, Checksum.NONE, dec.limit is None
        elif dec.data_ended:
            # shorter than one block: only the 76-bit header vouches for it (SIGNATURES.md §1.4)
            proof, checksum, truncated = Proof.STRUCTURE, Checksum.NONE, True
        else:
            return None
        return stream_member(
            Format.BZIP2,
            off,
            dec.consumed,
            (proof, checksum, truncated),
            dec,
            walker.names,
            detail=f"block size {h[3] - 0x30}00k",
        )
