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
    data: Buffer, offset: int, run: re.Pattern[bytes], max_len: int, reach: int = 1 << 16
) -> tuple[int, int]:
    """The run matched by `run` (a `[class]*` pattern) around `offset`, searched in bounded steps."""
    start = offset
    while start > 0 and offset - start < max_len:
        lo = max(0, start - reach)
        back = bytes(data[lo:start])[::-1]
        k = run.match(back).end()
        start -= k
        if k < len(back):
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
