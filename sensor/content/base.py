"""The decoder seam: peel one encoding layer off a run found around a hint offset."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Protocol

from sensor.model import Buffer
from sensor.registry import Registry


@dataclass(frozen=True, slots=True)
class Peeled:
    """One decoded run: where it sat in the object, and its bytes."""

    layer: str
    start: int
    end: int
    data: bytes
    capped: bool  # the run was longer than max_encoded and was cut


class Decoder(Protocol):
    """Expands the encoded run around `offset`; yields its decodings, most likely alignment first."""

    name: ClassVar[str]

    def peel(self, data: Buffer, offset: int, max_encoded: int) -> Iterator[Peeled]: ...


decoders: Registry[type] = Registry("decoder")


def expand_run(
    data: Buffer, offset: int, run: re.Pattern[bytes], max_len: int, back: re.Pattern[bytes] | None = None
) -> tuple[int, int]:
    """The encoded run around `offset`: `back` (default `run`) matched backwards, `run` forwards.

    Both are `[class]*`-style patterns; the data is read in 64 KiB steps, at most `max_len` bytes.
    """
    reach = 1 << 16
    back = back or run
    start = offset
    while start > 0 and offset - start < max_len:
        lo = max(0, start - reach)
        rev = bytes(data[lo:start])[::-1]
        k = back.match(rev).end()
        start -= k
        if k < len(rev):
            break
    end = offset
    n = len(data)
    while end < n and end - start < max_len:
        chunk = bytes(data[end : min(n, end + reach)])
        k = run.match(chunk).end()
        end += k
        if k < len(chunk):
            break
    return start, min(end, start + max_len)
