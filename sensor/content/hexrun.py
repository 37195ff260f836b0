"""Hex runs ("1f8b0800...") around a hint, decoded."""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from typing import ClassVar

from sensor.content.base import Peeled, decoders, expand_run
from sensor.model import Buffer

RUN = re.compile(rb"[0-9A-Fa-f]*")
MIN_RUN = 32


@decoders.register("hex")
class HexDecoder:
    """The maximal hex run around the hint, from both nibble alignments."""

    name: ClassVar[str] = "hex"

    def peel(self, data: Buffer, offset: int, max_encoded: int) -> Iterator[Peeled]:
        start, end = expand_run(data, offset, RUN, max_encoded)
        if end - start < MIN_RUN:
            return
        capped = end - start >= max_encoded
        for shift in ((offset - start) % 2, (offset - start + 1) % 2):
            text = bytes(data[start + shift : end])
            text = text[: len(text) - len(text) % 2]
            try:
                yield (Peeled("hex", start + shift, start + shift + len(text), binascii.unhexlify(text), capped))
            except binascii.Error:
                continue
